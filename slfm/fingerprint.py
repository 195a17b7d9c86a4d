"""What identifies slfm's code: caches (the pipeline's steps, the bench's builds) rerun a step after it changes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def code_fingerprint() -> str:
    """sha256 of slfm's version and the source of every subpackage (core, convert, quantize, device_tests)."""
    import slfm
    import slfm.convert
    import slfm.device_tests
    import slfm.quantize

    h = hashlib.sha256(slfm.__version__.encode())
    for pkg in (slfm, slfm.convert, slfm.quantize, slfm.device_tests):
        root = Path(pkg.__file__).parent
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()
