"""What identifies slfm's code: caches (the pipeline's steps, the bench's builds) rerun a step after it changes."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

PACKAGES = ("slfm", "slfm.convert", "slfm.quantize", "slfm.device_tests")


def code_fingerprint() -> str:
    """sha256 of slfm's version and the source of every subpackage (core, convert, quantize, device_tests).

    The subpackages' folders come from their import specs: reading them imports none of them (this module sits
    below them in the layers, tests/test_layers.py)."""
    import slfm

    h = hashlib.sha256(slfm.__version__.encode())
    for pkg in PACKAGES:
        root = Path(importlib.util.find_spec(pkg).origin).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()
