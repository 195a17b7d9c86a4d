"""Training on real Moxa3K images: the loss falls, 8 images are learnt, resume and DDP work."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from slfm.checkpoint import load_model, read_checkpoint
from slfm.config import ModelConfig
from slfm.evaluate import evaluate_samples
from slfm.postprocess import EVAL
from slfm.predictor import Predictor
from slfm.train import TrainConfig, epochs_within, train
from tests.conftest import REPO

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def tiny_config(moxa, out, **overrides) -> TrainConfig:
    """16 real Moxa3K images, batch 8, no validation, no init, in-process loading."""
    base = dict(data=str(moxa), dataset="moxa3k", out=str(out), batch_size=8, limit=16, val_split="")
    return TrainConfig(**{**base, "init": "none", "workers": 0, **overrides})


def test_short_run_on_64_images_lowers_the_loss(moxa, tmp_path):
    cfg = TrainConfig(
        data=str(moxa),
        dataset="moxa3k",
        out=str(tmp_path),
        epochs=3,
        batch_size=16,
        limit=64,
        val_split="",
        init="imagenet",
        workers=0,
        lr=2e-3,
        warmup_epochs=0.5,
    )
    last = train(cfg, ModelConfig(image_size=320), progress=False)
    log = rows(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in log] == [1, 2, 3]
    assert float(log[-1]["loss"]) < 0.8 * float(log[0]["loss"])
    assert last.name == "last.pt" and "train_state" in read_checkpoint(last)


def test_epochs_within_a_time_limit():
    assert epochs_within(100, 30, 3, 0) == 10  # 10 s an epoch
    assert epochs_within(100, 30, 3, 5) == 15  # a resumed run's earlier epochs cost none of this limit
    assert epochs_within(10, 30, 3, 0) == 3  # never fewer than the epochs already done
    assert epochs_within(29.9, 10, 1, 0) == 2  # never past the limit


def test_time_limit_stops_the_run_and_snapshots_are_kept(moxa, tmp_path):
    cfg = tiny_config(moxa, tmp_path, epochs=50, time_limit=0.001, save_period=1)  # one epoch is past the limit
    last = train(cfg, ModelConfig(image_size=256), progress=False)
    assert [int(r["epoch"]) for r in rows(tmp_path / "log.csv")] == [1]
    snap = read_checkpoint(tmp_path / "epoch1.pt")
    assert snap["epoch"] == 1 and snap["train_state"]["epoch"] == 0  # a snapshot is resumable, as last.pt
    ckpt = read_checkpoint(last)
    # the checkpoint names the machine it was trained on (release cards quote it)
    assert ckpt["train_machine"]["processor"] and ckpt["train_machine"]["torch"] == torch.__version__
    assert ckpt["train_machine"]["accelerator"] is None and ckpt["train_config"]["time_limit"] == 0.001
    assert ckpt["train_config"]["epochs"] == 1 and ckpt["epoch"] == 1  # the plan as the limit ended it


def test_the_epoch_a_time_limit_makes_last_is_validated(moxa, tmp_path):
    # validation every 5 epochs, but the limit ends the run after the first: that epoch is the one to score
    cfg = tiny_config(moxa, tmp_path, epochs=50, time_limit=0.001, val_split="test", val_limit=4, val_every=5)
    best = train(cfg, ModelConfig(image_size=256), progress=False)
    log = rows(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in log] == [1] and log[0]["map50"] != ""
    logged = float(log[0]["map50"])  # the CSV keeps 6 significant digits
    assert best.name == "best.pt" and read_checkpoint(best)["metrics"]["map50"] == pytest.approx(logged, rel=1e-5)
    assert read_checkpoint(tmp_path / "last.pt")["train_config"]["epochs"] == 1


def test_overfits_8_real_images(easy_moxa_samples, moxa, tmp_path):
    names = [s.image.stem for s in easy_moxa_samples]
    root = tmp_path / "data"
    root.mkdir()
    for d in ("images", "annotations"):
        (root / d).symlink_to(moxa / d)
    (root / "eight.txt").write_text("\n".join(f"Moxa3K/images/{n}.jpg" for n in names) + "\n")
    cfg = TrainConfig(
        data=str(root),
        dataset="moxa3k",
        split="eight",
        val_split="eight",
        out=str(tmp_path / "run"),
        epochs=100,
        batch_size=8,
        lr=5e-3,
        weight_decay=0,
        warmup_epochs=2,
        init="retinaface",
        workers=0,
        augment=False,
        val_every=50,
    )
    best = train(cfg, ModelConfig(image_size=320), progress=False)
    model, ckpt = load_model(best)
    result = evaluate_samples(Predictor(model, model.config, "letterbox", 320, EVAL), easy_moxa_samples, progress=False)
    assert result["map50"] > 0.9, result["ap50"]
    assert ckpt["metrics"]["map50"] == pytest.approx(result["map50"])


def test_resume_continues_exactly(moxa, tmp_path):
    base = dict(
        data=str(moxa), dataset="moxa3k", epochs=2, batch_size=8, limit=16, val_split="", init="none", workers=0, seed=5
    )
    straight = TrainConfig(**base, out=str(tmp_path / "a"))
    train(straight, ModelConfig(image_size=256), progress=False)
    first = TrainConfig(**{**base, "epochs": 1}, out=str(tmp_path / "b"))
    train(first, ModelConfig(image_size=256), progress=False)
    # resume extends the run to 2 epochs with the schedule of a 2-epoch run
    again = TrainConfig(**{**base, "epochs": 2}, out=str(tmp_path / "b"))
    train(again, ModelConfig(image_size=999), resume=tmp_path / "b" / "last.pt", progress=False)
    a, b = read_checkpoint(tmp_path / "a" / "last.pt"), read_checkpoint(tmp_path / "b" / "last.pt")
    assert b["epoch"] == 2 and b["model_config"]["image_size"] == 256  # the checkpoint's own config wins
    assert [int(r["epoch"]) for r in rows(tmp_path / "b" / "log.csv")] == [1, 2]
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-5), k


def test_torchrun_ddp_two_cpu_processes(moxa, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29533",
        "-m",
        "slfm.cli",
        "train",
        "--data",
        str(moxa),
        "--dataset",
        "moxa3k",
        "--out",
        str(out),
        "--image-size",
        "256",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--limit",
        "16",
        "--val-split",
        "test",
        "--val-limit",
        "4",
        "--init",
        "none",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)
    ckpt = read_checkpoint(out / "last.pt")
    assert ckpt["train_state"]["world_size"] == 2
    assert ckpt["train_state"]["images_per_rank"] == [8, 8]  # each rank its own half of the 16 images
    assert len(rows(out / "log.csv")) == 1
    resume = cmd[: cmd.index("--data")] + [
        "--data",
        str(moxa),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--workers",
        "0",
        "--resume",
        str(out / "last.pt"),
    ]
    subprocess.run(resume, check=True, env=env, capture_output=True, timeout=600)
    assert read_checkpoint(out / "last.pt")["epoch"] == 2
    assert [int(r["epoch"]) for r in rows(out / "log.csv")] == [1, 2]


def test_ablation_refuses_a_run_folder_left_by_another_budget(moxa, tmp_path):
    from click.testing import CliRunner

    from slfm.cli import main

    runs = tmp_path / "runs"
    cfg = tiny_config(moxa, runs / "att1_hm1", epochs=1)
    train(cfg, ModelConfig(image_size=256), progress=False)
    before = (runs / "att1_hm1" / "last.pt").stat().st_mtime
    r = CliRunner().invoke(
        main,
        ["bench", "ablation", "--data", str(moxa), "--epochs", "1", "--init", "none", "--limit", "16"]
        + ["--image-size", "320", "--runs-dir", str(runs), "--out", str(tmp_path / "report")],
    )
    assert r.exit_code == 1
    assert "another budget" in r.output and "image_size: 256 there, 320 asked" in r.output
    assert (runs / "att1_hm1" / "last.pt").stat().st_mtime == before and not (tmp_path / "report.json").exists()


def test_workers_start_after_the_parent_used_opencv_threads(moxa, tmp_path):
    """Regression: workers forked after the parent ran OpenCV's thread pool (validation does) must not hang.

    Calling cv2.setNumThreads in a forked worker deadlocks on the parent's pool lock; training must not."""
    script = f"""
import cv2, numpy as np
from slfm.config import ModelConfig
from slfm.train import TrainConfig, train
cv2.resize(np.zeros((3000, 3000, 3), np.uint8), (1500, 1500))  # starts OpenCV's thread pool here
cfg = TrainConfig(data={str(moxa)!r}, dataset="moxa3k", out={str(tmp_path)!r}, epochs=1, batch_size=4, limit=8,
                  val_split="", init="none", workers=1)
train(cfg, ModelConfig(image_size=128), progress=False)
"""
    r = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [int(x["epoch"]) for x in rows(tmp_path / "log.csv")] == [1]


def test_ablation_trains_four_variants_and_its_report_names_its_folders(moxa, tmp_path):
    from click.testing import CliRunner

    from slfm.cli import main

    runs, out = tmp_path / "runs", tmp_path / "report"
    args = ["bench", "ablation", "--data", str(moxa), "--epochs", "1", "--init", "none", "--limit", "16"]
    args += ["--image-size", "128", "--runs-dir", str(runs), "--out", str(out)]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert [(x["attention"], x["heatmap"]) for x in report["runs"]] == [
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    ]
    for x in report["runs"]:
        assert read_checkpoint(x["checkpoint"])["epoch"] == 1 and 0 <= x["map50"] <= 1
    # the printed command reruns this ablation: it names the run folders and the report it wrote
    assert f" --runs-dir {runs} " in report["command"] and report["command"].endswith(f" --out {out}")
    assert out.with_suffix(".md").read_text().count("\n| ") == 6  # header, rule, four variants
