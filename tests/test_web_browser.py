"""The browser demo in a real browser: ``slfm deploy web`` builds a self-contained page; headless Chromium
(Debian's chromium + chromium-driver, through Selenium) opens it with a fake camera fed from a real Moxa3K photo
and must draw the boxes Python finds on that frame; ``slfm parity --target browser`` runs the bundled model's fp32
and int8 .tflite in Chromium through LiteRT.js on real images against PyTorch. Setup: web_demo/setup.sh."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from slfm.cli import main

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

REPO = Path(__file__).resolve().parents[1]
SETUP = "web_demo/setup.sh"
PHOTO = "MOXA_2964.jpg"  # a Moxa3K test photo: three masks, three faces
CAMERA_WAIT = 'new Promise((done) => { const t = setInterval(() => { const s = window.slfmDemo; if (s && (s.frames >= 3 || s.state === "error")) { clearInterval(t); done(s); } }, 100); })'  # noqa: E501


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def litert_installed() -> None:
    from slfm.errors import SlfmError
    from slfm.web_build import node_modules

    try:
        node_modules()
    except SlfmError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def browser(litert_installed) -> None:
    from slfm.device_tests.browser import find_chromium
    from slfm.errors import SlfmError

    try:
        find_chromium()
        import selenium  # noqa: F401
    except (SlfmError, ImportError) as e:
        pytest.skip(f"{e} (run `sudo {SETUP}`; pip install 'slfm[web]')")


@pytest.fixture(scope="session")
def web_artifacts(tmp_path_factory) -> dict[str, Path]:
    """The bundled Moxa3K weights' fp32 and int8 (bundled QAT) .tflite, made by `slfm convert` once and cached on
    disk by checkpoint hash (conversions take minutes on a small CPU)."""
    import tempfile

    from _fixtures_convert import run_convert

    from slfm.checkpoint import bundled_checkpoint, file_sha256

    ckpt = bundled_checkpoint("moxa3k")
    qat = ckpt.with_name(ckpt.stem + "_qat.pt")
    key = file_sha256(ckpt)[:12] + (file_sha256(qat)[:12] if qat.is_file() else "")
    cache = Path(tempfile.gettempdir()) / "slfm-web-test-cache" / key
    out = {}
    for precision in ("fp32", "int8"):
        found = sorted(cache.glob(f"*_{precision}*.tflite"))
        if not found:
            done = run_convert("moxa3k", "--to", "tflite", "--precision", precision, "--out", str(cache))
            found = [Path(done["tflite"]["artifact"])]
        out[precision] = found[0]
    out["checkpoint"] = ckpt
    return out


# ---------------------------------------------------------------------------------------------- deploy web


def test_deploy_web_builds_a_self_contained_page(tmp_path, web_artifacts, litert_installed):
    from slfm.web_serve import WebServer

    site = tmp_path / "site"
    r = cli("deploy", "web", str(web_artifacts["int8"]), str(web_artifacts["fp32"]), "--out", str(site))
    assert r.exit_code == 0, r.output
    models = json.loads((site / "models.json").read_text())
    assert [m["precision"] for m in models] == ["fp32", "int8"]  # fp32 first in the selector
    for m in models:
        assert (site / m["file"]).is_file() and (site / (m["file"] + ".json")).is_file()
    files = json.loads((site / "files.json").read_text())["files"]
    on_disk = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file() and p.name != "files.json")
    assert sorted(set(files) - {"./"}) == on_disk  # the service worker caches every file: offline reloads
    wasm = sorted(p.name for p in (site / "vendor/litertjs/wasm").iterdir())
    assert "litert_wasm_internal.wasm" in wasm and "litert_wasm_jspi_internal.wasm" in wasm
    # Nothing is fetched from elsewhere at run time (LiteRT.js's own CDN hint is only in a comment of its README).
    for f in [*site.glob("*.html"), *site.glob("src/*.js"), site / "sw.js"]:
        assert "http://" not in f.read_text() and "https://" not in f.read_text(), f
    with WebServer(site) as srv:
        import urllib.request

        with urllib.request.urlopen(f"{srv.url}/vendor/litertjs/wasm/litert_wasm_internal.wasm") as resp:
            assert resp.headers["Content-Type"] == "application/wasm"
        with urllib.request.urlopen(f"{srv.url}/") as resp:
            assert b'type="importmap"' in resp.read()
    # A rebuild replaces its own folder; a foreign folder, a .pte or a missing file get one line.
    assert cli("deploy", "web", str(web_artifacts["fp32"]), "--out", str(site)).exit_code == 0
    assert len(json.loads((site / "models.json").read_text())) == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    r = cli("deploy", "web", str(web_artifacts["fp32"]), "--out", str(tmp_path / "mine"))
    assert r.exit_code != 0 and "not a page built by slfm" in r.output and (tmp_path / "mine/notes.txt").exists()
    pte = tmp_path / "m.pte"
    pte.write_bytes(b"x")
    (tmp_path / "m.pte.json").write_text(
        web_artifacts["fp32"]
        .with_name(web_artifacts["fp32"].name + ".json")
        .read_text()
        .replace('"tflite"', '"executorch"')
    )
    r = cli("deploy", "web", str(pte), "--out", str(tmp_path / "x"))
    assert r.exit_code != 0 and "runs .tflite only" in r.output
    r = cli("deploy", "web", str(tmp_path / "none.tflite"), "--out", str(tmp_path / "x"))
    assert r.exit_code != 0 and "artifact not found" in r.output


# ---------------------------------------------------------------------------------------------- the page


def write_y4m(bgr: np.ndarray, path: Path, frames: int = 2) -> np.ndarray:
    """A YUV4MPEG2 (4:2:0) clip of one photo for Chromium's fake camera; returns the frame as decoded (BGR)."""
    h, w = bgr.shape[:2]
    bgr = np.ascontiguousarray(bgr[: h // 2 * 2, : w // 2 * 2])
    h, w = bgr.shape[:2]
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F5:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv.tobytes())
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)


def match(a: list[dict], b: list[dict], iou_min: float) -> list[tuple[dict, dict | None, float]]:
    """Each detection of ``a`` with its best same-label detection of ``b`` and their IoU."""
    from slfm.nms import iou

    out = []
    for d in a:
        same = [e for e in b if e["label"] == d["label"]]
        ious = iou(np.asarray([d["box"]]), np.asarray([e["box"] for e in same]).reshape(-1, 4))[0] if same else []
        k = int(np.argmax(ious)) if len(ious) else -1
        out.append((d, same[k] if k >= 0 and ious[k] >= iou_min else None, float(ious[k]) if k >= 0 else 0.0))
    return out


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_demo_page_draws_python_detections_from_a_fake_camera(tmp_path, web_artifacts, browser, moxa, precision):
    from slfm.checkpoint import load_model
    from slfm.device_tests.browser import await_js, chromium
    from slfm.device_tests.runtimes import load_runner
    from slfm.predictor import Predictor
    from slfm.web_build import build
    from slfm.web_serve import WebServer

    photo = cv2.imread(str(moxa / "images" / PHOTO))
    s = 640 / max(photo.shape[:2])
    photo = cv2.resize(photo, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    frame = write_y4m(photo, tmp_path / "camera.y4m")
    # Python's detections of the same frame, slfm's pre/post-processing at the demo's settings: PyTorch for fp32;
    # for int8 the same .tflite in ai-edge-litert (int8 and fp32 disagree on borderline faces; the page must not).
    model, _ = load_model(web_artifacts["checkpoint"])
    if precision == "int8":
        path = web_artifacts["int8"]
        runner = load_runner(path, threads=1)
    det = Predictor(model if precision == "fp32" else runner, model.config)(frame)
    want = [
        {"box": b.tolist(), "score": float(sc), "label": int(lab)}
        for b, sc, lab in zip(det.boxes, det.scores, det.labels, strict=True)
    ]
    assert {d["label"] for d in want} == {1, 2}  # faces and masks on this photo

    build(tmp_path / "site", [web_artifacts[precision]])
    cam = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
    cam += (f"--use-file-for-fake-video-capture={tmp_path / 'camera.y4m'}",)
    with WebServer(tmp_path / "site") as srv, chromium(cam) as drv:
        drv.get(f"{srv.url}/index.html?camera=1&offline=0")
        state = await_js(drv, CAMERA_WAIT, 300, "demo page")
        shot = tmp_path / "screenshot.png"
        drv.find_element("id", "view").screenshot(str(shot))
        status = drv.find_element("id", "status").text
    assert state["state"] == "running", state.get("error")
    assert state["frameSize"] == [frame.shape[1], frame.shape[0]] and state["fps"] > 0
    assert "FPS" in status and f"{len(state['detections'])} detections" in status
    got = state["detections"]
    # Clear detections (score margin 0.15 over the demo threshold 0.5) are found on both sides, same label, and
    # the boxes agree to a pixel or so (Chromium resamples the letterbox and decodes YUV on its own; int8 rounds).
    iou_min, margin = (0.9, 0.15) if precision == "fp32" else (0.8, 0.15)
    for a, b in ((want, got), (got, want)):
        for d, hit, ov in match([d for d in a if d["score"] >= 0.5 + margin], b, iou_min):
            assert hit is not None, f"{precision}: {d} has no match (best IoU {ov:.3f}) in {b}"
            assert abs(hit["score"] - d["score"]) < 0.1
    # The screenshot is the frame with the boxes drawn: the label colours are in it.
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[1] == frame.shape[1]
    for bgr in ((70, 57, 230), (143, 157, 42)):  # no mask #e63946, mask #2a9d8f
        assert (np.abs(img.astype(int) - bgr).sum(axis=2) < 30).sum() > 200, f"no {bgr} boxes in the screenshot"


# ---------------------------------------------------------------------------------------------- parity


def test_parity_runs_fp32_and_int8_in_chromium(tmp_path, web_artifacts, browser, moxa):
    out = tmp_path / "rep"
    args = ["parity", str(web_artifacts["fp32"]), str(web_artifacts["int8"]), "--target", "browser"]
    args += ["--checkpoint", str(web_artifacts["checkpoint"]), "--data", str(moxa), "--dataset", "moxa3k"]
    args += ["--limit", "6"]
    # 6 images cannot resolve an int8 mAP difference (the 200-image run is in reports/parity_browser.md)
    args += ["--runs", "5", "--warmup", "1", "--out", str(out), "--threshold", "int8.max_map50_drop=1"]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    rep = json.loads(out.with_suffix(".json").read_text())
    rows = {
        (Path(a["artifact"]).name, (a.get("device") or {}).get("accelerator") or a["error"]): a
        for a in rep["artifacts"]
    }
    fp32 = rows[(web_artifacts["fp32"].name, "wasm")]
    assert fp32["target"] == "browser" and fp32["runtime"].startswith("LiteRT.js ") and "Chromium" in fp32["runtime"]
    assert fp32["passed"] is True and fp32["snr_db"] >= 40 and fp32["detection_recall"] == 1.0
    assert fp32["detections"]["reference"] > 0 and abs(fp32["map50_drop"]) < 1e-3
    assert fp32["latency_ms"]["runs"] == 5 and fp32["threads"] == 1 and fp32["device"]["demo_fps"] > 0
    int8 = rows[(web_artifacts["int8"].name, "wasm")]
    assert int8["passed"] is True and int8["snr_db"] >= 12 and int8["detection_recall"] >= 0.7
    # WebGPU: plain `browser` runs it where this Chromium offers a real adapter (float32 only), else skips, saying why.
    gpu = [a for a in rep["artifacts"] if (a.get("device") or {}).get("accelerator") == "webgpu"]
    gpu += [a for a in rep["artifacts"] if (a["error"] or "").startswith("webgpu: ")]
    assert sorted(a["precision"] for a in gpu) == ["fp32", "int8"], rep["artifacts"]
    for a in gpu:
        if a["precision"] == "int8" or a["status"] == "skipped":
            assert a["status"] == "skipped" and a["error"].startswith("webgpu: ") and a["passed"] is None
        else:
            assert a["passed"] is True and a["snr_db"] >= 40 and a["detection_recall"] == 1.0


def test_parity_webgpu_by_name_runs_fp32_even_on_a_software_adapter(tmp_path, web_artifacts, browser, moxa):
    """`browser:webgpu` runs wherever Chromium has an adapter and JSPI, SwiftShader (CPU) included: float32 on a
    GPU-style backend must still match PyTorch."""
    from slfm.device_tests.browser import webgpu_status

    status = webgpu_status()
    if not status.get("available"):
        pytest.skip(f"this Chromium offers no WebGPU: {status.get('reason')}")
    out = tmp_path / "rep"
    args = ["parity", str(web_artifacts["fp32"]), "--target", "browser:webgpu"]
    args += ["--data", str(moxa), "--dataset", "moxa3k"]
    args += ["--checkpoint", str(web_artifacts["checkpoint"]), "--limit", "2", "--runs", "2", "--warmup", "1"]
    r = cli(*args, "--out", str(out))
    assert r.exit_code == 0, r.output
    (row,) = json.loads(out.with_suffix(".json").read_text())["artifacts"]
    assert row["device"]["accelerator"] == "webgpu" and "WebGPU on" in row["runtime"]
    assert row["passed"] is True and row["snr_db"] >= 40 and row["detection_recall"] == 1.0


def test_parity_browser_target_without_chromium_says_so(tmp_path, monkeypatch):
    pytest.importorskip("skimage")
    art = tmp_path / "m.tflite"
    art.write_bytes(b"not run")
    (tmp_path / "m.tflite.json").write_text((REPO / "tests/golden/sidecar_int8.tflite.json").read_text())
    monkeypatch.setenv("SLFM_CHROMIUM", str(tmp_path / "no-chromium"))
    from slfm.checkpoint import bundled_checkpoint

    r = CliRunner().invoke(
        main,
        [
            "parity",
            str(art),
            "--target",
            "browser",
            "--limit",
            "1",
            "--checkpoint",
            str(bundled_checkpoint("moxa3k")),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code != 0 and "no chromium found" in r.output and "apt-get install chromium" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(
        main,
        [
            "parity",
            str(art),
            "--target",
            "browser:gpu",
            "--limit",
            "1",
            "--checkpoint",
            str(bundled_checkpoint("moxa3k")),
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert r.exit_code != 0 and "browser:wasm or browser:webgpu" in r.output
