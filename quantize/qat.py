"""Quantization-aware fine-tuning of an fp32 checkpoint (PT2E fake quantization, BatchNorm folded).

Trains the graph every artifact exports (:mod:`slfm.quantize.graph`) on the multibox loss only: the heatmap
head is not in that graph. The recipe, from what was measured here (``moxa3k_512``, 150 held-out training
images, int8 simulation; fp32 0.751 mAP@0.5):

- **Ranges equalized first** (:mod:`slfm.quantize.equalize`): the backbone's channel ranges are levelled
  across each per-tensor int8 scale without changing the fp32 function; on Moxa3K holdout images this alone
  raised the PTQ graph's box-offset SNR from 17.2 to 22.0 dB and its class-score SNR from 36.3 to 40.3 dB.
- **Ranges as PTQ sets them.** Activation ranges come from PTQ's histogram observer on letterboxed whole
  images (as deployed) and then stay fixed (``act_ranges="histogram"``). torchao's default QAT fake-quantizers
  (moving-average min/max, ``"ema"``) re-estimate them on every augmented training crop: their starting point
  was 0.720 against PTQ's 0.728, and the earlier QAT lost more from there.
- **BatchNorm frozen** on the fp32 run's statistics (eval mode throughout), so that the conv-bn folding QAT
  simulates is the one deployed; weight ranges follow the weights (per-channel min/max).
- **The epoch is picked by int8 mAP** of the converted graph on a validation split carved from training data
  (``val`` in :func:`qat`, e.g. the committed ``holdout`` list), epoch 0 (the PTQ starting point) included, so
  QAT never ships a model its own validation rates below PTQ.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from slfm.data import DetectionDataset
from slfm.loss import LossWeights, balanced_class_weights, distillation_loss, multibox_loss
from slfm.model import SLFMDet
from slfm.quantize.calibrate import calibration_batches
from slfm.quantize.equalize import EQUALIZE_BATCHES, equalized
from slfm.quantize.quantized import prepare, save_quantized, set_mode
from slfm.voc import Sample


@dataclass
class QATConfig:
    epochs: int = 2
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0
    calib: int = 128  # letterboxed whole images that set the activation ranges (PTQ's histogram observer)
    act_ranges: str = "learned"  # calibrated, then trained (LSQ); "histogram": fixed; "ema": torchao moving average
    range_lr_scale: float = 1.0  # learned ranges: their learning rate as a multiple of lr
    equalize: bool = True  # cross-layer range equalization of the backbone before calibration
    workers: int = 2
    seed: int = 0
    limit: int | None = None  # train on N images drawn (seeded) from the training split
    freeze_bn: bool = True  # BatchNorm on its running statistics throughout (False: update them, long runs)
    freeze_last_epoch: bool = True  # weight ranges fixed in the last epoch too (ema: activation ranges as well)
    # loss = label_weight * multibox loss on the labels + distill_weight * distillation from the fp32 weights
    label_weight: float = 0.0
    distill_weight: float = 1.0
    # the fp32 weights' data recipe (slfm train's options of the same names); `slfm qat` reads them from the checkpoint
    full_image_prob: float = 0.0
    class_balance: bool = False


def trained_recipe(checkpoint: dict) -> dict:
    """The data recipe an fp32 checkpoint was trained with, as QATConfig fields (QAT keeps to it by default)."""
    t = checkpoint.get("train_config", {})
    return {"full_image_prob": float(t.get("full_image_prob") or 0.0), "class_balance": bool(t.get("class_balance"))}


def _fake_quantizers(pm: torch.fx.GraphModule, activations: bool | None = None):
    """The graph's fake-quantizers: all, or only those of activations (True) / weights (False)."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    weights = _weight_quantizer_names(pm)
    for name, mod in pm.named_modules():
        if isinstance(mod, FakeQuantizeBase) and (activations is None or (name not in weights) == activations):
            yield mod


def _weight_quantizer_names(pm: torch.fx.GraphModule) -> set[str]:
    """Fake-quantizers whose input derives from parameters only (a weight, or a weight scaled by BatchNorm)."""
    const: dict[str, bool] = {}
    names = set()
    for n in pm.graph.nodes:
        if n.op == "get_attr":
            const[n.name] = True
        elif n.op == "placeholder":
            const[n.name] = False
        else:
            ins = [a for a in n.all_input_nodes]
            const[n.name] = bool(ins) and all(const.get(a.name, False) for a in ins)
            if n.op == "call_module" and const[n.name]:
                names.add(str(n.target))
    return names


def freeze_ranges(pm: torch.fx.GraphModule, activations: bool | None = None) -> None:
    for mod in _fake_quantizers(pm, activations):
        mod.disable_observer()


def qat(
    model: SLFMDet,
    samples: list[Sample],
    cfg: QATConfig,
    backends: list[str],
    out: Path,
    val: list[Sample] | None = None,
    progress: bool = True,
    **extra,
) -> Path:
    """Fine-tune and write ``out`` (a quantized checkpoint): the epoch whose converted int8 graph scores the
    best mAP@0.5 on ``val`` (epoch 0 = the PTQ-calibrated start), or the last epoch without ``val``."""
    import copy

    from slfm.quantize.evaluate import int8_map50

    torch.manual_seed(cfg.seed)
    teacher = copy.deepcopy(model).eval() if cfg.distill_weight else None
    if cfg.equalize:  # the same fp32 function with per-tensor-friendly channel ranges (slfm.quantize.equalize)
        model = equalized(model, calibration_batches(samples, model, EQUALIZE_BATCHES * 8))
    pm = prepare(model.eval(), qat=True, backend=backends[0], act_ranges=cfg.act_ranges)
    set_mode(pm, train=False)
    # ranges from letterboxed whole images (as every artifact receives them) spread over the whole split, also
    # when training uses a subset: on Moxa3K holdout the int8 start moved by 1.9 points between two subsets
    with torch.no_grad():
        for x in tqdm(calibration_batches(samples, model, cfg.calib), desc="calibrate", leave=False):
            pm(x)
    if cfg.limit and cfg.limit < len(samples):
        samples = random.Random(cfg.seed).sample(list(samples), cfg.limit)  # spread, not the first files
    if cfg.act_ranges in ("histogram", "learned"):
        freeze_ranges(pm, activations=True)  # "learned": their scales become parameters here
    ds = DetectionDataset(samples, model.config, train=True, seed=cfg.seed, full_image_prob=cfg.full_image_prob)
    class_weights = None
    if cfg.class_balance:
        labels = np.concatenate([s.labels for s in samples])
        class_weights = torch.tensor(balanced_class_weights(labels, model.config.num_classes))
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=cfg.batch_size,
        shuffle=True,
        num_workers=cfg.workers,
        drop_last=len(ds) > cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    scales = {id(m.scale) for m in _fake_quantizers(pm, activations=True) if isinstance(m.scale, torch.nn.Parameter)}
    params = [p for p in pm.parameters() if p.requires_grad and id(p) not in scales]
    ranges = [p for p in pm.parameters() if p.requires_grad and id(p) in scales]
    groups = [{"params": params}] + ([{"params": ranges, "lr": cfg.lr * cfg.range_lr_scale}] if ranges else [])
    opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(cfg.epochs * len(loader), 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i / steps, 1.0))))
    weights = LossWeights()
    history: list[dict] = []
    best = -1.0
    meta = {"qat_config": asdict(cfg), "history": history, "train_images": len(samples), **extra}

    def validate(epoch: int, loss: float | None) -> None:
        nonlocal best
        row = {"epoch": epoch, "loss": loss}
        if val:
            row.update(int8_map50(pm, model.config, val, progress=progress, desc=f"val int8 (epoch {epoch})"))
        history.append(row)
        score = row.get("val_map50", epoch)  # without validation: the latest epoch
        if score > best:
            best = score
            save_quantized(out, pm, model, "qat", backends, best_epoch=epoch, **meta)
        msg = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float))
        tqdm.write(f"qat epoch {epoch}: {msg}" + (" (best so far: saved)" if best == score else ""))

    if val:
        validate(0, None)
    for epoch in range(cfg.epochs):
        ds.set_epoch(epoch)
        if epoch == cfg.epochs - 1 and cfg.epochs > 1 and cfg.freeze_last_epoch:
            freeze_ranges(pm)
        set_mode(pm, train=not cfg.freeze_bn)
        total, n = 0.0, 0
        bar = tqdm(loader, desc=f"qat {epoch + 1}/{cfg.epochs}", leave=False, disable=not progress)
        for x, loc_t, conf_t, _heat in bar:
            loc, conf, _ = pm(x)
            loss = torch.zeros(())
            if cfg.label_weight:
                loc_l, conf_l = multibox_loss(loc, conf, loc_t, conf_t, weights.negpos_ratio, class_weights)
                loss = loss + cfg.label_weight * (weights.box * loc_l + conf_l)
            if teacher is not None:
                with torch.no_grad():
                    t_loc, t_conf = teacher(x)
                box_d, cls_d = distillation_loss(loc, conf, t_loc, t_conf)
                loss = loss + cfg.distill_weight * (weights.box * box_d + cls_d)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
            n += 1
            bar.set_postfix(loss=f"{total / n:.3f}")
        set_mode(pm, train=False)
        validate(epoch + 1, total / max(n, 1))
    from slfm.checkpoint import read_data, save_data

    save_data(out, {**read_data(out), "history": history})  # the saved epoch's file, with every epoch's row
    return out
