import json

import pytest
import torch
from torch import nn

from slfm.anchors import anchors
from slfm.config import ModelConfig
from slfm.model import InferenceWrapper, SLFMDet
from slfm.profile import count_macs, count_parameters
from slfm.weights import load_imagenet_backbone, load_retinaface


@pytest.mark.parametrize("size", [320, 640])
def test_forward_shapes(size):
    model = SLFMDet(ModelConfig(image_size=size)).eval()
    n = anchors(size, size).shape[0]
    with torch.no_grad():
        loc, conf, heat = model(torch.randn(2, 3, size, size), with_heatmap=True)
    assert loc.shape == (2, n, 4)
    assert conf.shape == (2, n, 3)
    assert heat.shape == (2, 1, size // 16, size // 16)
    assert float(heat.min()) >= 0 and float(heat.max()) <= 1


def test_16800_anchors_at_640():
    assert anchors(640, 640).shape == (16800, 4)


def test_parameters_and_macs_equal_the_reference():
    model = SLFMDet(ModelConfig())
    assert round(count_parameters(model) / 1e6, 3) == 0.425
    assert round(count_macs(model, 640) / 1e9, 3) == 0.972
    assert round(count_macs(model, 320) / 1e9, 2) == 0.24


def test_ablation_switches_change_the_network():
    full = SLFMDet(ModelConfig())
    plain = SLFMDet(ModelConfig(attention=False, heatmap=False))
    assert full.context1.cbam is not None and plain.context1.cbam is None
    assert plain.heatmap_head is None
    assert count_parameters(plain) < count_parameters(full)
    with pytest.raises(ValueError, match="heatmap"):
        plain(torch.zeros(1, 3, 64, 64), with_heatmap=True)


def test_export_friendly_forms():
    """No module the converters reject (DESIGN.md): no adaptive max pooling anywhere."""
    kinds = {type(m) for m in SLFMDet().modules()}
    assert nn.AdaptiveMaxPool2d not in kinds and nn.AdaptiveAvgPool2d not in kinds


def test_inference_wrapper_outputs_probabilities():
    model = InferenceWrapper(SLFMDet(ModelConfig(image_size=320)).eval())
    with torch.no_grad():
        loc, scores = model(torch.randn(1, 3, 320, 320))
    assert torch.allclose(scores.sum(-1), torch.ones(1, scores.shape[1]), atol=1e-5)
    assert loc.shape[1] == scores.shape[1] == 4200


def test_backbone_file_loads_strictly(backbone_weights):
    model = SLFMDet()
    before = model.body.stage1[0][0].weight.clone()
    load_imagenet_backbone(model, backbone_weights)
    assert not torch.equal(before, model.body.stage1[0][0].weight)
    src = torch.load(backbone_weights, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(src["module.stage3.1.3.weight"], model.body.stage3[1][3].weight)


def test_retinaface_checkpoint_loads(retinaface_weights):
    model = SLFMDet(ModelConfig(image_size=320))
    keys = load_retinaface(model, retinaface_weights)
    assert any(k.startswith("context1.ssh.") for k in keys)
    assert any(k.startswith("fpn.") for k in keys)
    # background/face logits copied, face logit also seeds the mask logit
    w = model.ClassHead[0].conv1x1.weight.reshape(2, 3, -1)
    assert torch.equal(w[:, 1], w[:, 2])


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    from slfm.errors import SlfmError

    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(SlfmError, match="bad.pth"):
        load_imagenet_backbone(SLFMDet(), bad)


def test_artifact_contract_round_trips_the_model_config():
    from slfm.artifact import ArtifactMeta

    cfg = ModelConfig(image_size=480, min_sizes=((10, 20), (40, 80), (160, 320)), mean_bgr=(1.0, 2.0, 3.0))
    meta = ArtifactMeta.from_dict(json.loads(ArtifactMeta.from_model_config(cfg, "tflite", "fp32").to_json()))
    back = meta.model_config()
    assert meta.num_anchors == anchors(480, 480, cfg.min_sizes).shape[0]
    for field in ("image_size", "min_sizes", "steps", "variances", "classes", "mean_bgr"):
        assert getattr(back, field) == getattr(cfg, field), field
