"""The browser target: an artifact run in headless Chromium through LiteRT.js, the runtime of ``web_demo/``.

``slfm parity ARTIFACT --target browser`` (``browser:wasm``, ``browser:webgpu``): the demo page is built into a
temporary folder with the artifact and served on 127.0.0.1; Chromium (Debian's ``chromium`` +
``chromium-driver``, driven by Selenium) opens its harness page, which fetches the harness's prepared inputs,
runs them through the page's own ``runtime.js`` and posts the raw outputs back. It then times the model call and
the demo's whole frame (letterbox on a canvas, encode, model, post-processing). WebGPU rows run where the
browser offers an adapter and JSPI (float32 artifacts only), and are skipped with the reason otherwise; plain
``browser`` also skips SwiftShader (Chromium's CPU emulation of a GPU, what a machine without one offers), which
``browser:webgpu`` runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

from slfm.artifact import ArtifactMeta
from slfm.bench import latency_stats
from slfm.device_tests.runners import RunResult
from slfm.errors import SlfmError

TARGET = "browser"
ACCELERATORS = ("wasm", "webgpu")
SETUP = "web_demo/setup.sh"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_NAMES = ("chromedriver", "chromium-driver")
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # root in CI and containers
    "--disable-dev-shm-usage",
    "--enable-unsafe-webgpu",  # WebGPU is behind this flag on Linux
    "--window-size=1280,900",
    "--no-first-run",
    "--disable-background-networking",
)
PAGE_TIMEOUT_S = 60
SOFTWARE_GPU = "swiftshader"  # Chromium's software WebGPU: slower than wasm; run only when asked for by name


def is_target(target: str) -> bool:
    return target == TARGET or target.startswith(TARGET + ":")


def accelerators(target: str) -> tuple[str, ...]:
    """``browser`` -> both; ``browser:wasm`` / ``browser:webgpu`` -> that one."""
    if target == TARGET:
        return ACCELERATORS
    acc = target.split(":", 1)[1]
    if acc not in ACCELERATORS:
        raise SlfmError(f"--target {target!r}: use browser, browser:wasm or browser:webgpu")
    return (acc,)


def find_chromium() -> tuple[Path, Path]:
    """(chromium, chromedriver): $SLFM_CHROMIUM / $SLFM_CHROMEDRIVER, else on PATH."""

    def find(env: str, names: tuple[str, ...]) -> Path | None:
        if os.environ.get(env):
            p = Path(os.environ[env])
            return p if p.is_file() else None
        hit = next((shutil.which(n) for n in names if shutil.which(n)), None)
        return Path(hit) if hit else None

    browser, driver = find("SLFM_CHROMIUM", CHROMIUM_NAMES), find("SLFM_CHROMEDRIVER", CHROMEDRIVER_NAMES)
    if browser is None or driver is None:
        what = "chromium" if browser is None else "chromedriver"
        raise SlfmError(
            f"no {what} found: the browser target needs Chromium and its WebDriver "
            f"(`apt-get install chromium chromium-driver`, or `sudo {SETUP}`)"
        )
    return browser, driver


def chromium_version(browser: Path) -> str:
    try:
        out = subprocess.run([str(browser), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "Chromium"
    m = re.search(r"(\d+\.\d+\.\d+\.\d+)", out)
    return f"Chromium {m.group(1)}" if m else "Chromium"


@contextlib.contextmanager
def chromium(extra_args: tuple[str, ...] = ()) -> Iterator:
    """A headless Chromium under Selenium (quit on exit)."""
    browser, driver_path = find_chromium()
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise SlfmError("the browser target needs Selenium: pip install 'slfm[web]' (selenium)") from None
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(browser)
    for a in (*CHROMIUM_ARGS, *extra_args):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(service=Service(str(driver_path)), options=opts)
    except WebDriverException as e:
        raise SlfmError(f"cannot start {browser} through {driver_path}: {e.msg or e}".splitlines()[0]) from e
    try:
        drv.set_page_load_timeout(PAGE_TIMEOUT_S)
        drv.set_script_timeout(PAGE_TIMEOUT_S)  # short scripts only: long waits poll (await_js)
        yield drv
    finally:
        drv.quit()


def await_js(drv, expression: str, timeout: float, what: str, poll_s: float = 0.5):
    """The value of a JavaScript promise ``expression`` in the page, within ``timeout`` seconds. The promise is
    started, then polled with short calls: no WebDriver request waits longer than a poll."""
    from selenium.common.exceptions import WebDriverException
    from urllib3.exceptions import HTTPError

    start = (
        "window.__slfmAwait = null;"
        f"Promise.resolve({expression}).then((v) => {{ window.__slfmAwait = {{value: v}}; }},"
        " (e) => { window.__slfmAwait = {value: {ok: false, error: String((e && e.message) || e)}}; });"
    )
    deadline = time.monotonic() + timeout
    try:
        drv.execute_script(start)
        while time.monotonic() < deadline:
            got = drv.execute_script("return window.__slfmAwait;")
            if got is not None:
                return got["value"]
            time.sleep(poll_s)
    except (WebDriverException, HTTPError) as e:
        raise SlfmError(f"{what}: {(getattr(e, 'msg', None) or str(e)).splitlines()[0]}") from e
    raise SlfmError(f"{what}: the browser did not finish within {timeout:.0f} s")


def webgpu_status(timeout: float = 120) -> dict:
    """What this Chromium offers for WebGPU: {available, adapter | reason}, by the page's own check
    (``web_demo/src/webgpu.js``, served from the source folder: it imports nothing)."""
    from slfm.web_build import WEB_DEMO
    from slfm.web_serve import WebServer

    with WebServer(WEB_DEMO / "src") as srv, chromium() as drv:
        drv.get(srv.url + "/webgpu.js")  # any document of a localhost origin: a secure context
        return await_js(drv, "import('/webgpu.js').then((m) => m.webGpuStatus())", timeout, "WebGPU probe")


class Exchange:
    """The harness's routes: GET /parity/inputs/<i> (float32 NCHW bytes), GET /parity/image/0 (PNG of the first
    letterboxed input, for the frame timing), POST /parity/outputs/<i> (loc then scores, float32)."""

    def __init__(self, inputs: np.ndarray, mean_bgr) -> None:
        import cv2

        self.inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        self.outputs: dict[int, bytes] = {}
        bgr = np.clip(np.rint(self.inputs[0].transpose(1, 2, 0) + np.asarray(mean_bgr, np.float32)), 0, 255)
        self.png = cv2.imencode(".png", bgr.astype(np.uint8))[1].tobytes()

    def __call__(self, method: str, path: str, body: bytes):
        m = re.fullmatch(r"/parity/(inputs|outputs|image)/(\d+)", path)
        if not m:
            return None
        kind, i = m.group(1), int(m.group(2))
        if i >= len(self.inputs):
            return 404, "text/plain", b"no such input"
        if method == "GET" and kind == "inputs":
            return 200, "application/octet-stream", self.inputs[i].tobytes()
        if method == "GET" and kind == "image":
            return 200, "image/png", self.png
        if method == "POST" and kind == "outputs":
            self.outputs[i] = body
            return 200, "text/plain", b"ok"
        return 405, "text/plain", b"method not allowed"

    def results(self, num_anchors: int) -> tuple[np.ndarray, np.ndarray]:
        missing = [i for i in range(len(self.inputs)) if i not in self.outputs]
        if missing:
            raise SlfmError(f"the browser sent no outputs for {len(missing)} of {len(self.inputs)} inputs")
        locs, scores = [], []
        for i in range(len(self.inputs)):
            a = np.frombuffer(self.outputs[i], dtype=np.float32)
            locs.append(a[: 4 * num_anchors].reshape(num_anchors, 4))
            scores.append(a[4 * num_anchors :].reshape(num_anchors, -1))
        return np.stack(locs), np.stack(scores)


class BrowserRunner:
    """One artifact in headless Chromium through LiteRT.js on ``accelerator`` (wasm: XNNPACK, one thread)."""

    target = TARGET

    def __init__(self, path: Path, meta: ArtifactMeta, accelerator: str = "wasm", timeout: float = 900) -> None:
        self.path, self.meta, self.accelerator, self.timeout = path, meta, accelerator, timeout

    def run(self, inputs: np.ndarray, runs: int, warmup: int) -> RunResult:
        from slfm.web_build import build, litert_version
        from slfm.web_serve import WebServer

        browser, _ = find_chromium()
        exchange = Exchange(inputs, self.meta.mean_bgr)
        with tempfile.TemporaryDirectory(prefix="slfm-web-parity-") as tmp:
            site = Path(tmp) / "site"
            build(site, [self.path])
            query = {"model": f"models/{self.path.name}", "accelerator": self.accelerator, "count": len(inputs)}
            query |= {"runs": runs, "warmup": warmup}
            with WebServer(site, routes=exchange) as srv, chromium() as drv:
                drv.get(f"{srv.url}/harness.html?{urlencode(query)}")
                r = await_js(drv, "window.slfmHarness", self.timeout, f"{self.path.name} in the browser")
        if not r.get("ok"):
            raise SlfmError(f"LiteRT.js ({self.accelerator}) failed on {self.path.name}: {r.get('error')}")
        loc, scores = exchange.results(self.meta.num_anchors or num_anchors(self.meta))
        frame = latency_stats([t / 1000 for t in r["frame_ms"]])
        fps = 1000 / frame["p50"] if frame.get("p50") else None
        threads = r.get("threads") or 1
        where = "XNNPACK, 1 thread" if self.accelerator == "wasm" else f"WebGPU on {r['webgpu'].get('adapter', '?')}"
        version = chromium_version(browser)
        runtime = f"LiteRT.js {litert_version()} {self.accelerator} ({version}, {where}"
        runtime += f"; demo frame p50 {frame['p50']:.1f} ms = {fps:.1f} FPS)" if fps else ")"
        return RunResult(
            loc=loc,
            scores=scores,
            times_s=[t / 1000 for t in r["times_ms"]],
            warmup_s=[t / 1000 for t in r["warmup_ms"]],
            threads=threads,
            runtime=runtime,
            load_s=r["load_ms"] / 1000,
            peak_memory_mb=r.get("wasm_heap_mb"),
            memory_note="LiteRT.js's WASM linear memory after the runs (the page's JavaScript heap not counted)",
            device={
                "browser": version,
                "user_agent": r.get("user_agent"),
                "accelerator": self.accelerator,
                "webgpu": r.get("webgpu"),
                "demo_frame_ms": frame,
                "demo_fps": fps,
                "demo_frame_note": "letterbox on a canvas + encode + model + post-processing, on the first input",
            },
        )


def num_anchors(meta: ArtifactMeta) -> int:
    from slfm.anchors import anchors

    return int(anchors(meta.image_size, meta.image_size, meta.min_sizes, meta.steps).shape[0])


def plan(target: str, path: Path, meta: ArtifactMeta, timeout: float) -> list:
    """Runners (or (status, reason) rows) for this artifact on ``browser[:accelerator]``."""
    accs = accelerators(target)
    if meta.format != "tflite":
        return [("skipped", f"{target}: the browser (LiteRT.js) runs .tflite artifacts only ({meta.format} given)")]
    find_chromium()  # a clear error on every row when there is no browser
    out: list = []
    for acc in accs:
        if acc == "webgpu":
            if meta.input_dtype != "float32":
                out.append(
                    (
                        "skipped",
                        f"webgpu: LiteRT.js's WebGPU path takes float32 tensors only ({meta.input_dtype} input)",
                    )
                )
                continue
            status = _webgpu_status_cached(timeout)
            if not status.get("available"):
                out.append(("skipped", f"webgpu: not offered by this headless Chromium ({status.get('reason')})"))
                continue
            if target == TARGET and SOFTWARE_GPU in status.get("adapter", "").lower():
                reason = (
                    f"webgpu: only {status['adapter']} here, a CPU emulation of a GPU (run it: --target browser:webgpu)"
                )
                out.append(("skipped", reason))
                continue
        out.append(BrowserRunner(path, meta, acc, timeout))
    return out


_WEBGPU: dict = {}


def _webgpu_status_cached(timeout: float) -> dict:
    if "status" not in _WEBGPU:
        try:
            _WEBGPU["status"] = webgpu_status(min(timeout, 120))
        except SlfmError as e:
            _WEBGPU["status"] = {"available": False, "reason": str(e)}
    return _WEBGPU["status"]
