"""Quantization-aware fine-tuning of an fp32 checkpoint (PT2E fake quantization, BatchNorm folded).

Trains the graph every artifact exports (:mod:`slfm.quantize.graph`) on the multibox loss only: the heatmap
head is not in that graph. Starts from PTQ-calibrated ranges (observers see real images first), then
fine-tunes weights and ranges with a small learning rate and a cosine decay; in the last epoch the observers
and BatchNorm statistics are frozen so the final steps train against the qparams that will be deployed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from slfm.data import DetectionDataset
from slfm.loss import LossWeights, balanced_class_weights, multibox_loss
from slfm.model import SLFMDet
from slfm.quantize.calibrate import calibration_batches
from slfm.quantize.quantized import prepare, save_quantized, set_mode
from slfm.voc import Sample


@dataclass
class QATConfig:
    epochs: int = 3
    batch_size: int = 16
    lr: float = 1e-5
    weight_decay: float = 0.0
    calib: int = 64  # images observed before training starts
    workers: int = 2
    seed: int = 0
    limit: int | None = None
    freeze_last_epoch: bool = True
    freeze_bn: bool = True  # BatchNorm on its running statistics throughout (False: update them, long runs)
    # the fp32 weights' data recipe (slfm train's options of the same names); `slfm qat` reads them from the checkpoint
    full_image_prob: float = 0.0
    class_balance: bool = False


def trained_recipe(checkpoint: dict) -> dict:
    """The data recipe an fp32 checkpoint was trained with, as QATConfig fields (QAT keeps to it by default)."""
    t = checkpoint.get("train_config", {})
    return {"full_image_prob": float(t.get("full_image_prob") or 0.0), "class_balance": bool(t.get("class_balance"))}


def _freeze(pm: torch.fx.GraphModule) -> None:
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    for mod in pm.modules():
        if isinstance(mod, FakeQuantizeBase):
            mod.disable_observer()


def qat(
    model: SLFMDet,
    samples: list[Sample],
    cfg: QATConfig,
    backends: list[str],
    out: Path,
    evaluate=None,
    **extra,
) -> Path:
    """Fine-tune and write ``out`` (a quantized checkpoint). ``evaluate(pm) -> dict`` runs after each epoch."""
    torch.manual_seed(cfg.seed)
    if cfg.limit:
        samples = samples[: cfg.limit]
    pm = prepare(model.eval(), qat=True, backend=backends[0])
    # Initial ranges from real images (eval-mode BN), so training starts near the PTQ solution.
    set_mode(pm, train=False)
    with torch.no_grad():
        for x in calibration_batches(samples, model, cfg.calib):
            pm(x)
    ds = DetectionDataset(samples, model.config, train=True, seed=cfg.seed, full_image_prob=cfg.full_image_prob)
    class_weights = None
    if cfg.class_balance:
        labels = np.concatenate([s.labels for s in samples])
        class_weights = torch.tensor(balanced_class_weights(labels, model.config.num_classes))
    loader = torch.utils.data.DataLoader(
        ds, batch_size=cfg.batch_size, shuffle=True, num_workers=cfg.workers, drop_last=True
    )
    params = [p for p in pm.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(cfg.epochs * len(loader), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i / steps, 1.0))))
    weights = LossWeights()
    history = []
    for epoch in range(cfg.epochs):
        ds.set_epoch(epoch)
        last = epoch == cfg.epochs - 1 and cfg.epochs > 1
        if last and cfg.freeze_last_epoch:
            _freeze(pm)
            set_mode(pm, train=False)  # BatchNorm uses (and keeps) its running statistics
        else:
            set_mode(pm, train=not cfg.freeze_bn)
        total, n = 0.0, 0
        bar = tqdm(loader, desc=f"qat {epoch + 1}/{cfg.epochs}", leave=False)
        for x, loc_t, conf_t, _heat in bar:
            loc, conf, _ = pm(x)
            loc_l, conf_l = multibox_loss(loc, conf, loc_t, conf_t, weights.negpos_ratio, class_weights)
            loss = weights.box * loc_l + conf_l
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            n += 1
            bar.set_postfix(loss=f"{total / n:.3f}")
        set_mode(pm, train=False)
        row = {"epoch": epoch + 1, "loss": total / max(n, 1)}
        if evaluate is not None:
            row.update(evaluate(pm))
        history.append(row)
        save_quantized(out, pm, model, "qat", backends, qat_config=asdict(cfg), history=history, **extra)
    return out
