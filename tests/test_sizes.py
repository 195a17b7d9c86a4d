"""`slfm bench sizes`: the input-size sweep on a validation split (never a test split) and its report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from slfm.cli import main


def test_size_sweep_scores_each_size_and_source_and_picks_the_best_mean(moxa, aizoo_sample, tmp_path):
    out = tmp_path / "sizes"
    args = [
        "bench",
        "sizes",
        "moxa3k",
        "--data",
        str(moxa),
        "--dataset",
        "moxa3k",
        "--data",
        str(aizoo_sample.parent),
        "--dataset",
        "aizoo",
        "--split",
        "holdout",
        "--split",
        "val-sample",
        "--sizes",
        "384",
        "--sizes",
        "256",
        "--limit",
        "6",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rep = json.loads(out.with_suffix(".json").read_text())
    assert {(row["source"], row["size"]) for row in rep["rows"]} == {
        ("moxa3k", 256),
        ("moxa3k", 384),
        ("aizoo", 256),
        ("aizoo", 384),
    }
    assert {row["split"] for row in rep["rows"] if row["source"] == "moxa3k"} == {"holdout"}
    for row in rep["rows"]:
        assert row["images"] == 6 and 0 <= row["map50"] <= 1 and row["ms_per_image"] > 0
        assert set(row["ap50_95_by_size"]) == {"small", "medium", "large"}
    # the input size changes what the model sees: the two sizes do not score alike on both sources
    assert len({round(row["map50"], 6) for row in rep["rows"]}) > 1
    mean = {int(k): v for k, v in rep["mean_map50"].items()}
    assert rep["best_size"] == max(mean, key=lambda s: (round(mean[s], 6), -s))
    for s in (256, 384):
        assert mean[s] == pytest.approx(sum(row["map50"] for row in rep["rows"] if row["size"] == s) / 2)
    assert out.with_suffix(".png").stat().st_size > 1000
    assert f"Chosen size: **{rep['best_size']}**" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize(("dataset", "split"), [("moxa3k", "test"), ("aizoo", "val")])
def test_size_sweep_refuses_a_test_split(tmp_path, dataset, split):
    r = CliRunner().invoke(
        main,
        [
            "bench",
            "sizes",
            "moxa3k",
            "--data",
            str(tmp_path),
            "--dataset",
            dataset,
            "--split",
            split,
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert r.exit_code != 0 and f"{dataset}'s test split" in r.output


def test_size_sweep_rejects_sizes_the_network_cannot_take(tmp_path):
    r = CliRunner().invoke(
        main, ["bench", "sizes", "--data", str(tmp_path), "--sizes", "500", "--out", str(tmp_path / "s")]
    )
    assert r.exit_code == 2 and "500: each size must be a multiple of 32" in r.output


def test_size_sweep_sizes_repeat_and_the_comma_form_still_parses(tmp_path):
    """--sizes repeats like every list option; the old comma list parses with a deprecation note."""
    from slfm.sizes import sizes as command

    ctx = command.make_context("sizes", ["--data", str(tmp_path), "--sizes", "640", "--sizes", "480"])
    assert ctx.params["sizes"] == (480, 640)
    r = CliRunner().invoke(main, ["bench", "sizes", "--data", str(tmp_path), "--sizes", "480,100", "--out", "x"])
    assert r.exit_code == 2 and "deprecated" in r.output and "100: each size must be a multiple of 32" in r.output
