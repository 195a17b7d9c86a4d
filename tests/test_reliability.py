"""Issue 15: artifacts are data, one bad input never costs the others, no silent wrong answers.

Each test plants the case the issue found (a crafted file, a bad option, an interrupted save) and checks the
command's answer: one clear line naming the file or value, and every other input's result kept."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from slfm.cli import main


def invoke(*args) -> tuple[int, str]:
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.output


class _RunsCode:
    """A pickle that creates ``marker`` when unpickled: loading it runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_pt2(path: Path, marker: Path) -> Path:
    """A real torch.export archive whose sample inputs are a code-running pickle: ``torch.export.load`` falls
    back to an unguarded unpickle on it and runs the code (checked on torch 2.13)."""

    class M(torch.nn.Module):
        def forward(self, x):
            return x + 1, x * 2

    ok = path.with_name("ok.pt2")
    torch.export.save(torch.export.export(M(), (torch.zeros(1, 3),)), str(ok))
    evil = io.BytesIO()
    torch.save(_RunsCode(marker), evil)
    with zipfile.ZipFile(ok) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, evil.getvalue() if info.filename.endswith("sample_inputs/model.pt") else data)
    ok.unlink()
    return path


@pytest.fixture(scope="module")
def tflite_fp32():
    """(reference checkpoint, a small real fp32 .tflite + sidecar), cached across sessions by the parity tests."""
    from test_parity_support import artifacts

    return artifacts()


def artifact_copy(src: Path, folder: Path, name: str | None = None, **sidecar) -> Path:
    """``src`` and its sidecar copied into ``folder`` (sidecar fields replaced by ``sidecar``)."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    shutil.copyfile(src, dst)
    meta = json.loads(Path(str(src) + ".json").read_text())
    meta.update(sidecar)
    Path(str(dst) + ".json").write_text(json.dumps(meta))
    return dst


PARITY_FAST = ["--runs", "1", "--warmup", "0", "--no-tflite-runtime", "--layers", "never"]


# ------------------------------------------------------------------------------------------ 1. artifacts are data


def test_crafted_pt2_is_never_loaded(tmp_path):
    from slfm.device_tests.reference import load_fake_quant
    from slfm.errors import SlfmError

    marker = tmp_path / "ran"
    evil = crafted_pt2(tmp_path / "fq.pt2", marker)
    with pytest.raises(SlfmError, match="fq.pt2: a torch.export program"):
        load_fake_quant(evil)
    assert not marker.exists()
    code, out = invoke("parity", tmp_path, "--fake-quant", evil)  # refused at the option, before any work
    assert code == 2 and "torch.export program (.pt2) can hold code" in out and not marker.exists()


def test_parity_on_a_folder_whose_sidecar_names_a_crafted_pt2_runs_no_code(tflite_fp32, tmp_path):
    ckpt, tfl = tflite_fp32
    folder = tmp_path / "downloaded"
    marker = tmp_path / "ran"
    crafted_pt2(folder.parent / "fq.pt2", marker)
    art = artifact_copy(tfl, folder, precision="int8", extra={"fake_quant": "../fq.pt2"})
    out = tmp_path / "rep"
    code, text = invoke("parity", folder, "--checkpoint", ckpt, "--limit", "1", *PARITY_FAST, "--out", out)
    assert not marker.exists()
    row = json.loads(out.with_suffix(".json").read_text())["artifacts"][0]
    assert row["artifact"] == str(art) and row["status"] == "ok"  # the artifact itself was still checked
    assert "fq.pt2: a torch.export program" in row["fake_quant_note"] and "vs_fake_quant" not in row


# ------------------------------------------------------------------------------------------ helpers: real photos


def photo(name: str = "astronaut"):
    """A real photo scikit-image ships (BGR): astronaut has one face the bundled AIZOO weights find."""
    import numpy as np
    from skimage import data

    rgb = getattr(data, name)()
    return np.ascontiguousarray(rgb[..., :3][..., ::-1])


def write_photo(path: Path, name: str = "astronaut") -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), photo(name))
    return path


def cut(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """A copy of ``src`` cut after ``keep`` of its bytes: header fine, data missing."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def voc_pair(folder: Path, stem: str, name: str = "astronaut", box=(170, 20, 290, 200), xml: str | None = None):
    """A real photo + a VOC XML (one face box, or the given XML text) in ``folder``."""
    img = write_photo(folder / f"{stem}.jpg", name)
    h, w = photo(name).shape[:2]
    x1, y1, x2, y2 = box
    text = xml or (
        f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size><object><name>face"
        f"</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        "</annotation>"
    )
    (folder / f"{stem}.xml").write_text(text)
    return img


# ------------------------------------------------------------------------------------------ 2. one bad input


def test_detect_folder_keeps_going_past_unreadable_images(tmp_path):
    src = tmp_path / "in"
    good = write_photo(src / "b_good.jpg")
    (src / "a_empty.jpg").write_bytes(b"")
    (src / "c_noise.png").write_bytes(os.urandom(3000))
    cut(good, src / "a_cut.jpg")
    out = tmp_path / "out"
    code, text = invoke("detect", src, "--out", out)
    assert code == 1
    for bad in ("a_empty.jpg", "c_noise.png", "a_cut.jpg"):
        assert text.count(f"warning: cannot decode image {src / bad}") == 1, text
    assert "Error: 3 of 4 input(s) failed" in text
    report = json.loads((out / "detections.json").read_text())
    assert len(report) == 4 and "truncated" in report[str(src / "a_cut.jpg")]["error"]
    assert len(report[str(good)]["detections"]) == 1 and (out / "b_good_det.jpg").is_file()


def test_eval_and_training_skip_a_jpeg_whose_pixels_are_cut(tmp_path):
    import warnings

    from slfm.config import ModelConfig
    from slfm.data import DetectionDataset
    from slfm.images import DataWarning
    from slfm.voc import load_dataset

    data = tmp_path / "voc"
    for i in range(3):
        voc_pair(data, f"img{i}")
    cut(data / "img1.jpg", data / "img1.jpg.part")
    os.replace(data / "img1.jpg.part", data / "img1.jpg")
    with pytest.warns(DataWarning, match=r"img1.jpg: the image file is truncated"):
        samples = load_dataset(data, "voc", "x")
    assert [s.image.name for s in samples] == ["img0.jpg", "img2.jpg"]
    code, text = invoke("eval", "aizoo", "--data", data, "--dataset", "voc", "--split", "x")
    assert code == 0 and "img1.jpg: the image file is truncated" in text
    assert json.loads(text[text.index("{") :])["images"] == 2

    # cut after the dataset was loaded: eval leaves it out, training substitutes another image (2 workers)
    cut(data / "img2.jpg", data / "img2.jpg.part")
    os.replace(data / "img2.jpg.part", data / "img2.jpg")
    from slfm.checkpoint import bundled_checkpoint, load_model
    from slfm.evaluate import evaluate_samples
    from slfm.predictor import Predictor

    model, _ = load_model(bundled_checkpoint("aizoo"))
    with pytest.warns(DataWarning, match="img2.jpg"):
        r = evaluate_samples(Predictor(model, model.config), samples, progress=False)
    assert r["images"] == 1 and r["skipped"] == [str(data / "img2.jpg")]
    ds = DetectionDataset(samples, ModelConfig(image_size=64))
    with pytest.warns(DataWarning, match="img2.jpg.*another training image"):
        assert ds[1][0].shape == (3, 64, 64)
    fresh = DetectionDataset(samples, ModelConfig(image_size=64))  # workers warn in their own processes
    loader = torch.utils.data.DataLoader(fresh, batch_size=2, num_workers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ((x, *_rest),) = list(loader)
    assert x.shape == (2, 3, 64, 64)


def test_parity_fails_only_the_bad_artifacts_and_checks_the_rest(tflite_fp32, tmp_path):
    """Random bytes and truncated copies of a .tflite and a .pte, a sidecar with another input size, random and
    truncated sidecars: each is one failed row naming its file; the good artifact (sorted last) still passes."""
    ckpt, tfl = tflite_fp32
    folder = tmp_path / "arts"
    artifact_copy(tfl, folder, "z_good.tflite")
    data = tfl.read_bytes()
    bad = {
        "a_random.tflite": os.urandom(4096),
        "b_cut.tflite": data[: len(data) // 2],
        "c_random.pte": os.urandom(4096),
        "d_empty.pte": b"",
    }
    for name, content in bad.items():
        p = artifact_copy(tfl, folder, name, format="executorch" if name.endswith(".pte") else "tflite")
        p.write_bytes(content)
    artifact_copy(tfl, folder, "e_size.tflite", image_size=512)
    sidecar = Path(str(tfl) + ".json").read_bytes()
    for name, content in {"f_noise.tflite": os.urandom(300), "g_cut.tflite": sidecar[: len(sidecar) // 2]}.items():
        Path(str(artifact_copy(tfl, folder, name)) + ".json").write_bytes(content)
    out = tmp_path / "rep"
    code, text = invoke("parity", folder, "--checkpoint", ckpt, "--limit", "1", *PARITY_FAST, "--out", out)
    assert code == 1 and "parity failed for 7 of 8" in text
    rows = {Path(r["artifact"]).name: r for r in json.loads(out.with_suffix(".json").read_text())["artifacts"]}
    assert rows["z_good.tflite"]["passed"] is True
    for name in [*bad, "e_size.tflite", "f_noise.tflite", "g_cut.tflite"]:
        assert rows[name]["status"] == "error" and rows[name]["passed"] is False, rows[name]
        assert name in rows[name]["error"], rows[name]["error"]
    assert "sidecar says [1, 3, 512, 512]" in rows["e_size.tflite"]["error"]
    assert "not an ExecuTorch program" in rows["c_random.pte"]["error"]
    assert "unreadable artifact metadata" in rows["f_noise.tflite"]["error"]


# ------------------------------------------------------------------------------------------ 3. silent wrong answers


@pytest.mark.parametrize("field, value", [("xmax", "nan"), ("ymin", "inf"), ("xmin", "-inf"), ("ymax", "ten")])
def test_non_finite_or_non_numeric_box_is_reported_never_kept(tmp_path, field, value):
    from slfm.images import DataWarning
    from slfm.voc import load_dataset

    coords = {"xmin": "10", "ymin": "10", "xmax": "60", "ymax": "80", field: value}
    box = "".join(f"<{k}>{v}</{k}>" for k, v in coords.items())
    xml = (
        "<annotation><size><width>512</width><height>512</height></size>"
        f"<object><name>face</name><bndbox>{box}</bndbox></object>"
        "<object><name>mask</name><bndbox><xmin>100</xmin><ymin>100</ymin><xmax>200</xmax><ymax>220</ymax>"
        "</bndbox></object></annotation>"
    )
    voc_pair(tmp_path, "p", xml=xml)
    with pytest.warns(DataWarning, match=rf"p.xml: object 0 \(face\) .*<{field}> '{value}'"):
        (s,) = load_dataset(tmp_path, "voc", "x")
    assert s.boxes.tolist() == [[100, 100, 200, 220]] and s.labels.tolist() == [2]


def test_non_numeric_size_is_a_warning_not_a_traceback(tmp_path):
    from slfm.images import DataWarning
    from slfm.voc import load_dataset

    xml = (
        "<annotation><size><width>wide</width><height>512</height></size><object><name>face</name><bndbox>"
        "<xmin>10</xmin><ymin>10</ymin><xmax>60</xmax><ymax>80</ymax></bndbox></object></annotation>"
    )
    voc_pair(tmp_path, "p", xml=xml)
    with pytest.warns(DataWarning, match=r"p.xml: non-numeric <width> 'wide'; using the image's size 512x512"):
        (s,) = load_dataset(tmp_path, "voc", "x")
    assert (s.width, s.height) == (512, 512) and len(s.boxes) == 1


def test_exif_orientation_is_applied_as_viewers_do(tmp_path):
    """A real photo stored rotated with the EXIF tag saying so (as phones do) reads, sizes and detects upright."""
    import cv2
    import numpy as np
    from PIL import Image

    from slfm.images import image_size, read_image

    upright = np.ascontiguousarray(photo()[:, :384])  # the astronaut's face in a portrait frame, 384 wide x 512 high
    rgb = np.ascontiguousarray(np.rot90(upright, 1)[..., ::-1])  # stored turned 90 degrees counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to show"
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    assert cv2.imwrite(str(tmp_path / "upright.jpg"), upright)
    assert image_size(tmp_path / "phone.jpg") == (384, 512)
    a, b = read_image(tmp_path / "phone.jpg"), read_image(tmp_path / "upright.jpg")
    assert a.shape == b.shape == (512, 384, 3) and np.abs(a.astype(int) - b).mean() < 3
    code, _ = invoke("detect", tmp_path, "--out", tmp_path / "out", "--score", "0.3")
    rep = json.loads((tmp_path / "out" / "detections.json").read_text())
    phone, ref = rep[str(tmp_path / "phone.jpg")], rep[str(tmp_path / "upright.jpg")]
    assert code == 0 and (phone["width"], phone["height"]) == (384, 512)
    assert len(phone["detections"]) == len(ref["detections"]) >= 1
    for d, e in zip(phone["detections"], ref["detections"], strict=True):
        assert d["label"] == e["label"] and np.abs(np.subtract(d["box"], e["box"])).max() < 8


def test_detect_names_outputs_apart_and_reports_an_unwritable_one(tmp_path):
    import cv2
    import numpy as np

    src = tmp_path / "in"
    for suffix in (".jpg", ".jpeg", ".png"):
        write_photo(src / f"photo{suffix}")
    cv2.imwrite(str(src / "wide.png"), np.full((4, 70000, 3), 127, np.uint8))
    cv2.imwrite(str(src / "line.png"), np.full((1, 4000, 3), 127, np.uint8))  # 4000x1: letterboxed to 1 px
    out = tmp_path / "out"
    code, text = invoke("detect", src, "--out", out)
    assert code == 1 and "Error: 1 of 5 input(s) failed" in text
    assert sorted(p.name for p in out.glob("*_det.jpg")) == [
        "line_det.jpg",
        "photo_jpeg_det.jpg",
        "photo_jpg_det.jpg",
        "photo_png_det.jpg",
    ]
    wide = json.loads((out / "detections.json").read_text())[str(src / "wide.png")]
    assert "wide_det.jpg" in wide["error"] and "65500" in wide["error"] and "detections" in wide  # kept


# ------------------------------------------------------------------------------------------ 4. user mistakes


@pytest.fixture
def a_file(tmp_path) -> Path:
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile"


@pytest.mark.parametrize(
    "args, option",
    [
        (["train", "--data", ".", "--image-size", "0"], "--image-size"),
        (["train", "--data", ".", "--batch-size", "0"], "--batch-size"),
        (["train", "--data", ".", "--lr", "-1"], "--lr"),
        (["train", "--data", ".", "--workers", "-1"], "--workers"),
        (["train", "--data", ".", "--threads", "-2"], "--threads"),
        (["train", "--data", ".", "--val-every", "0"], "--val-every"),
        (["train", "--data", ".", "--epochs", "-1"], "--epochs"),
        (["train", "--data", ".", "--out", "{file}"], "--out"),
        (["train", "--data", ".", "--out", "{file}/run"], "--out"),
        (["detect", "x.jpg", "--size", "-32"], "--size"),
        (["detect", "x.jpg", "--score", "2"], "--score"),
        (["detect", "x.jpg", "--nms", "5"], "--nms"),
        (["detect", "x.jpg", "--out", "{file}"], "--out"),
        (["eval", "--data", ".", "--limit", "-1"], "--limit"),
        (["eval", "--data", ".", "--json", "{dir}"], "--json"),
        (["info", "--image-size", "0"], "--image-size"),
        (["ptq", "aizoo", "--data", ".", "--calib", "0"], "--calib"),
        (["convert", "aizoo", "--out", "{file}"], "--out"),
        (["convert", "aizoo", "--calib", "0"], "--calib"),
        (["parity", ".", "--threads", "0"], "--threads"),
        (["parity", ".", "--limit", "-1"], "--limit"),
        (["compact", "--data", ".", "--out", "o", "--quality", "0"], "--quality"),
    ],
)
def test_bad_options_are_usage_errors_before_any_work(args, option, a_file, tmp_path):
    args = [a.format(file=a_file, dir=tmp_path) for a in args]
    code, out = invoke(*args)
    assert code == 2 and f"Invalid value for '{option}'" in out, out


def test_a_4000x1_image_is_detected_not_a_traceback(tmp_path):
    import cv2
    import numpy as np

    cv2.imwrite(str(tmp_path / "line.png"), np.full((1, 4000, 3), 127, np.uint8))
    code, out = invoke("detect", tmp_path / "line.png", "--out", tmp_path / "out", "--mode", "reference")
    assert code == 0 and (tmp_path / "out" / "line_det.jpg").is_file(), out


# ------------------------------------------------------------------------------------------ 7. messages


def test_corrupt_checkpoints_never_get_advice_to_lift_the_safety_check(tmp_path):
    evil = tmp_path / "code.pt"
    torch.save({"format": "slfm-checkpoint", "x": _RunsCode(tmp_path / "ran")}, evil)
    cut(evil, tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x80\x04garbage")
    for f, why in (("code.pt", "holds code"), ("cut.pt", "corrupt or truncated"), ("junk.pt", "corrupt")):
        code, out = invoke("info", tmp_path / f)
        assert code == 1 and f"{tmp_path / f} is not a readable slfm checkpoint" in out and why in out, out
        assert "weights_only" not in out and "trusted source" not in out and "Re-running" not in out
    assert not (tmp_path / "ran").exists()


def test_detect_says_what_it_takes_when_given_an_artifact(tmp_path):
    art = tmp_path / "model.tflite"
    art.write_bytes(b"\x1c\x00\x00\x00TFL3" + os.urandom(100))
    code, out = invoke("detect", art)
    assert code == 1 and "model.tflite is an on-device artifact: detect takes [CHECKPOINT|ARTIFACT] SOURCE" in out
    write_photo(tmp_path / "p.jpg")
    code, out = invoke("detect", art, tmp_path / "p.jpg")  # an artifact is run, so a broken one says why
    assert code == 1 and f"{art}: no sidecar model.tflite.json, and its embedded metadata is unreadable" in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out
    pte = tmp_path / "model.pte"  # not an ExecuTorch program: refused before executorch could abort the process
    pte.write_bytes(b"\x00\x00\x00\x00\xff\xfe" + os.urandom(64))
    code, out = invoke("detect", pte, tmp_path / "p.jpg")
    assert code == 1 and f"{pte}: not an ExecuTorch program (no 'ET..' identifier at byte 4)" in out, out


@pytest.mark.parametrize("spec", ["ssh://-vvv", "ssh://-oBatchMode", "ssh://-q@pi", "ssh://-Fx:22"])
def test_ssh_target_starting_with_a_dash_is_refused(spec):
    from slfm.device_tests.remote import SshRemote
    from slfm.errors import SlfmError

    with pytest.raises(SlfmError, match="starting with '-' would be read by ssh as an option"):
        SshRemote.parse(spec)


def test_ptq_and_qat_take_bundled_names(tmp_path):
    for cmd in ("ptq", "qat"):
        code, out = invoke(cmd, "aizoo", "--data", tmp_path / "none", "--dataset", "aizoo", "--out", tmp_path / cmd)
        assert code == 1 and "folder not found" in out and "checkpoint not found" not in out, out


# ------------------------------------------------------------------------------------------ 5. training bookkeeping

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def log_epochs(run: Path) -> list[int]:
    lines = (run / "log.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,")
    return [int(line.split(",")[0]) for line in lines[1:]]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A real 2-epoch run (4 real photos at 64 px), started from its own folder with a relative --data."""
    root = tmp_path_factory.mktemp("tiny")
    for i, name in enumerate(PHOTOS):
        voc_pair(root / "voc", f"p{i}", name)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        args = ["train", "--data", "voc", "--dataset", "voc", "--split", "x", "--val-split", "x", "--out", "run"]
        code, out = invoke(*args, "--image-size", "64", "--epochs", "2", "--batch-size", "2", "--workers", "0",
                           "--init", "none")  # fmt: skip
    finally:
        os.chdir(cwd)
    assert code == 0, out
    assert log_epochs(root / "run") == [1, 2]
    return root / "run"


def resume(run: Path, epochs: int, cwd: Path) -> str:
    here = os.getcwd()
    os.chdir(cwd)
    try:
        code, out = invoke("train", "--resume", run / "last.pt", "--epochs", epochs, "--workers", "0")
    finally:
        os.chdir(here)
    assert code == 0, out
    return out


def test_a_run_resumes_from_any_folder(tiny_run, tmp_path):
    run = tmp_path / "moved"
    shutil.copytree(tiny_run, run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resume(run, 3, elsewhere)  # the data path was relative to another folder
    assert log_epochs(run) == [1, 2, 3]


def test_resume_after_a_kill_between_last_pt_and_the_log_row(tiny_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    log = run / "log.csv"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))  # epoch 2's row never written
    resume(run, 3, tmp_path)
    assert log_epochs(run) == [1, 2, 3]


def test_resume_after_a_kill_between_the_log_row_and_last_pt(tiny_run, tmp_path):
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    with open(run / "log.csv", "a") as f:  # epoch 3 logged, killed before its last.pt (the old order)
        f.write("3,0.001,1,1,1,1,0.5,0.5,0.5,1,1\n")
    resume(run, 3, tmp_path)
    assert log_epochs(run) == [1, 2, 3]


def test_best_is_saved_before_last_and_read_back_on_resume(tiny_run, tmp_path):
    from slfm.checkpoint import load_model, read_checkpoint, save_checkpoint
    from slfm.train import FloatTraining, save_epoch, saved_best

    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    last = read_checkpoint(run / "last.pt")
    model, _ = load_model(run / "last.pt")
    meta = {k: last[k] for k in ("train_config", "train_machine", "epoch", "metrics")}
    state = last["train_state"]
    save_epoch(run, FloatTraining(model), model, state["log_row"], meta, improved=True, train_state=state)
    files = [run / "best.pt", run / "last.pt", run / "log.csv"]
    assert [f.stat().st_mtime_ns for f in files] == sorted(f.stat().st_mtime_ns for f in files)
    # killed after best.pt, before last.pt: best.pt holds a newer, better epoch than last.pt knows of
    save_checkpoint(run / "best.pt", model, model.config, **{**meta, "metrics": {**meta["metrics"], "map50": 2.0}})
    assert saved_best(run / "best.pt", "another-run") == -1.0  # an earlier run's best.pt in the folder: ignored
    out = resume(run, 3, tmp_path)
    assert read_checkpoint(run / "best.pt")["metrics"]["map50"] == 2.0  # not replaced by a worse epoch
    assert f"best checkpoint: {run / 'best.pt'}" in out


def test_divergence_names_no_checkpoint_that_does_not_exist(tmp_path):
    for i, name in enumerate(PHOTOS):
        voc_pair(tmp_path / "voc", f"p{i}", name)
    args = [
        "--data",
        tmp_path / "voc",
        "--dataset",
        "voc",
        "--split",
        "x",
        "--val-split",
        "",
        "--out",
        tmp_path / "run",
    ]
    code, out = invoke("train", *args, "--image-size", "64", "--epochs", "2", "--batch-size", "2", "--workers", "0",
                       "--init", "none", "--lr", "1e38")  # fmt: skip
    assert code == 1 and "training diverged at epoch 1" in out and "no checkpoint was saved before it" in out
    assert not (tmp_path / "run" / "last.pt").exists()


# ------------------------------------------------------------------------------------------ 6. concurrent runs


@pytest.fixture
def held(tmp_path):
    """An output folder held by another live process (a real one, holding slfm's folder lock)."""
    import subprocess
    import sys
    import time

    folder = tmp_path / "held"
    code = f"import time; from slfm.outputs import folder_lock\nwith folder_lock({str(folder)!r}):\n time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    lock = folder / ".slfm.lock"
    for _ in range(200):
        if lock.is_file() and lock.read_text().strip():
            break
        time.sleep(0.05)
    yield folder, proc.pid
    proc.kill()
    proc.wait()


def test_a_folder_held_by_a_live_run_is_refused(held, tmp_path):
    folder, pid = held
    write_photo(tmp_path / "p.jpg")
    data = tmp_path / "voc"
    voc_pair(data, "p0")
    for args in (
        ["detect", tmp_path / "p.jpg", "--out", folder],
        ["convert", "aizoo", "--to", "tflite", "--out", folder],
        ["train", "--data", data, "--dataset", "voc", "--out", folder, "--init", "none"],
    ):
        code, out = invoke(*args)
        assert code == 1 and f"{folder} is in use by another slfm {args[0]} run (pid {pid}" in out, out
    assert not (folder / "detections.json").exists() and not list(folder.glob("*.tflite"))


def test_a_stale_lock_from_a_killed_run_is_taken_over(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    import socket

    (out / ".slfm.lock").write_text(f"{dead.pid} {socket.gethostname()}\n")
    write_photo(tmp_path / "p.jpg")
    code, text = invoke("detect", tmp_path / "p.jpg", "--out", out)
    assert code == 0, text
    assert (out / "detections.json").is_file() and not (out / ".slfm.lock").exists()


def test_an_interrupted_write_leaves_the_old_file_and_no_temp(tmp_path):
    from slfm.outputs import atomic_path, write_text

    target = write_text(tmp_path / "report.json", "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


# ------------------------------------------------------------------------------------------ fuzz: every input kind

CORRUPTIONS = ("random", "half", "tenth", "empty")


def corrupt(src: Path, dst: Path, how: str) -> Path:
    """``dst``: random bytes (as long as ``src``, fixed seed), ``src`` cut to a half or a tenth, or empty."""
    import random

    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(
        {
            "random": random.Random(len(data)).randbytes(max(len(data), 64)),
            "half": data[: len(data) // 2],
            "tenth": data[: len(data) // 10],
            "empty": b"",
        }[how]
    )
    return dst


def error_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("Error:")]


@pytest.fixture(scope="module")
def voc_data(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("fuzzvoc")
    for i, name in enumerate(PHOTOS[:3]):
        voc_pair(data, f"p{i}", name)
    return data


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_fuzz_checkpoint_through_every_command(how, voc_data, tflite_fp32, tmp_path):
    from slfm.checkpoint import bundled_checkpoint

    bad = corrupt(bundled_checkpoint("aizoo"), tmp_path / "bad.pt", how)
    _, tfl = tflite_fp32
    write_photo(tmp_path / "p.jpg")
    for args in (
        ["info", bad],
        ["detect", bad, tmp_path / "p.jpg", "--out", tmp_path / "det"],
        ["eval", bad, "--data", voc_data, "--dataset", "voc", "--split", "x"],
        ["convert", bad, "--to", "tflite", "--out", tmp_path / "art"],
        ["parity", tfl, "--checkpoint", bad, *PARITY_FAST, "--limit", "1", "--out", tmp_path / "rep"],
    ):
        code, out = invoke(*args)
        errors = error_lines(out)
        assert code == 1 and len(errors) == 1 and str(bad) in errors[0], (args[0], out)
        assert "weights_only" not in out
    assert not list((tmp_path / "art").glob("*.tflite"))


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_fuzz_image_in_a_folder_and_alone(how, tmp_path):
    good = write_photo(tmp_path / "in" / "good.jpg")
    bad = corrupt(good, tmp_path / "in" / "bad.jpg", how)
    code, out = invoke("detect", tmp_path / "in", "--out", tmp_path / "out")
    assert code == 1 and out.count(f"warning: cannot decode image {bad}") == 1, out
    report = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert len(report[str(good)]["detections"]) == 1 and "error" in report[str(bad)]
    code, out = invoke("detect", bad, "--out", tmp_path / "alone")
    assert code == 1 and len(error_lines(out)) == 1 and "bad.jpg" in error_lines(out)[0], out


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_fuzz_voc_xml_in_a_dataset_and_alone(how, voc_data, tmp_path):
    data = tmp_path / "voc"
    shutil.copytree(voc_data, data)
    bad = corrupt(voc_data / "p1.xml", data / "p1.xml", how)
    code, out = invoke("eval", "aizoo", "--data", data, "--dataset", "voc", "--split", "x")
    warns = [line for line in out.splitlines() if line.startswith("warning:")]
    assert code == 0 and len(warns) == 1 and str(bad) in warns[0], out
    assert json.loads(out[out.index("{") :])["images"] == 2  # the other two images still evaluated
    for p in ("p0", "p2"):
        (data / f"{p}.xml").unlink()
    code, out = invoke("eval", "aizoo", "--data", data, "--dataset", "voc", "--split", "x")
    assert code == 1 and len(error_lines(out)) == 1 and "no usable annotated images" in out, out


@pytest.mark.parametrize("kind", ["tflite", "pte", "sidecar"])
@pytest.mark.parametrize("how", CORRUPTIONS)
def test_fuzz_artifact_and_sidecar_beside_a_good_artifact(kind, how, tflite_fp32, tmp_path):
    ckpt, tfl = tflite_fp32
    folder = tmp_path / "arts"
    artifact_copy(tfl, folder, "good.tflite")
    if kind == "sidecar":
        bad = artifact_copy(tfl, folder, "bad.tflite")
        corrupt(Path(str(tfl) + ".json"), Path(str(bad) + ".json"), how)
    else:
        bad = artifact_copy(tfl, folder, f"bad.{kind}", format="executorch" if kind == "pte" else "tflite")
        corrupt(tfl, bad, how)
    out = tmp_path / "rep"
    code, text = invoke("parity", folder, "--checkpoint", ckpt, "--limit", "1", *PARITY_FAST, "--out", out)
    assert code == 1 and error_lines(text) == [f"Error: parity failed for 1 of 2: {bad.name} on local"], text
    rows = {Path(r["artifact"]).name: r for r in json.loads(out.with_suffix(".json").read_text())["artifacts"]}
    assert rows["good.tflite"]["passed"] is True
    assert rows[bad.name]["status"] == "error" and str(bad) in rows[bad.name]["error"], rows[bad.name]


def test_reports_name_paths_under_the_working_folder_relatively(tmp_path, monkeypatch):
    from slfm.outputs import shown_path

    (tmp_path / "slfm" / "models").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "slfm" / "models" / "x.pt") == "slfm/models/x.pt"
    assert shown_path("slfm/models/x.pt") == "slfm/models/x.pt"
    outside = tmp_path.parent / "elsewhere.pt"
    assert shown_path(outside) == str(outside)  # not under it: as given
