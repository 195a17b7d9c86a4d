"""Bundled weights: the shipped checkpoints load, stay under 2 MB, and carry cards whose numbers reproduce."""

import json

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


def test_release_writes_checkpoint_card_and_reproducible_metrics(moxa, tmp_path):
    src = bundled_checkpoint("moxa3k")
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
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    card = json.loads((models / "demo_320.json").read_text())
    assert card["size_bytes"] < 2_000_000 and "train_state" not in read_checkpoint(models / "demo_320.pt")
    assert {m["mode"] for m in card["metrics"]} == {"letterbox", "reference"}
    text = (models / "MODEL_CARD.md").read_text()
    assert "demo_320.pt" in text and card["metrics"][0]["command"] in text
    # the card's number is what its own command reports
    letterbox = next(m for m in card["metrics"] if m["mode"] == "letterbox")
    r = CliRunner().invoke(main, letterbox["command"].split()[1:], catch_exceptions=False)
    assert r.exit_code == 0
    assert json.loads(r.output[r.output.index("{") :])["map50"] == pytest.approx(letterbox["map50"])
