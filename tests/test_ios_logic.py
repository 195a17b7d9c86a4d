"""The iOS demo's pure-Swift pre/post-processing (ios_demo/SLFMCore) built and tested with `swift test` (Swift 6
from Debian trixie, in a chroot) against the golden vectors. Setup: ios_demo/setup_swift.sh."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ios_demo" / "SLFMCore"
GOLDEN = REPO / "tests" / "golden"
ROOT = Path(os.environ.get("SLFM_SWIFT_ROOT", "/var/cache/slfm-swift-root"))
SETUP = "ios_demo/setup_swift.sh"


@pytest.fixture(scope="module")
def swift_output() -> str:
    if not (ROOT / ".slfm-swift-ready").is_file() or not os.path.lexists(ROOT / "usr/bin/swift"):
        pytest.skip(f"no Swift chroot at {ROOT}: run `sudo {SETUP}` (Debian trixie + swiftlang, ~3 min, 2.5 GB)")
    if os.geteuid() != 0:
        pytest.skip("swift test in the chroot needs root (mount + chroot)")
    # A private mount namespace: /proc, /dev and the repository (at /src) are mounted for this run only.
    script = (
        f"mount -t proc proc {ROOT}/proc && mount --rbind /dev {ROOT}/dev && mkdir -p {ROOT}/src && "
        f"mount --bind {REPO} {ROOT}/src && chroot {ROOT} /usr/bin/env SLFM_GOLDEN_DIR=/src/tests/golden "
        "sh -c 'cd /src/ios_demo/SLFMCore && swift test --scratch-path /var/tmp/slfm-swift-build 2>&1'"
    )
    cmd = ["unshare", "--mount", "--fork", "sh", "-c", script]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"swift test failed ({r.returncode}):\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_swift_tests_pass_against_golden_vectors(swift_output):
    m = re.search(r"Test Suite 'All tests' passed.*?\n\s*Executed (\d+) tests?, with 0 failures", swift_output, re.S)
    assert m and int(m.group(1)) >= 12, swift_output[-3000:]
    for name in ("Anchors", "Letterbox", "Decode", "NMS", "Quant", "Sidecar", "Postprocess", "Encode", "Outputs"):
        assert f"Test Case 'GoldenTests.test{name}' passed" in swift_output
    assert "skipped" not in swift_output


def test_core_package_has_no_apple_only_imports():
    sources = list((PACKAGE / "Sources").rglob("*.swift"))
    assert sources
    for f in sources:
        apple = re.compile(r"import (UIKit|SwiftUI|CoreML|Vision|AVFoundation)")
        bad = [line for line in f.read_text().splitlines() if apple.match(line)]
        assert not bad, f"{f}: {bad}"
