"""The CLI end to end on real data (train briefly, eval, detect) and its handling of user mistakes."""

import json
import shutil
import subprocess
import sys

import cv2
import pytest
from click.testing import CliRunner

from slfm.cli import main
from slfm.images import read_image


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def trained(moxa, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    r = run(
        "train",
        "--data",
        moxa,
        "--dataset",
        "moxa3k",
        "--out",
        out,
        "--image-size",
        "256",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--limit",
        "16",
        "--val-limit",
        "8",
        "--init",
        "retinaface",
        "--workers",
        "0",
    )
    assert r.exit_code == 0, r.output
    assert "best checkpoint" in r.output
    return out / "best.pt"


def test_eval_writes_report_and_pr_plot(trained, moxa, tmp_path):
    report = tmp_path / "eval.json"
    r = run(
        "eval",
        trained,
        "--data",
        moxa,
        "--dataset",
        "moxa3k",
        "--split",
        "test",
        "--limit",
        "10",
        "--json",
        report,
        "--bootstrap",
        "10",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(report.read_text())
    assert data["images"] == 10 and data["split"] == "test" and data["mode"] == "letterbox"
    assert set(data["ap50"]) == {"face", "mask"}
    assert 0 <= data["map50"] <= 1 and 0 <= data["map50_95"] <= data["map50"] + 1e-9
    assert data["machine"]["cpu_count"] >= 1
    sizes = data["ap50_95_by_size"]  # COCO's small / medium / large faces, each from its own ground truth
    assert set(sizes) == {"small", "medium", "large"}
    # a box whose area is exactly 32² or 96² counts in both buckets beside it, as in pycocotools
    assert sum(sum(v["gt_counts"].values()) for v in sizes.values()) >= sum(data["gt_counts"].values())
    spread = data["map50_bootstrap"]
    assert spread["resamples"] == 10 and 0 <= spread["p5"] <= spread["p95"] <= 1 and spread["std"] >= 0
    # the paper's mAP protocol: per-class NMS 0.3 above 0.02, no face/mask suppression
    post = data["postprocess"]
    assert (post["score_threshold"], post["nms_iou"], post["cross_class_iou"]) == (0.02, 0.3, 0.0)
    assert report.with_suffix(".png").stat().st_size > 1000
    r = run("eval", trained, "--data", moxa, "--limit", "3", "--mode", "reference")
    assert r.exit_code == 0 and '"images": 3' in r.output


def test_detect_images_folder_and_video(trained, moxa, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    names = ["MOXA_0.jpg", "MOXA_1.jpg"]
    for n in names:
        shutil.copy(moxa / "images" / n, src / n)
    frames = [cv2.resize(read_image(moxa / "images" / n), (320, 240)) for n in names * 2]
    writer = cv2.VideoWriter(str(src / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for f in frames:
        writer.write(f)
    writer.release()
    out = tmp_path / "out"
    r = run("detect", trained, src, "--out", out, "--score-threshold", "0.3")
    assert r.exit_code == 0, r.output
    report = json.loads((out / "detections.json").read_text())
    assert set(report) == {str(src / n) for n in [*names, "clip.avi"]}
    img = report[str(src / "MOXA_0.jpg")]
    assert (img["width"], img["height"]) == (2000, 1363)
    for d in img["detections"]:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 2000 and 0 <= y1 < y2 <= 1363 and d["label"] in {"face", "mask"}
    assert len(report[str(src / "clip.avi")]["frames"]) == 4
    assert (out / "MOXA_0_det.jpg").is_file() and (out / "clip_det.mp4").is_file()


def test_info_reports_the_reference_size():
    r = run("info", "--image-size", "640")
    data = json.loads(r.output)
    assert data["anchors"] == 16800 and round(data["gmacs"], 3) == 0.972


@pytest.mark.parametrize("name", ["moxa3k", "aizoo"])
def test_info_describes_bundled_weights_at_their_size_with_their_card(name):
    from slfm.anchors import anchors
    from slfm.checkpoint import bundled_checkpoint, read_checkpoint
    from slfm.release import card_of

    data = json.loads(run("info", name).output)
    cfg = read_checkpoint(bundled_checkpoint(name))["model_config"]
    size = cfg["image_size"]
    assert data["input"] == size != 640
    assert data["anchors"] == len(anchors(size, size, cfg["min_sizes"], cfg["steps"]))
    card = card_of(bundled_checkpoint(name))
    assert [m["map50"] for m in data["metrics"]] == [round(r["map50"], 4) for r in card["metrics"]]
    assert data["metrics"][0]["map50"] > 0.5


def test_the_default_detector_is_the_joint_model_carded_on_both_test_sets():
    from slfm.checkpoint import BUNDLED, read_checkpoint, resolve_checkpoint
    from slfm.release import card_of

    path = resolve_checkpoint(None)  # what `slfm detect photo.jpg` loads
    assert path.name == BUNDLED["faces"]
    sources = {s["dataset"] for s in read_checkpoint(path)["data_sources"]}
    assert sources == {"aizoo", "moxa3k"}
    card = {(m["dataset"], m["split"]): m for m in card_of(path)["metrics"] if m["cross_class_iou"] == 0.0}
    assert {("aizoo", "val"), ("moxa3k", "test")} <= set(card)
    # the specialists stay for their own data set's commands (resolve by --dataset)
    assert resolve_checkpoint(None, "moxa3k").name == BUNDLED["moxa3k"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["eval", "nope.pt", "--data", "."], "checkpoint not found: nope.pt"),
        (["detect", "nope.pt", "x.jpg"], "checkpoint not found: nope.pt"),
        (["train", "--data", "/nonexistent/moxa", "--init", "none"], "folder not found: /nonexistent/moxa"),
        (["train", "--data", ".", "--dataset", "aizoo", "--init", "none"], "no split folder 'train'"),
        (["train", "--data", ".", "--init", "/no/such/weights.pth"], "weights file not found: /no/such/weights.pth"),
    ],
)
def test_user_mistakes_get_one_clear_line(args, needle, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "slfm.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_eval_rejects_an_iou_outside_0_1_as_a_usage_error(tmp_path):
    args = ["eval", "nope.pt", "--data", ".", "--nms-iou", "1.5"]
    proc = subprocess.run([sys.executable, "-m", "slfm.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'--nms-iou': 1.5 is not in the range 0<=x<=1" in proc.stderr


def test_corrupt_and_foreign_checkpoints(tmp_path, retinaface_weights):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"\x80\x04garbage")
    r = CliRunner().invoke(main, ["info", str(bad)])
    assert r.exit_code == 1 and "corrupt.pt is not a readable slfm checkpoint" in r.output
    r = CliRunner().invoke(main, ["info", str(retinaface_weights)])
    assert r.exit_code == 1 and "is not an slfm checkpoint" in r.output
    evil = tmp_path / "code.pt"
    import torch

    torch.save({"format": "slfm-checkpoint", "f": print}, evil)  # a pickled function: code, not data
    r = CliRunner().invoke(main, ["info", str(evil)])
    assert r.exit_code == 1 and "code.pt" in r.output


def test_bad_option_is_reported_by_click():
    r = CliRunner().invoke(main, ["train", "--data", ".", "--optimizer", "rmsprop"])
    assert r.exit_code == 2 and "rmsprop" in r.output


def test_resume_needs_only_the_checkpoint(trained, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(trained.parent, run_dir)
    r = run("train", "--resume", run_dir / "last.pt", "--epochs", "2", "--workers", "0")
    assert r.exit_code == 0, r.output
    with open(run_dir / "log.csv") as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == ["1", "2"]
    r = CliRunner().invoke(main, ["train", "--init", "none"])
    assert r.exit_code == 2 and "--data" in r.output


def test_several_formats_or_precisions_are_one_repeatable_option_and_the_old_commas_still_work():
    """--to / --precision, repeatable, in every command that takes several (convert, pipeline, bench); the old
    comma lists (--formats a,b) parse to the same values with a deprecation note, and a wrong name is refused."""
    import click

    from slfm.options import choices_option

    @click.command()
    @choices_option("--to", "--formats", ("tflite", "coreml", "executorch"), "formats", ("all", "none"))
    def cmd(to):
        click.echo(",".join(to) or "-")

    def out(*args):
        r = CliRunner().invoke(cmd, list(args))
        return r.exit_code, r.output.strip().splitlines()

    assert out() == (0, ["tflite,coreml,executorch"])  # all, in the table's order
    assert out("--to", "executorch", "--to", "tflite", "--to", "tflite") == (0, ["tflite,executorch"])
    assert out("--to", "none") == (0, ["-"])
    code, lines = out("--formats", "executorch,tflite")
    assert code == 0 and lines[-1] == "tflite,executorch" and "deprecated; use --to" in lines[0]
    assert out("--formats", "")[1][-1] == "-"
    code, lines = out("--formats", "onnx")
    assert code == 2 and "unknown 'onnx'" in lines[-1]
    assert out("--to", "onnx")[0] == 2

    @click.command()
    @choices_option("--to", "--formats", ("tflite", "executorch"), "formats")  # no "none" here
    def needs_one(to):
        click.echo(",".join(to))

    r = CliRunner().invoke(needs_one, ["--formats", ""])
    assert r.exit_code == 2 and "--formats: names none (choose from tflite, executorch)" in r.output


def test_bench_thread_counts_and_int8_rows_repeat_like_every_list_option():
    """bench artifacts' --threads / --int8: repeatable like --to; the old comma form parses with a note."""
    import click

    from slfm.options import repeated_option

    @click.command()
    @repeated_option("--threads", None, (1, 2), "a thread count", int)
    @repeated_option("--int8", ("ptq", "qat"), ("ptq", "qat"), "int8 rows")
    def cmd(threads, int8):
        click.echo(f"{threads} {int8}")

    def out(*args):
        r = CliRunner().invoke(cmd, list(args))
        return r.exit_code, r.output.strip().splitlines()

    assert out() == (0, ["(1, 2) ('ptq', 'qat')"])
    assert out("--threads", "4", "--threads", "1", "--int8", "qat") == (0, ["(1, 4) ('qat',)"])
    code, lines = out("--threads", "2,1", "--int8", "qat,ptq")
    assert code == 0 and lines[-1] == "(1, 2) ('ptq', 'qat')" and "--threads a,b is deprecated" in lines[0]
    assert out("--threads", "two")[0] == 2 and out("--threads", "0")[0] == 2
    code, lines = out("--int8", "fp16")
    assert code == 2 and "unknown 'fp16'" in lines[-1]
    assert out("--int8", "")[0] == 2
