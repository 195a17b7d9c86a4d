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

QAT is a mode of the one training loop (:func:`slfm.train.fit`): the same data recipe, loader, progress, CSV
log (``log.csv``), resume (``last.pt``) and torchrun support as fp32 training; :class:`QATTraining` supplies the
prepared graph, the distillation loss, the int8 validation and the quantized checkpoint format.
"""

from __future__ import annotations

import copy
import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import torch
from tqdm import tqdm

from slfm.config_cli import opt
from slfm.loss import LossWeights, distillation_loss, multibox_loss
from slfm.model import SLFMDet
from slfm.options import NON_NEGATIVE, POSITIVE, POSITIVE_FLOAT
from slfm.quantize.calibrate import calibration_batches
from slfm.quantize.equalize import EQUALIZE_BATCHES, equalized
from slfm.quantize.quantized import (
    _with_versions,
    fake_quantizers,
    freeze_ranges,
    prepare,
    read_quantized,
    save_quantized,
    set_mode,
    unpack,
)
from slfm.quantize.quantizer import ACT_RANGES
from slfm.sources import LoadedSource, Source
from slfm.voc import Sample


@dataclass
class QATConfig:
    epochs: int = field(default=2, metadata=opt("", POSITIVE))
    batch_size: int = field(default=16, metadata=opt("", POSITIVE))
    lr: float = field(default=1e-4, metadata=opt("Adam, cosine", POSITIVE_FLOAT))
    weight_decay: float = 0.0
    calib: int = field(
        default=128,
        metadata=opt("letterboxed images that set the activation ranges (PTQ's histogram observer)", POSITIVE),
    )
    act_ranges: str = field(  # calibrated, then trained (LSQ); "histogram": fixed; "ema": torchao moving average
        default="learned",
        metadata=opt(
            "histogram: set by calibration, then fixed; ema: torchao's moving average on every batch; learned: "
            "calibrated, then trained (LSQ)",
            choices=ACT_RANGES,
        ),
    )
    range_lr_scale: float = field(
        default=1.0,
        metadata=opt("learned activation ranges: their learning rate as a multiple of --lr", click.FloatRange(min=0)),
    )
    equalize: bool = field(
        default=True,
        metadata=opt("cross-layer range equalization of the backbone before calibration (same fp32 function)"),
    )
    workers: int = field(default=2, metadata=opt("DataLoader worker processes", NON_NEGATIVE))
    seed: int = field(default=0, metadata=opt("", int))
    limit: int | None = field(
        default=None,
        metadata=opt(
            "train on N images drawn (seeded) from the split, not the first N: spread over its sources  [default: all]",
            POSITIVE,
            show_default=False,
        ),
    )
    freeze_bn: bool = field(
        default=True,
        metadata=opt(
            "BatchNorm on the fp32 run's running statistics throughout, or updating them (long QAT runs)",
            flag="--freeze-bn/--train-bn",
        ),
    )
    freeze_last_epoch: bool = True  # weight ranges fixed in the last epoch too (ema: activation ranges as well)
    # loss = label_weight * multibox loss on the labels + distill_weight * distillation from the fp32 weights
    label_weight: float = 0.0
    distill_weight: float = 1.0
    # the fp32 weights' data recipe (slfm train's options of the same names); `slfm qat` reads them from the checkpoint
    full_image_prob: float = 0.0
    class_balance: bool = False
    negative_prob: float = 0.0

    def train_config(self, out: Path, dataset: str = "voc"):
        """The :class:`slfm.train.TrainConfig` of the shared loop: this run's data recipe, Adam with a cosine
        schedule from ``lr`` (no warm-up: the weights are trained already)."""
        from slfm.train import TrainConfig

        return TrainConfig(
            data="",
            dataset=dataset,
            out=str(out),
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_epochs=0.0,
            schedule="cosine",
            workers=self.workers,
            threads=torch.get_num_threads(),
            seed=self.seed,
            init="",
            full_image_prob=self.full_image_prob,
            class_balance=self.class_balance,
            negative_prob=self.negative_prob,
        )


def trained_recipe(checkpoint: dict) -> dict:
    """The data recipe an fp32 checkpoint was trained with, as QATConfig fields (QAT keeps to it by default)."""
    t = checkpoint.get("train_config", {})
    return {
        "full_image_prob": float(t.get("full_image_prob") or 0.0),
        "class_balance": bool(t.get("class_balance")),
        "negative_prob": float(t.get("negative_prob") or 0.0),
    }


class QATTraining:
    """The QAT mode of :func:`slfm.train.fit`: trains the prepared PT2E graph of ``model`` (ranges equalized and
    calibrated on ``calib`` images first), validates the converted int8 graph (epoch 0, the PTQ-calibrated
    start, included) and writes quantized checkpoints (:func:`slfm.quantize.quantized.save_quantized`)."""

    name = "qat"
    validates_start = True
    keeps_latest = True  # without validation: the latest epoch is the one kept

    def __init__(
        self,
        model: SLFMDet,
        cfg: QATConfig,
        backends: list[str],
        calib: list[Sample],
        best_name: str = "qat.pt",
        extra: dict | None = None,
    ) -> None:
        self.model, self.cfg, self.backends, self.calib = model, cfg, backends, calib
        self.best_name = best_name
        self.extra = extra or {}
        self.teacher = copy.deepcopy(model).eval() if cfg.distill_weight else None
        self.history: list[dict] = []
        self.best_epoch: int | None = None

    def setup(self, loaded: list[LoadedSource], device: torch.device) -> torch.fx.GraphModule:
        cfg = self.cfg
        if cfg.equalize:  # the same fp32 function with per-tensor-friendly channel ranges (slfm.quantize.equalize)
            self.model = equalized(self.model, calibration_batches(self.calib, self.model, EQUALIZE_BATCHES * 8))
        pm = prepare(self.model.eval(), qat=True, backend=self.backends[0], act_ranges=cfg.act_ranges)
        set_mode(pm, train=False)
        # ranges from letterboxed whole images (as every artifact receives them) spread over the whole split, also
        # when training uses a subset: on Moxa3K holdout the int8 start moved by 1.9 points between two subsets
        with torch.no_grad():
            for x in tqdm(calibration_batches(self.calib, self.model, cfg.calib), desc="calibrate", leave=False):
                pm(x)
        if cfg.act_ranges in ("histogram", "learned"):
            freeze_ranges(pm, activations=True)  # "learned": their scales become parameters here
        self.pm = pm.to(device)
        return self.pm

    def restore(self, net: torch.fx.GraphModule, ckpt: dict) -> None:
        """A resumed run: the graph's trained weights and ranges from its last.pt (over the fresh calibration)."""
        # learned range scales are parameters: torchao's loader resizes them in place, which autograd refuses
        learned = [m.scale for m in fake_quantizers(net) if isinstance(m.scale, torch.nn.Parameter)]
        for p in learned:
            p.requires_grad_(False)
        missing, unexpected = net.load_state_dict(_with_versions(unpack(ckpt["quant_state"]), net), strict=False)
        for p in learned:
            p.requires_grad_(True)
        if unexpected or [k for k in missing if not k.endswith(".histogram")]:
            from slfm.errors import SlfmError

            raise SlfmError(f"the QAT state to resume does not match this graph: {missing[:3]} {unexpected[:3]}")
        self.history = list(ckpt.get("history", []))
        self.best_epoch = ckpt.get("best_epoch")

    def param_groups(self, net: torch.fx.GraphModule) -> list[dict]:
        scales = {
            id(m.scale) for m in fake_quantizers(net, activations=True) if isinstance(m.scale, torch.nn.Parameter)
        }
        params = [p for p in net.parameters() if p.requires_grad and id(p) not in scales]
        ranges = [p for p in net.parameters() if p.requires_grad and id(p) in scales]
        return [{"params": params}] + (
            [{"params": ranges, "lr": self.cfg.lr * self.cfg.range_lr_scale}] if ranges else []
        )

    def begin_epoch(self, net: torch.fx.GraphModule, epoch: int, epochs: int) -> None:
        if epoch == epochs - 1 and epochs > 1 and self.cfg.freeze_last_epoch:
            freeze_ranges(self.pm)
        set_mode(self.pm, train=not self.cfg.freeze_bn)

    def loss(self, net, batch, weights: LossWeights, class_weights) -> dict[str, torch.Tensor]:
        x, loc_t, conf_t, _heat = batch[:4]
        loc, conf, _ = net(x)
        loss = torch.zeros((), device=x.device)
        parts = {}
        if self.cfg.label_weight:
            loc_l, conf_l = multibox_loss(
                loc, conf, loc_t, conf_t, weights.negpos_ratio, class_weights, weights.empty_negatives
            )
            loss = loss + self.cfg.label_weight * (weights.box * loc_l + conf_l)
            parts = {"loc": loc_l, "conf": conf_l}
        if self.teacher is not None:
            with torch.no_grad():
                t_loc, t_conf = self.teacher(x)
            box_d, cls_d = distillation_loss(loc, conf, t_loc, t_conf)
            loss = loss + self.cfg.distill_weight * (weights.box * box_d + cls_d)
            parts = {"loc": box_d, "conf": cls_d}
        return {**parts, "loss": loss}

    def validate(self, net, loaded: list[LoadedSource], progress: bool) -> dict[str, dict]:
        from slfm.evaluate import evaluate_samples
        from slfm.postprocess import EVAL
        from slfm.predictor import Predictor
        from slfm.quantize.quantized import fake_quant_module
        from slfm.runner import TorchRunner

        set_mode(self.pm, train=False)
        pred = Predictor(TorchRunner(fake_quant_module(self.pm)), self.model.config, post=EVAL)
        return {
            src.source.name: evaluate_samples(pred, src.val, progress=progress, desc=f"val int8 {src.source.name}")
            for src in loaded
            if src.val
        }

    def on_epoch(self, row: dict, result: dict) -> None:
        """The epoch's row of the checkpoint's ``history`` (the model card's QAT table reads it)."""
        h = {"epoch": row["epoch"], "loss": row.get("loss")}
        if result.get("map50") is not None:
            h.update(val_map50=result["map50"], val_ap50=result.get("ap50", {}))
        if " " in (row.get("map50_by_source") or ""):  # several sources: val_map50 is their mean
            h["val_by_source"] = row["map50_by_source"]
        self.history.append(h)

    def save(self, path: Path, net, meta: dict, train_state: dict | None = None) -> None:
        if path.name == self.best_name:
            self.best_epoch = meta["epoch"]
        extra = {"train_state": train_state} if train_state is not None else {}
        info = {"qat_config": asdict(self.cfg), "history": list(self.history), "best_epoch": self.best_epoch}
        save_quantized(path, self.pm, self.model, "qat", self.backends, **{**self.extra, **meta, **info, **extra})

    def finish(self, out: Path, best: Path | None) -> None:
        """The kept epoch's file gains every epoch's history row."""
        from slfm.checkpoint import read_data, save_data

        path = out / self.best_name
        if path.is_file():
            save_data(path, {**read_data(path), "history": self.history})


def qat(
    model: SLFMDet,
    samples: list[Sample],
    cfg: QATConfig,
    backends: list[str],
    out: Path,
    val: list[Sample] | dict[str, list[Sample]] | None = None,
    progress: bool = True,
    resume: str | Path | None = None,
    save_period: int = 0,
    **extra,
) -> Path:
    """Fine-tune and write ``out`` (a quantized checkpoint): the epoch whose converted int8 graph scores the
    best mAP@0.5 on ``val`` (epoch 0 = the PTQ-calibrated start), or the last epoch without ``val``. Also writes
    ``out.parent / "last.pt"`` (resumable with ``resume=``; ``save_period``: also ``epoch<N>.pt`` snapshots) and
    ``log.csv`` beside it. ``val`` may name several
    sources (``{name: samples}``): the epoch is then picked by their mean, as in fp32 training."""
    from slfm.outputs import folder_lock
    from slfm.train import fit, resumed_config

    out = Path(out)
    torch.manual_seed(cfg.seed)
    train_samples = list(samples)
    if cfg.limit and cfg.limit < len(train_samples):
        train_samples = random.Random(cfg.seed).sample(train_samples, cfg.limit)  # spread, not the first files
    vals = val if isinstance(val, dict) else {"val": list(val or [])}
    names = list(vals)
    loaded = [LoadedSource(Source("", name=names[0]), train_samples, vals[names[0]], "train", names[0])]
    loaded += [LoadedSource(Source("", name=n), [], vals[n], "", n) for n in names[1:]]
    tcfg = cfg.train_config(out.parent)
    tcfg.save_period = save_period
    ckpt = None
    if resume:
        ckpt = read_quantized(resume)
        if "train_state" not in ckpt:
            from slfm.errors import SlfmError

            raise SlfmError(f"{resume} holds no training state: only a QAT run's last.pt can be resumed")
        tcfg = resumed_config(tcfg, ckpt)
    else:
        import uuid

        tcfg.run_id = uuid.uuid4().hex
    mode = QATTraining(model, cfg, backends, samples, out.name, {"train_images": len(train_samples), **extra})
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun: rank 0 holds the folder
        fit(tcfg, mode, loaded, ckpt, progress)
        return out
    with folder_lock(out.parent, "slfm qat"):
        fit(tcfg, mode, loaded, ckpt, progress)
    return out


BACKEND_CHOICES = ["xnnpack", "litert", "all"]


def backends_of(choice: str) -> list[str]:
    return ["xnnpack", "litert"] if choice == "all" else [choice]


def qat_splits(kind: str, split: str | None, val_split: str | None) -> tuple[str, str]:
    """(training split, validation split) for QAT: :func:`slfm.layouts.default_splits` (``fit`` and ``holdout``
    where the layout has a committed holdout list), with no validation rather than a test split by default."""
    from slfm.errors import SlfmError
    from slfm.layouts import HOLDOUT, default_splits, layout

    train, val = default_splits(kind, split, val_split)
    if val_split is None and val != HOLDOUT:
        val = ""
    if val and layout(kind).holdout and val == layout(kind).test_split:
        raise SlfmError(
            f"--val-split {val}: that is {kind}'s test split here; QAT picks its epoch on a split carved from "
            f"training data (the default: {HOLDOUT})"
        )
    return train, val


def data_record(parts: list[dict]) -> dict:
    """A QAT checkpoint's ``data``: one source's record as it is, several listed under ``sources`` beside the
    same summary keys (splits joined by '+' where they differ, image counts summed)."""
    if len(parts) == 1:
        return parts[0]
    joined = {k: "+".join(dict.fromkeys(p[k] for p in parts)) for k in ("dataset", "train_split", "val_split")}
    return {
        **joined,
        "images": sum(p["images"] for p in parts),
        "val_images": sum(p["val_images"] for p in parts),
        "sources": parts,
    }


@dataclass(frozen=True)
class QATJob:
    """The QAT step's settings: an fp32 checkpoint and labelled data -> ``out/qat.pt``.

    ``full_image_prob`` / ``class_balance``: None follows the checkpoint's own training recipe (fine-tuning on
    another input distribution than the weights learnt moves them away from it); ``config``'s fields of those
    names are replaced by the resolved values."""

    checkpoint: str
    data: Path
    kind: str = "moxa3k"
    split: str | None = None
    class_map: dict | None = None
    val_split: str | None = None
    val_limit: int | None = None
    backend: str = "all"
    out: Path = Path("runs/qat")
    resume: Path | None = None
    full_image_prob: float | None = None
    class_balance: bool | None = None
    config: QATConfig = field(default_factory=QATConfig)
    command: str = "slfm qat"
    # further data sets beside ``data`` (slfm qat's repeated --data, as slfm train pairs them): their training
    # images join ``data``'s and the epoch is picked by the mean int8 mAP over every source's validation split
    more_sources: tuple[Source, ...] = ()

    def sources(self) -> list[Source]:
        from slfm.sources import named

        first = Source(str(self.data), self.kind, self.split, self.class_map, val_split=self.val_split)
        return named([first, *self.more_sources])


def qat_job(job: QATJob, log=print) -> Path:
    """Run the QAT step: load the checkpoint and data as ``job`` says, fine-tune, return ``out/qat.pt``."""
    import dataclasses

    from slfm.checkpoint import file_sha256, load_model, resolve_checkpoint
    from slfm.evaluate import machine
    from slfm.quantize.calibrate import spread
    from slfm.voc import load_dataset

    checkpoint = resolve_checkpoint(job.checkpoint, job.kind)
    model, ckpt = load_model(checkpoint)
    trained = trained_recipe(ckpt)
    full_image_prob = trained["full_image_prob"] if job.full_image_prob is None else job.full_image_prob
    class_balance = trained["class_balance"] if job.class_balance is None else job.class_balance
    # the rest of the data recipe (face-free images) follows the checkpoint's training too
    cfg = dataclasses.replace(
        job.config,
        full_image_prob=full_image_prob,
        class_balance=class_balance,
        negative_prob=trained["negative_prob"],
    )
    sources = job.sources()
    samples, vals, data = [], {}, []
    for src in sources:
        train_split, val_split = qat_splits(src.dataset, src.split, src.val_split)
        part = load_dataset(src.data, src.dataset, train_split, src.class_map)
        val = load_dataset(src.data, src.dataset, val_split, src.class_map) if val_split else []
        if val and job.val_limit:
            val = spread(val, job.val_limit)
        samples += part
        if val:
            vals[src.name] = val
        data.append(
            {
                "root": str(Path(src.data).resolve()),
                "dataset": src.dataset,
                "name": src.name,
                "train_split": train_split,
                "images": len(part),
                "val_split": val_split,
                "val_images": len(val),
            }
        )
        log(f"QAT source {src.name}: {src.dataset} {train_split} ({len(part)} images), validation {val_split or '-'}")
    n = min(cfg.limit or len(samples), len(samples))
    log(
        f"QAT on {n} images, epoch picked on {' + '.join(vals) or 'none (last epoch)'}; data recipe: "
        f"{full_image_prob:.0%} whole images, class-balanced loss {class_balance}, "
        f"{cfg.negative_prob:.0%} face-free images"
    )
    # one source validates on its list (as before); several by name, the epoch picked by their mean
    val_arg = (vals or None) if len(sources) > 1 else next(iter(vals.values()), None)
    record = data_record(data)
    return qat(
        model,
        samples,
        cfg,
        backends_of(job.backend),
        Path(job.out) / "qat.pt",
        val_arg,
        resume=job.resume,
        source_checkpoint=str(checkpoint),
        source_sha256=file_sha256(checkpoint),
        data=record,
        command=job.command,
        train_machine=machine(),
    )
