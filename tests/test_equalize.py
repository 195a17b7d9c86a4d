"""Cross-layer range equalization: the fp32 function stays, the channel ranges level, int8 gets closer to fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("torchao", reason="needs the executorch extra: pip install 'slfm[executorch]'")


def _snr(ref: torch.Tensor, got: torch.Tensor) -> float:
    return float(10 * torch.log10((ref**2).sum() / ((ref - got) ** 2).sum()))


@pytest.fixture(scope="module")
def model_and_batches(real_checkpoint, moxa_samples):
    from slfm.checkpoint import load_model
    from slfm.quantize.calibrate import calibration_batches

    model, _ = load_model(real_checkpoint)
    return model.eval(), list(calibration_batches(moxa_samples[:24], model, 16))


def test_equalization_keeps_the_fp32_function_and_levels_the_ranges(model_and_batches, real_inputs):
    from slfm.quantize.equalize import channel_ranges, equalizable_pairs, equalized

    model, batches = model_and_batches
    before = {k: v.clone() for k, v in model.state_dict().items()}
    eq = equalized(model, batches)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the source is untouched

    x = torch.from_numpy(np.concatenate(real_inputs))
    with torch.no_grad():
        for ref, got in zip(model(x), eq(x), strict=True):
            assert torch.allclose(ref, got, rtol=1e-4, atol=1e-4)

    pairs = equalizable_pairs(model)
    assert len(pairs) == 1 + 2 * 13  # the stem and each depthwise-separable block's two tensors
    names = [p.bn for p in pairs]
    r0, r1 = channel_ranges(model, batches, names), channel_ranges(eq, batches, names)
    depthwise_fed = [p.bn for p in pairs if all(model.get_submodule(c).groups > 1 for c in p.consumers)]
    assert len(depthwise_fed) == 1 + 10  # the stem, and the blocks that feed neither the FPN nor nothing

    def spread(r):
        return float(r.max() / r.min().clamp_min(1e-6))

    for name in names:
        assert spread(r1[name]) <= spread(r0[name]) * 1.001, name
    for name in depthwise_fed:  # fully levelled, but for channels below the scale factors' floor (dead ones)
        alive = r0[name] >= 0.01 * r0[name].max()
        r = r1[name][alive]
        assert alive.float().mean() > 0.75 and bool((r >= 0.999 * r.max()).all()), name


def test_equalization_brings_int8_closer_to_fp32(model_and_batches, real_inputs):
    """Same calibration images, same int8 scheme: the equalized graph's outputs are nearer the fp32 ones."""
    from slfm.model import InferenceWrapper
    from slfm.quantize.calibrate import ptq
    from slfm.quantize.quantized import fake_quant_module

    model, batches = model_and_batches
    x = torch.from_numpy(np.concatenate(real_inputs))
    with torch.no_grad():
        loc, scores = InferenceWrapper(model).eval()(x)
        live = scores[..., 1:].amax(-1) >= 0.02
        snr = {}
        for eq in (False, True):
            q_loc, q_scores = fake_quant_module(ptq(model, batches[:1], equalize=eq)[0])(x)[:2]
            snr[eq] = (_snr(loc[live], q_loc[live]), _snr(scores, q_scores))
    assert snr[True][0] > snr[False][0] + 1.0, snr  # box offsets on the anchors that can become detections
    assert snr[True][1] > snr[False][1], snr
