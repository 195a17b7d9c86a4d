"""Lazy imports of the heavy converter toolchains, with one clear error naming the pip extra to install.

The core package installs without them (``pip install slfm``); ``pip install 'slfm[tflite]'``,
``'slfm[coreml]'``, ``'slfm[executorch]'`` (or ``'slfm[all]'``) add them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from slfm.errors import SlfmError

# toolchain -> (modules it needs, pip extra)
EXTRAS = {
    "tflite": (("litert_torch", "ai_edge_litert"), "tflite"),
    "coreml": (("coremltools",), "coreml"),
    "executorch": (("executorch", "torchao"), "executorch"),
    "quantize": (("executorch", "torchao"), "executorch"),  # the PT2E quantizer reuses XNNPACK's annotators
}


def require(toolchain: str, module: str | None = None) -> ModuleType:
    """Import ``module`` (default: the toolchain's first module) or raise a one-line :class:`SlfmError`."""
    modules, extra = EXTRAS[toolchain]
    loaded = []
    for name in modules if module is None else (module,):
        try:
            loaded.append(importlib.import_module(name))
        except ImportError as e:
            raise SlfmError(
                f"{toolchain} conversion needs {name!r}, which is not installed ({e.name or e}): "
                f"pip install 'slfm[{extra}]'"
            ) from e
    return loaded[0]


def available(toolchain: str) -> bool:
    try:
        require(toolchain)
    except SlfmError:
        return False
    return True
