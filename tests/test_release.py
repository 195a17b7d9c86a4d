"""Bundled weights: the shipped checkpoints load, stay under 2 MB, and carry cards whose numbers reproduce."""

import json
import shlex

import pytest
from click.testing import CliRunner

from slfm.checkpoint import BUNDLED, MODELS_DIR, bundled_checkpoint, load_model, read_checkpoint
from slfm.cli import main


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_checkpoints_load_and_are_small(name):
    path = MODELS_DIR / BUNDLED[name]
    if not path.is_file():
        pytest.skip(f"{path} not bundled in this checkout")
    assert path.stat().st_size < 2_000_000
    model, ckpt = load_model(path)
    assert "train_state" not in ckpt and ckpt["model_config"]["image_size"] == model.config.image_size


@pytest.mark.slow
def test_release_writes_checkpoint_card_and_reproducible_metrics(moxa, tmp_path):
    src = bundled_checkpoint("moxa3k")
    trained = read_checkpoint(src)["train_image_size"]
    assert trained != 352
    models = tmp_path / "models"
    models.mkdir()
    r = CliRunner().invoke(
        main,
        [
            "release",
            str(src),
            "--name",
            "demo",
            "--data",
            str(moxa),
            "--dataset",
            "moxa3k",
            "--split",
            "test",
            "--limit",
            "6",
            "--models-dir",
            str(models),
            "--image-size",
            "352",
            "--sweep",
            "352",
            "--sweep",
            "320",
            "--trained-on",
            "a test bench's CPU",
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    # shipped for a 352 input (the network is fully convolutional); the training size stays on record
    card = json.loads((models / "demo_352.json").read_text())
    shipped = read_checkpoint(models / "demo_352.pt")
    assert card["size_bytes"] < 2_000_000 and "train_state" not in shipped
    assert shipped["model_config"]["image_size"] == 352 and card["train_image_size"] == trained
    assert load_model(models / "demo_352.pt")[0].config.image_size == 352
    assert [(m["mode"], m["input_size"], m["cross_class_iou"]) for m in card["metrics"]] == [
        ("letterbox", 352, 0.0),
        ("letterbox", 320, 0.0),
        ("reference", 840, 0.0),
        ("letterbox", 352, 0.5),  # the demo's face/mask suppression, as an app shows it
    ]
    text = (models / "MODEL_CARD.md").read_text()
    assert "demo_352.pt" in text and card["metrics"][0]["command"] in text and f"trained at {trained}x{trained}" in text
    assert card["trained_on"] == "a test bench's CPU" and "s of training steps on a test bench's CPU" in text
    assert shlex.split(card["release_command"])[-2:] == ["--trained-on", "a test bench's CPU"]  # quote survives
    # each of the card's numbers is what its own command reports (default size, a swept one, the demo's rule)
    for row in card["metrics"][:2] + card["metrics"][-1:]:
        r = CliRunner().invoke(main, row["command"].split()[1:], catch_exceptions=False)
        assert r.exit_code == 0
        assert json.loads(r.output[r.output.index("{") :])["map50"] == pytest.approx(row["map50"])


def test_release_of_a_model_of_two_sources_reports_each_test_set(moxa, aizoo_sample, tmp_path):
    """A model trained on several sources is bundled with each source's test set on its card, each number
    reproduced by the command beside it; the card's release command names every test set."""
    r = CliRunner().invoke(
        main,
        ["release", str(bundled_checkpoint("moxa3k")), "--name", "joint", "--data", str(moxa), "--dataset", "moxa3k"]
        + ["--data", str(aizoo_sample.parent), "--dataset", "aizoo", "--split", "test", "--split", "val-sample"]
        + ["--limit", "3", "--models-dir", str(tmp_path), "--trained-on", "a test bench"],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    card = json.loads((tmp_path / "joint_512.json").read_text())
    assert [(m["dataset"], m["split"], m["mode"]) for m in card["metrics"]] == [
        (kind, split, mode)
        for kind, split in (("moxa3k", "test"), ("aizoo", "val-sample"))
        for mode in ("letterbox", "reference", "letterbox")
    ]
    assert all(m["images"] == 3 for m in card["metrics"])
    words = shlex.split(card["release_command"])
    assert [words[i + 1] for i, w in enumerate(words) if w == "--dataset"] == ["moxa3k", "aizoo"]
    text = (tmp_path / "MODEL_CARD.md").read_text()
    assert "| moxa3k test | letterbox 512 |" in text and "| aizoo val-sample | letterbox 512 |" in text
    row = card["metrics"][3]  # AIZOO's first row, by its own command
    args = shlex.split(row["command"])[1:]
    args[args.index("--data") + 1] = str(aizoo_sample.parent)
    got = CliRunner().invoke(main, args, catch_exceptions=False)
    assert json.loads(got.output[got.output.index("{") :])["map50"] == pytest.approx(row["map50"])


def test_release_refuses_a_sweep_size_under_the_stride(moxa, tmp_path):
    r = CliRunner().invoke(
        main,
        ["release", str(bundled_checkpoint("moxa3k")), "--name", "demo", "--data", str(moxa), "--sweep", "16"]
        + ["--models-dir", str(tmp_path), "--trained-on", "a test bench"],
    )
    assert r.exit_code == 2 and "--sweep" in r.output and "16" in r.output and "largest stride" in r.output
    assert not list(tmp_path.glob("*"))


def test_release_rejects_a_size_the_network_cannot_take(moxa, tmp_path):
    r = CliRunner().invoke(
        main,
        ["release", str(bundled_checkpoint("moxa3k")), "--name", "demo", "--data", str(moxa), "--dataset", "moxa3k"]
        + ["--split", "test", "--limit", "2", "--models-dir", str(tmp_path), "--image-size", "16"]
        + ["--trained-on", "a test bench"],
    )
    assert r.exit_code != 0 and "16" in r.output and "largest stride" in r.output
    assert not list(tmp_path.glob("*.pt"))


def test_release_needs_the_training_machine_when_the_checkpoint_lacks_it(moxa, tmp_path):
    src = bundled_checkpoint("moxa3k")
    assert "train_machine" not in read_checkpoint(src)  # trained before checkpoints recorded it
    r = CliRunner().invoke(
        main,
        ["release", str(src), "--name", "demo", "--data", str(moxa), "--dataset", "moxa3k"]
        + ["--split", "test", "--limit", "2", "--models-dir", str(tmp_path)],
    )
    assert r.exit_code == 1 and "--trained-on" in r.output and str(src) in r.output
    assert not list(tmp_path.glob("*"))


@pytest.mark.slow
def test_bundled_moxa3k_cards_headline_reproduces(moxa):
    """The shipped card's first number (what the README quotes) is what its own command prints today."""
    card = json.loads((MODELS_DIR / BUNDLED["moxa3k"]).with_suffix(".json").read_text())
    row = card["metrics"][0]
    args = shlex.split(row["command"])[1:]
    args[args.index("--data") + 1] = str(moxa)  # the card names the path it was made with
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    got = json.loads(r.output[r.output.index("{") :])
    assert got["images"] == row["images"] and got["map50"] == pytest.approx(row["map50"], abs=1e-6)


def test_the_bundled_card_shows_commands_a_reader_can_run():
    import re

    from slfm.checkpoint import MODELS_DIR
    from slfm.release import card_markdown, portable_command, qat_markdown

    cmd = "slfm qat aizoo --data /home/me/data/aizoo --out /srv/x/runs/qat_aizoo --bundle"
    assert portable_command(cmd) == "slfm qat aizoo --data ../shared/data/aizoo --out runs/qat_aizoo --bundle"
    import json

    cards = [json.loads(p.read_text()) for p in sorted(MODELS_DIR.glob("*.json"))]
    text = card_markdown(cards) + qat_markdown()
    assert not re.search(r"`slfm [^`]*--(data|out) /", text), "an absolute path in a card command"


def test_the_card_names_each_source_its_weight_and_teacher():
    from slfm.release import _data_line

    t = {
        "dataset": "moxa3k",
        "sources": [
            {"dataset": "moxa3k", "split": "fit", "weight": 1.0, "teacher": "/x/slfm/models/moxa3k_512.pt"},
            {"dataset": "aizoo", "split": None, "weight": 1.5, "teacher": None},
        ],
    }
    assert _data_line(t) == "moxa3k `fit` (teacher `moxa3k_512.pt`) + aizoo `fit` (weight 1.5)"
    assert _data_line({"dataset": "aizoo", "split": "train"}) == "aizoo `train`"
