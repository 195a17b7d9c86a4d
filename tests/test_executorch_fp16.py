"""ExecuTorch fp16 (XNNPACK, fp16 weights and compute, float32 contract): made by ``slfm convert``, scored by
``slfm eval`` and checked by ``slfm parity`` on real Moxa3K test images against PyTorch fp32."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures_convert import run_convert
from click.testing import CliRunner

from slfm.cli import main

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("executorch", reason="needs the executorch extra: pip install 'slfm[executorch]'")


@pytest.fixture(scope="module")
def fp16_pte(real_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("fp16")
    done = run_convert("--to", "executorch", "--precision", "fp16", "--out", str(out))
    return real_checkpoint, Path(done["executorch"]["artifact"])


def test_fp16_pte_carries_its_contract_and_runs_fp16_inside(fp16_pte):
    from slfm.artifact import read_sidecar
    from slfm.convert.meta import read_pte

    _, pte = fp16_pte
    meta = read_sidecar(pte)
    assert pte.name == "slfm_512_fp16.pte" and meta.format == "executorch" and meta.precision == "fp16"
    assert meta.input_dtype == "float32" and "fp16" in meta.extra["compute"]
    assert read_pte(pte)["precision"] == "fp16"  # the contract inside the program too
    # only the input/output casts stay outside XNNPACK (executorch 1.5.1 names them by dim order)
    assert set(meta.extra["outside_delegate"]) <= {"dim_order_ops._to_dim_order_copy.default", "aten._to_copy.default"}
    assert sum(meta.extra["outside_delegate"].values()) == 3


def test_fp16_pte_scores_like_the_checkpoint(fp16_pte, moxa):
    from slfm.device_tests.thresholds import DEFAULTS

    ckpt, pte = fp16_pte
    got = {}
    for name, model in (("checkpoint", ckpt), ("fp16", pte)):
        r = CliRunner().invoke(main, ["eval", str(model), "--data", str(moxa), "--limit", "20", "--threads", "1"])
        assert r.exit_code == 0, r.output
        got[name] = json.loads(r.output[r.output.index("{") :])["map50"]
    assert got["checkpoint"] - got["fp16"] <= DEFAULTS["fp16"]["max_map50_drop"], got


def test_fp16_pte_has_its_parity_row(fp16_pte, moxa, tmp_path):
    ckpt, pte = fp16_pte
    out = tmp_path / "parity"
    args = ["parity", str(pte), "--checkpoint", str(ckpt), "--data", str(moxa), "--dataset", "moxa3k", "--limit", "6"]
    r = CliRunner().invoke(main, [*args, "--runs", "2", "--warmup", "1", "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (row,) = json.loads(out.with_suffix(".json").read_text())["artifacts"]
    assert row["precision"] == "fp16" and row["passed"] is True, row
    assert row["snr_db"] >= 25.0  # the fp16 budget (device_tests/thresholds.py), met on real images
