"""Quantizer annotations, quantized checkpoints (plain data, rebuilt deterministically), QAT steps, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _fixtures_convert import NUM_ANCHORS

pytest.importorskip("torchao", reason="needs the executorch extra: pip install 'slfm[executorch]'")


@pytest.mark.slow
def test_every_float_op_is_quantized(ptq_graph):
    """After convert_pt2e every compute op sits between dequantize and quantize (no float islands)."""
    from slfm.quantize.quantized import deploy_module

    gm = deploy_module(ptq_graph, fold_quantize=True).net
    q = "quantized_decomposed"
    fused = ("aten.relu", "aten.hardtanh")  # conv -> relu is one int8 kernel: the relu output is quantized

    def quantized(node) -> bool:
        users = [u for u in node.users if "getitem" not in str(u.target)]
        return all(q in str(u.target) or (str(u.target).startswith(fused) and quantized(u)) for u in users)

    checked = 0
    for n in gm.graph.nodes:
        if n.op != "call_function" or q in str(n.target) or not isinstance(n.meta.get("val"), torch.Tensor):
            continue
        if not n.users or "getitem" in str(n.target):
            continue
        assert quantized(n), f"{n.target} output stays float"
        checked += 1
    assert checked > 100  # every conv, gate, pooling and head op was looked at


@pytest.mark.slow
def test_sigmoid_and_softmax_have_fixed_qparams(ptq_graph):
    from slfm.quantize.quantized import deploy_module

    gm = deploy_module(ptq_graph, fold_quantize=True).net
    seen = 0
    for n in gm.graph.nodes:
        if str(n.target) in ("aten.sigmoid.default", "aten.softmax.int"):
            (q,) = n.users
            assert q.args[1] == pytest.approx(1 / 256) and q.args[2] == -128
            seen += 1
    assert seen == 7  # 6 CBAM gates + the class softmax


@pytest.mark.slow
def test_quantized_checkpoint_is_plain_data_and_rebuilds(ptq_checkpoint, ptq_graph, ptq_source, real_inputs):
    from slfm.quantize.quantized import fake_quant_module, load_quantized
    from slfm.runner import TorchRunner

    ck = torch.load(ptq_checkpoint, weights_only=True)  # data, never code
    assert ck["quantizer"]["mode"] == "ptq"
    source = ptq_source.state_dict()  # the fp32 weights PTQ quantized: the equalized copy, not retrained
    assert ck["state_dict"].keys() == source.keys()
    assert all(torch.equal(v, source[k]) for k, v in ck["state_dict"].items())
    pm, model, _ = load_quantized(ptq_checkpoint)
    a, b = TorchRunner(fake_quant_module(pm)), TorchRunner(fake_quant_module(ptq_graph))
    x = real_inputs[0]
    assert np.array_equal(a(x)[0], b(x)[0]) and np.array_equal(a(x)[1], b(x)[1])


def _tiny_qat(model, samples, out, **kw):
    from slfm.quantize.qat import QATConfig, qat

    cfg = QATConfig(**{"epochs": 2, "batch_size": 4, "lr": 1e-4, "calib": 8, "workers": 0, "limit": 8, **kw})
    return qat(model, samples, cfg, ["xnnpack", "litert"], out, val=samples[-4:], progress=False)


@pytest.mark.slow
def test_qat_trains_picks_by_int8_val_saves_compactly_and_reloads(real_checkpoint, moxa_samples, real_inputs, tmp_path):
    from slfm.checkpoint import load_model
    from slfm.quantize.quantized import fake_quant_module, load_quantized
    from slfm.runner import TorchRunner

    model, _ = load_model(real_checkpoint)
    path = _tiny_qat(model, moxa_samples, tmp_path / "qat.pt")
    ck = torch.load(path, weights_only=True)
    assert ck["quantizer"]["mode"] == "qat" and ck["quantizer"]["act_ranges"] == "learned"  # the default
    hist = ck["history"]
    assert [h["epoch"] for h in hist] == [0, 1, 2]  # epoch 0: the PTQ-calibrated start, validated too
    assert all(0 <= h["val_map50"] <= 1 for h in hist) and all(np.isfinite(h["loss"]) for h in hist[1:])
    best = max(hist, key=lambda h: h["val_map50"])  # the saved epoch is the one the int8 graph scores best
    assert ck["best_epoch"] == best["epoch"]
    # compact: weights stored once, the frozen activation histograms not at all (under 2 MB for 0.43 M params)
    stored = {k for k in ck["state_dict"] if not k.endswith("num_batches_tracked")}  # counters: not in the graph
    assert stored == {k for k in model.state_dict() if k.startswith("heatmap") and not k.endswith("tracked")}
    from slfm.quantize.quantized import unpack

    assert not any(k.endswith(".histogram") for k in unpack(ck["quant_state"]))
    assert path.stat().st_size < 2_000_000
    pm, qmodel, _ = load_quantized(path)
    assert qmodel.state_dict().keys() == model.state_dict().keys()
    loc, scores = TorchRunner(fake_quant_module(pm))(real_inputs[0])
    assert loc.shape == (NUM_ANCHORS, 4) and np.allclose(scores.sum(1), 1, atol=0.05)
    if ck["best_epoch"] > 0:
        src = model.state_dict()
        assert any(not torch.equal(qmodel.state_dict()[k], src[k]) for k in src if "weight" in k)


@pytest.mark.slow
def test_qat_activation_ranges_are_fixed_by_calibration(real_checkpoint, moxa_samples, tmp_path):
    """Histogram ranges: set once on letterboxed images, then the training batches never move them."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    from slfm.checkpoint import load_model
    from slfm.quantize.quantized import load_quantized, weight_quantizer_names

    model, _ = load_model(real_checkpoint)
    path = _tiny_qat(model, moxa_samples, tmp_path / "qat.pt", epochs=1, lr=0.0)
    pm, _, ck = load_quantized(path)
    weights = weight_quantizer_names(pm)
    acts = [m for n, m in pm.named_modules() if isinstance(m, FakeQuantizeBase) and n not in weights]
    calibrated = [m for m in acts if type(m).__name__ == "CalibratedFakeQuantize"]
    assert len(calibrated) > 100 and len(weights) == 62  # every conv's weight; activations everywhere else
    assert all(int(m.observer_enabled[0]) == 0 for m in calibrated)
    assert all(float(m.scale) != 1.0 for m in calibrated)  # calibrated, not the initial value


@pytest.mark.slow
def test_qat_is_deterministic(real_checkpoint, moxa_samples, tmp_path):
    """Same seed, data and machine: the same checkpoint (data-loader workers included)."""
    from slfm.checkpoint import load_model

    model, _ = load_model(real_checkpoint)
    a = torch.load(_tiny_qat(model, moxa_samples, tmp_path / "a.pt", epochs=1, workers=2), weights_only=True)
    model, _ = load_model(real_checkpoint)
    b = torch.load(_tiny_qat(model, moxa_samples, tmp_path / "b.pt", epochs=1, workers=2), weights_only=True)
    from slfm.quantize.quantized import unpack

    qa, qb = unpack(a["quant_state"]), unpack(b["quant_state"])
    assert qa.keys() == qb.keys() and all(torch.equal(v, qb[k]) for k, v in qa.items())
    assert a["history"] == b["history"]


@pytest.mark.slow
def test_qat_runs_in_the_training_loop_logs_and_resumes_exactly(real_checkpoint, moxa_samples, tmp_path):
    """QAT is a mode of slfm.train.fit: log.csv (epoch 0 = the PTQ start) and last.pt as fp32 training writes
    them, and a run resumed from its epoch-1 snapshot ends where the uninterrupted run ends."""
    import csv

    from slfm.checkpoint import load_model
    from slfm.quantize.qat import QATConfig, qat
    from slfm.quantize.quantized import unpack

    def run(out, resume=None):
        model, _ = load_model(real_checkpoint)
        cfg = QATConfig(epochs=2, batch_size=4, lr=1e-4, calib=8, workers=0, limit=8)
        qat(model, moxa_samples, cfg, ["xnnpack", "litert"], out / "qat.pt", val=moxa_samples[-4:], progress=False,
            resume=resume, save_period=1)  # fmt: skip
        with open(out / "log.csv") as f:
            return list(csv.DictReader(f))

    log = run(tmp_path / "a")
    whole = torch.load(tmp_path / "a" / "qat.pt", weights_only=True)
    assert [int(r["epoch"]) for r in log] == [0, 1, 2] and log[0]["loss"] == "" and float(log[2]["loss"]) > 0
    assert [float(r["map50"]) for r in log] == pytest.approx([h["val_map50"] for h in whole["history"]])
    snapshot = torch.load(tmp_path / "a" / "epoch1.pt", weights_only=True)
    assert snapshot["train_state"]["epoch"] == 0 and snapshot["quantizer"]["mode"] == "qat"
    resumed = run(tmp_path / "b", resume=tmp_path / "a" / "epoch1.pt")
    assert [int(r["epoch"]) for r in resumed] == [1, 2]  # epoch 1's row restored from the snapshot, then epoch 2
    a, b = (
        unpack(torch.load(p / "last.pt", weights_only=True)["quant_state"]) for p in (tmp_path / "a", tmp_path / "b")
    )
    assert a.keys() == b.keys() and all(torch.allclose(v, b[k]) for k, v in a.items() if v.is_floating_point())


def test_missing_toolchain_error_names_the_extra(monkeypatch):
    import sys

    from slfm.errors import SlfmError
    from slfm.toolchain import require

    monkeypatch.setitem(sys.modules, "coremltools", None)  # import now raises ImportError
    with pytest.raises(SlfmError, match=r"pip install 'slfm\[coreml\]'"):
        require("coreml")


def test_conversion_error_names_the_op():
    from slfm.convert.failures import conversion_error

    err = ValueError("error: 'tfl.transpose' op quantization parameters violate")
    e = conversion_error("tflite", "converting", err)
    assert "tfl.transpose" in str(e) and "slfm[tflite]" in str(e) and "\n" not in str(e)


@pytest.mark.slow
def test_qat_cli_keeps_the_checkpoints_data_recipe_unless_told(real_checkpoint, moxa, tmp_path):
    from click.testing import CliRunner

    from slfm.checkpoint import read_checkpoint
    from slfm.cli import main
    from slfm.quantize.qat import trained_recipe

    trained = read_checkpoint(real_checkpoint)["train_config"]
    assert trained_recipe({"train_config": trained}) == {
        "full_image_prob": trained.get("full_image_prob") or 0.0,
        "class_balance": bool(trained.get("class_balance")),
        "negative_prob": trained.get("negative_prob") or 0.0,
    }
    assert trained_recipe({}) == {"full_image_prob": 0.0, "class_balance": False, "negative_prob": 0.0}  # older
    args = ["qat", "moxa3k", "--data", str(moxa), "--epochs", "1", "--batch-size", "4", "--limit", "8"]
    args += ["--calib", "8", "--workers", "0", "--val-split", "", "--out", str(tmp_path), "--full-image-prob", "0.25"]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    ck = torch.load(tmp_path / "qat.pt", weights_only=True)
    cfg = ck["qat_config"]
    assert ck["data"]["train_split"] == "fit" and ck["data"]["val_split"] == ""  # the bundled name resolved
    assert cfg["full_image_prob"] == 0.25  # given
    assert cfg["class_balance"] == bool(trained.get("class_balance"))  # as the weights were trained


def test_qat_refuses_to_pick_its_epoch_on_a_test_split(moxa, tmp_path):
    from click.testing import CliRunner

    from slfm.cli import main

    args = ["qat", "moxa3k", "--data", str(moxa), "--val-split", "test", "--out", str(tmp_path)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code != 0 and "test split" in r.output and "holdout" in r.output


@pytest.mark.slow
def test_layer_table_follows_the_network_and_finds_int8_error(ptq_graph, ptq_source, real_inputs):
    """Per-block SNR of the int8 graph against fp32 with the same (equalized) weights: every block of the network,
    in execution order, each with a finite SNR that int8 lowers (never the identical-output cap)."""
    from slfm.device_tests.compare import SNR_CAP_DB
    from slfm.device_tests.layers import layer_table

    rows = layer_table(ptq_graph, ptq_source, real_inputs[:1])
    names = [r["module"] for r in rows]
    assert len(rows) > 40 and len(set(names)) == len(names)
    first = {part: next(i for i, n in enumerate(names) if n.startswith(part)) for part in ("body", "fpn", "context1")}
    assert first["body"] < first["fpn"] < first["context1"] < names.index("ClassHead.2")
    assert all(5 < r["snr_db"] < SNR_CAP_DB for r in rows)
    assert rows[0]["snr_db"] > 20  # the first conv block loses least; error accumulates from there


@pytest.mark.slow
def test_qat_of_a_model_of_several_sources_trains_on_each_and_picks_by_their_mean(moxa, aizoo_sample, tmp_path):
    """slfm qat's repeated --data, as for the joint `faces` model: both sources' images train, each source's
    validation split is scored and the epoch is picked by their mean; the card names both."""
    from slfm.quantize.qat import QATConfig, QATJob, qat_job
    from slfm.release import qat_markdown
    from slfm.sources import Source

    aizoo = Source(str(aizoo_sample.parent), "aizoo", "val-sample", val_split="val-sample")
    job = QATJob(
        "moxa3k",
        moxa,
        "moxa3k",
        val_limit=4,
        more_sources=(aizoo,),
        out=tmp_path / "models",
        config=QATConfig(epochs=1, batch_size=4, limit=12, calib=8, workers=0),
    )
    lines = []
    path = qat_job(job, lines.append)
    ck = torch.load(path, weights_only=True)
    parts = ck["data"]["sources"]
    assert [(p["name"], p["train_split"], p["val_split"]) for p in parts] == [
        ("moxa3k", "fit", "holdout"),
        ("aizoo", "val-sample", "val-sample"),
    ]
    assert parts[1]["images"] == 200 and all(p["val_images"] == 4 for p in parts)
    summary = {k: ck["data"][k] for k in ("dataset", "train_split", "val_split", "val_images")}
    assert summary == {
        "dataset": "moxa3k+aizoo",
        "train_split": "fit+val-sample",
        "val_split": "holdout+val-sample",
        "val_images": 8,
    }
    assert ck["train_images"] == 12 and any("QAT source aizoo" in line for line in lines)
    for h in ck["history"]:  # epoch 0 (PTQ start) and 1: the mean of both sources, each recorded
        scores = dict(kv.split("=") for kv in h["val_by_source"].split())
        assert set(scores) == {"moxa3k", "aizoo"}
        assert h["val_map50"] == pytest.approx(sum(map(float, scores.values())) / 2, abs=1e-4)
    # the card's section for such a checkpoint names both sources (bundled name -> file, as --bundle writes it)
    (tmp_path / "models" / "faces_640_qat.pt").write_bytes(path.read_bytes())
    for stem, kind, split in (("artifacts_faces", "aizoo", "val"), ("artifacts_faces_moxa3k", "moxa3k", "test")):
        rows = [
            {"model": "pytorch fp32", "format": "pytorch", "map50": 0.9},
            {"model": "tflite int8 QAT", "format": "tflite", "map50": 0.89, "delta_map50_bootstrap": {"std": 0.002}},
        ]
        report = {"options": {"kind": kind, "split": split}, "eval_images": 7, "command": "slfm bench", "rows": rows}
        (tmp_path / f"{stem}.json").write_text(json.dumps(report))
    card = qat_markdown(tmp_path / "models", tmp_path, qat_files={"faces": "faces_640_qat.pt"})
    # one table per test set of the joint model, each linking its report
    assert "On aizoo `val` (7 images)" in card and "On moxa3k `test` (7 images)" in card
    assert "(../../reports/artifacts_faces_moxa3k.md)" in card and card.count("| tflite int8 QAT | 0.8900 | -1.00") == 2
    assert "images of moxa3k `fit` + aizoo `val-sample`" in card
    assert "`holdout` of moxa3k (4 images) + `val-sample` of aizoo (4 images)" in card and "moxa3k 0." in card
