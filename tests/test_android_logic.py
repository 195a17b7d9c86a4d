"""The Android demo's pure-Kotlin pre/post-processing (android_demo/postprocess) compiled with a real kotlinc on
the JVM and run against the golden vectors. Setup: android_demo/setup_kotlin.sh (npm `kotlin-compiler`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "android_demo" / "postprocess"
GOLDEN = REPO / "tests" / "golden"
SETUP = "android_demo/setup_kotlin.sh"


def find_kotlinc() -> Path | None:
    if os.environ.get("SLFM_KOTLINC"):
        return Path(os.environ["SLFM_KOTLINC"])
    home = Path(os.environ.get("SLFM_KOTLIN_HOME", "/opt/slfm-kotlin"))
    cached = home / "node_modules" / "kotlin-compiler" / "bin" / "kotlinc"
    if cached.is_file():
        return cached
    found = shutil.which("kotlinc")
    return Path(found) if found else None


@pytest.fixture(scope="module")
def kotlin():
    kotlinc = find_kotlinc()
    if kotlinc is None or shutil.which("java") is None:
        pytest.skip(f"no kotlinc/java: run `{SETUP}` (installs npm kotlin-compiler into /opt/slfm-kotlin)")
    lib = kotlinc.resolve().parent.parent / "lib"
    if not (lib / "kotlin-test.jar").is_file():
        pytest.skip(f"{lib} has no kotlin-test.jar: run `{SETUP}`")
    return kotlinc, lib


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def test_output(kotlin, tmp_path_factory) -> str:
    kotlinc, lib = kotlin
    out = tmp_path_factory.mktemp("kotlin")
    core, tests = out / "core.jar", out / "tests.jar"
    # The main sources alone, with only the Kotlin stdlib: proves the module has no Android dependency.
    r = run([kotlinc, MODULE / "src/main/kotlin", "-d", core])
    assert r.returncode == 0, f"kotlinc (main) failed:\n{r.stdout}\n{r.stderr}"
    r = run(
        [kotlinc, MODULE / "src/test/kotlin", "-cp", f"{core}:{lib / 'kotlin-test.jar'}", f"-Xfriend-paths={core}"]
        + ["-d", tests]
    )
    assert r.returncode == 0, f"kotlinc (tests) failed:\n{r.stdout}\n{r.stderr}"
    cp = ":".join(str(p) for p in (core, tests, lib / "kotlin-stdlib.jar", lib / "kotlin-test.jar"))
    r = run(["java", "-cp", cp, "org.slfm.core.HarnessKt", GOLDEN])
    assert r.returncode == 0, f"Kotlin tests failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_kotlin_tests_pass_against_golden_vectors(test_output):
    assert "FAIL" not in test_output
    m = re.search(r"(\d+) passed, 0 failed", test_output)
    assert m and int(m.group(1)) >= 15, test_output
    for name in ("anchors", "letterbox", "decode", "nms", "quant", "sidecar", "encode", "outputs"):
        assert f"PASS {name}\n" in test_output
    for f in GOLDEN.glob("postprocess_*.json"):
        assert f"PASS postprocess {f.stem}" in test_output


def test_postprocess_module_has_no_android_imports():
    sources = list((MODULE / "src/main/kotlin").rglob("*.kt"))
    assert sources
    for f in sources:
        bad = [line for line in f.read_text().splitlines() if re.match(r"import (android|androidx)\.", line)]
        assert not bad, f"{f}: {bad}"
