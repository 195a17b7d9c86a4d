"""The browser demo's JavaScript port of the pre/post-processing (web_demo/src) run with node's test runner against
the golden vectors, like the Kotlin and Swift ports. Setup: web_demo/setup.sh (node + npm; the port itself needs
no npm package)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web_demo"
GOLDEN = REPO / "tests" / "golden"
SETUP = "web_demo/setup.sh"
# Modules the Node tests import: they must not touch the DOM or LiteRT.js.
PURE = ("anchors", "codec", "f32", "letterbox", "meta", "nms", "outputs", "postprocess", "preprocess", "quant")


@pytest.fixture(scope="module")
def node_output() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"no node on PATH: apt-get install nodejs npm, then `{SETUP}`")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 18:
        pytest.skip(f"node {version} is older than 18 (node --test)")
    files = sorted(str(p.relative_to(WEB)) for p in (WEB / "test").glob("*.test.js"))
    r = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SLFM_GOLDEN_DIR": str(GOLDEN)},
    )
    assert r.returncode == 0, f"node --test failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_js_port_passes_against_golden_vectors(node_output):
    m = re.search(r"^# pass (\d+)$", node_output, re.M)
    assert m and int(m.group(1)) >= 19, node_output[-3000:]
    assert re.search(r"^# fail 0$", node_output, re.M)
    for name in ("anchors", "letterbox", "decode", "nms", "quant", "sidecar", "encode", "outputs"):
        assert re.search(rf"^ok \d+ - {name}$", node_output, re.M), name
    for f in GOLDEN.glob("postprocess_*.json"):
        assert re.search(rf"^ok \d+ - postprocess {f.stem}$", node_output, re.M), f.stem


def test_port_modules_are_pure():
    """The port is plain ES modules without the DOM, fetch or LiteRT.js (those live in app/pipeline/runtime)."""
    for name in PURE:
        text = (WEB / "src" / f"{name}.js").read_text()
        assert not re.search(r"\b(document|window|fetch|OffscreenCanvas|navigator)\b", text), name
        for spec in re.findall(r"^import .* from '([^']+)';", text, re.M):
            assert spec.startswith("./") and spec[2:-3] in PURE, f"{name}.js imports {spec}"


def test_package_pins_litert_and_has_a_lockfile():
    import json

    pkg = json.loads((WEB / "package.json").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", pkg["dependencies"]["@litertjs/core"])  # exact pin
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@litertjs/core"]["version"] == pkg["dependencies"]["@litertjs/core"]
    assert "integrity" in lock["packages"]["node_modules/@litertjs/wasm-utils"]
