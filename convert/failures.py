"""Turn a toolchain's exception into one clear line naming the op or layer and the extra to install."""

from __future__ import annotations

import re

from slfm.errors import SlfmError

_OP_PATTERNS = (
    r"'((?:tfl|stablehlo|mhlo|tf)\.[A-Za-z_0-9.]+)' op",
    r"(aten[._:][A-Za-z_0-9.]+)",
    r"(quantized_decomposed\.[A-Za-z_0-9.]+)",
    r"[Oo]p(?:erator)? ['\"]?([A-Za-z_0-9.:]+)['\"]? (?:is )?not (?:supported|implemented)",
    r"(?:[Uu]nsupported|[Nn]ot supported)[^'\"]*['\"]([A-Za-z_0-9.:]+)['\"]",
    r"(?:layer|node|module) ['\"]?([A-Za-z_0-9.]+)['\"]?",
)
EXTRA = {"tflite": "tflite", "coreml": "coreml", "executorch": "executorch"}


def culprit(message: str) -> str | None:
    for pat in _OP_PATTERNS:
        m = re.search(pat, message)
        if m:
            return m.group(1)
    return None


def conversion_error(fmt: str, stage: str, exc: BaseException) -> SlfmError:
    """``fmt`` conversion failed while ``stage``: names the op if the message does, and the pip extra."""
    msg = " ".join(str(exc).split()) or type(exc).__name__
    op = culprit(msg)
    where = f" at {op}" if op else ""
    short = msg if len(msg) <= 300 else msg[:297] + "..."
    return SlfmError(
        f"{fmt} conversion failed{where} while {stage}: {type(exc).__name__}: {short} "
        f"(toolchain: pip install 'slfm[{EXTRA.get(fmt, 'all')}]')"
    )
