"""Quantizer annotations, quantized checkpoints (plain data, rebuilt deterministically), QAT steps, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fixtures_convert import NUM_ANCHORS

pytest.importorskip("torchao", reason="needs the executorch extra: pip install 'slfm[executorch]'")


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


def test_quantized_checkpoint_is_plain_data_and_rebuilds(ptq_checkpoint, ptq_graph, real_checkpoint, real_inputs):
    from slfm.checkpoint import load_model
    from slfm.convert.runtimes import TorchRunner
    from slfm.quantize.quantized import fake_quant_module, load_quantized

    ck = torch.load(ptq_checkpoint, weights_only=True)  # data, never code
    assert ck["quantizer"]["mode"] == "ptq"
    source = load_model(real_checkpoint)[0].state_dict()  # PTQ does not change the fp32 weights
    assert ck["state_dict"].keys() == source.keys()
    assert all(torch.equal(v, source[k]) for k, v in ck["state_dict"].items())
    pm, model, _ = load_quantized(ptq_checkpoint)
    a, b = TorchRunner(fake_quant_module(pm)), TorchRunner(fake_quant_module(ptq_graph))
    x = real_inputs[0]
    assert np.array_equal(a(x)[0], b(x)[0]) and np.array_equal(a(x)[1], b(x)[1])


def test_qat_trains_saves_and_reloads(real_checkpoint, moxa_samples, real_inputs, tmp_path):
    from slfm.checkpoint import load_model
    from slfm.convert.runtimes import TorchRunner
    from slfm.quantize.qat import QATConfig, qat
    from slfm.quantize.quantized import fake_quant_module, load_quantized

    model, _ = load_model(real_checkpoint)
    cfg = QATConfig(epochs=2, batch_size=4, lr=1e-4, calib=8, workers=0, limit=8)
    path = qat(model, moxa_samples, cfg, ["xnnpack", "litert"], tmp_path / "qat.pt")
    ck = torch.load(path, weights_only=True)
    assert ck["quantizer"]["mode"] == "qat"
    assert [h["epoch"] for h in ck["history"]] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in ck["history"])
    src = model.state_dict()
    changed = [k for k, v in ck["state_dict"].items() if v.is_floating_point() and not torch.equal(v, src[k])]
    assert changed, "QAT did not update any weight"
    pm, qmodel, _ = load_quantized(path)
    assert not any(torch.equal(qmodel.state_dict()[k], src[k]) for k in changed[:5])  # trained weights reload
    loc, scores = TorchRunner(fake_quant_module(pm))(real_inputs[0])
    assert loc.shape == (NUM_ANCHORS, 4) and np.allclose(scores.sum(1), 1, atol=0.05)


def test_missing_toolchain_error_names_the_extra(monkeypatch):
    import sys

    from slfm.convert.toolchain import require
    from slfm.errors import SlfmError

    monkeypatch.setitem(sys.modules, "coremltools", None)  # import now raises ImportError
    with pytest.raises(SlfmError, match=r"pip install 'slfm\[coreml\]'"):
        require("coreml")


def test_conversion_error_names_the_op():
    from slfm.convert.failures import conversion_error

    err = ValueError("error: 'tfl.transpose' op quantization parameters violate")
    e = conversion_error("tflite", "converting", err)
    assert "tfl.transpose" in str(e) and "slfm[tflite]" in str(e) and "\n" not in str(e)


def test_qat_cli_keeps_the_checkpoints_data_recipe_unless_told(real_checkpoint, moxa, tmp_path):
    from click.testing import CliRunner

    from slfm.checkpoint import read_checkpoint
    from slfm.cli import main
    from slfm.quantize.qat import trained_recipe

    trained = read_checkpoint(real_checkpoint)["train_config"]
    assert trained_recipe({"train_config": trained}) == {
        "full_image_prob": trained.get("full_image_prob") or 0.0,
        "class_balance": bool(trained.get("class_balance")),
    }
    assert trained_recipe({}) == {"full_image_prob": 0.0, "class_balance": False}  # older checkpoints
    args = ["qat", str(real_checkpoint), "--data", str(moxa), "--epochs", "1", "--batch-size", "4", "--limit", "8"]
    args += ["--calib", "8", "--workers", "0", "--val-split", "", "--out", str(tmp_path), "--full-image-prob", "0.25"]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cfg = torch.load(tmp_path / "qat.pt", weights_only=True)["qat_config"]
    assert cfg["full_image_prob"] == 0.25  # given
    assert cfg["class_balance"] == bool(trained.get("class_balance"))  # as the weights were trained
