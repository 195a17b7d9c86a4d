"""A failing .pte names its first divergent op: ``slfm parity`` on real Moxa3K images, an ExecuTorch program
made by ``slfm convert`` from a checkpoint with one conv zeroed, against the intact checkpoint."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_parity_support import make_checkpoint, need_data

from slfm.cli import main

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("executorch", reason="needs the executorch extra: pip install 'slfm[executorch]'")


def test_broken_pte_fails_and_names_first_divergent_op(tmp_path, moxa):
    need_data()
    good = make_checkpoint(tmp_path / "good.pt")
    bad = make_checkpoint(tmp_path / "bad.pt", perturb="fpn.merge2.0.weight")  # everything after merge2 differs
    runner = CliRunner()
    r = runner.invoke(main, ["convert", str(bad), "--to", "executorch", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    (pte,) = (tmp_path / "a").glob("*.pte")
    out = tmp_path / "rep"
    args = [str(pte), "--checkpoint", str(good), "--data", str(moxa), "--dataset", "moxa3k", "--limit", "3"]
    r = runner.invoke(main, ["parity", *args, "--runs", "1", "--warmup", "0", "--out", str(out)])
    assert r.exit_code == 1, r.output
    (row,) = json.loads(out.with_suffix(".json").read_text())["artifacts"]
    assert row["passed"] is False and row["snr_db"] < 40
    div = row["divergence"]
    assert div["method"].startswith("ExecuTorch") and div["layers_compared"] > 50, div
    first = div["first_divergent_layer"]
    assert first["module"].startswith("model.fpn.merge2") and first["op"].startswith("aten."), first
    before = [x for x in div["layers"] if x["op_index"] < first["op_index"]]
    assert before and all(x["snr_db"] > 60 for x in before)  # the backbone still matches
    assert div["reproduces_artifact_snr_db"] > 60  # the tapped re-lowering is the shipped program
    assert "first divergent layer: `model.fpn.merge2" in out.with_suffix(".md").read_text()
