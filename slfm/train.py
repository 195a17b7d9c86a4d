"""Training loop: single process, or DistributedDataParallel under ``torchrun`` (gloo on CPU, nccl on GPU).

Resumable from its last checkpoint (model, optimizer, scheduler, epoch, RNG state); logs losses and
validation mAP to CSV; keeps the best checkpoint by validation mAP@0.5.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, WeightedRandomSampler
from tqdm import tqdm

from slfm.checkpoint import read_checkpoint, save_checkpoint
from slfm.config import ModelConfig
from slfm.config_cli import opt
from slfm.data import DetectionDataset
from slfm.errors import SlfmError
from slfm.evaluate import evaluate_samples, machine
from slfm.loss import LossWeights, balanced_class_weights, distillation_loss, total_loss
from slfm.model import SLFMDet
from slfm.options import FRACTION, NON_NEGATIVE, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, apply_threads
from slfm.outputs import folder_lock, write_text
from slfm.postprocess import EVAL
from slfm.predictor import Predictor
from slfm.sources import LoadedSource, Source, load_sources, named
from slfm.weights import load_imagenet_backbone, load_retinaface

INITS = ("imagenet", "retinaface", "none")
DEFAULT_WEIGHT_FILES = {
    "imagenet": "mobilenetV1X0.25_pretrain.tar",
    "retinaface": "retinaface_mobilenet0.25_Final.pth",
}


@dataclass
class TrainConfig:
    data: str
    dataset: str = "moxa3k"
    split: str | None = None  # None: fit where the layout has a committed holdout list, else train
    val_split: str | None = None  # None: holdout where committed, else test (moxa3k) / val; "" disables validation
    class_map: dict | None = None
    out: str = "runs/train"
    epochs: int = 100
    batch_size: int = field(default=16, metadata=opt("per process", POSITIVE))
    lr: float = field(default=1e-3, metadata=opt("peak learning rate", POSITIVE_FLOAT))
    optimizer: str = field(default="adam", metadata=opt("", choices=("adam", "sgd")))
    momentum: float = 0.9
    weight_decay: float = field(default=5e-4, metadata=opt("", NON_NEGATIVE_FLOAT))
    warmup_epochs: float = field(default=1.0, metadata=opt("linear warm-up", NON_NEGATIVE_FLOAT))
    schedule: str = field(default="cosine", metadata=opt("", choices=("cosine", "step")))
    milestones: tuple[float, ...] = (0.7, 0.9)  # step schedule: fractions of the run
    gamma: float = 0.1
    workers: int = field(default=2, metadata=opt("DataLoader worker processes", NON_NEGATIVE))
    threads: int = 0  # torch intra-op threads, 0 = slfm.options.resolve_threads's default
    seed: int = field(default=0, metadata=opt("", int))
    init: str = field(
        default="imagenet", metadata=opt("imagenet | retinaface | none | path to weights or an slfm checkpoint")
    )
    augment: bool = field(default=True, metadata=opt("letterbox only, no augmentation", flag="--no-augment"))
    full_image_prob: float = field(  # not in the paper
        default=0.0,
        metadata=opt("share of samples letterboxed whole (as at test time) instead of randomly cropped", FRACTION),
    )
    negative_prob: float = field(  # slfm.negatives; not in the paper
        default=0.0,
        metadata=opt(
            "share of samples replaced by a face-free image (a box-free crop, a blank or noise frame, a photo)",
            FRACTION,
        ),
    )
    # every data source (slfm.sources.Source dicts); empty: the one source data / dataset / split / class_map name
    sources: list = field(default_factory=list)
    class_balance: bool = field(  # not in the paper
        default=False,
        metadata=opt("weight face/mask cross-entropy by inverse class frequency", flag="--class-balance"),
    )
    limit: int | None = None  # use only the first N training images
    val_limit: int | None = field(default=None, metadata=opt("validate on N images spread over the split", POSITIVE))
    val_every: int = field(default=1, metadata=opt("validate every N epochs", POSITIVE))
    time_limit: float | None = field(
        default=None,
        metadata=opt(
            "seconds to train for: after each epoch, --epochs becomes the number that fits at the pace so far "
            "(the cosine schedule follows)",
            POSITIVE_FLOAT,
        ),
    )
    save_period: int = field(
        default=0, metadata=opt("also keep epoch<N>.pt every N epochs (0: only last.pt and best.pt)", NON_NEGATIVE)
    )
    distill_weight: float = field(
        default=1.0,
        metadata=opt(
            "weight of the distillation loss on the sources that have a --teacher (beside the label loss)",
            NON_NEGATIVE_FLOAT,
        ),
    )
    run_id: str = ""  # set when a run starts, kept on resume: tells this run's best.pt from an earlier run's
    loss: dict = field(default_factory=lambda: asdict(LossWeights()))

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "milestones" in d:
            d["milestones"] = tuple(d["milestones"])
        return cls(**d)

    def source_list(self) -> list[Source]:
        if self.sources:
            return named([Source(**s) for s in self.sources])
        return named([Source(self.data, self.dataset, self.split, self.class_map, 1.0, self.val_split)])


def resolve_init_weights(init: str) -> Path | None:
    """'imagenet' / 'retinaface' -> the file in $SLFM_WEIGHTS_DIR or ../shared/weights; a path as is."""
    if init == "none":
        return None
    if init in DEFAULT_WEIGHT_FILES:
        name = DEFAULT_WEIGHT_FILES[init]
        dirs = [
            os.environ.get("SLFM_WEIGHTS_DIR", ""),
            "../shared/weights",
            "shared/weights",
            str(Path(__file__).resolve().parents[2] / "shared" / "weights"),
        ]
        for d in filter(None, dirs):
            if (Path(d) / name).is_file():
                return Path(d) / name
        raise SlfmError(
            f"--init {init}: {name} not found in $SLFM_WEIGHTS_DIR or ../shared/weights; pass its path with --init PATH"
        )
    p = Path(init)
    if not p.is_file():
        raise SlfmError(f"--init: weights file not found: {init} (or use one of {', '.join(INITS)})")
    return p


def apply_init(model: SLFMDet, init: str) -> None:
    path = resolve_init_weights(init)
    if path is None:
        return
    if init == "imagenet":
        load_imagenet_backbone(model, path)
    elif init == "retinaface":
        load_retinaface(model, path)
    else:  # a path: an slfm checkpoint, a RetinaFace file, or a backbone file
        try:
            ckpt = read_checkpoint(path)
            model.load_state_dict(ckpt["state_dict"], strict=True)
        except (SlfmError, RuntimeError):
            try:
                load_retinaface(model, path)
            except SlfmError:
                load_imagenet_backbone(model, path)


def lr_lambda(cfg: TrainConfig, iters_per_epoch: int):
    total = max(cfg.epochs * iters_per_epoch, 1)
    warm = int(cfg.warmup_epochs * iters_per_epoch)
    miles = [int(m * total) for m in cfg.milestones]

    def f(it: int) -> float:
        if it < warm:
            return 0.1 + 0.9 * it / max(warm, 1)
        if cfg.schedule == "cosine":
            p = (it - warm) / max(total - warm, 1)
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))
        return cfg.gamma ** sum(it >= m for m in miles)

    return f


def epochs_within(limit: float, elapsed: float, done: int, first: int) -> int:
    """Total epochs of a run that fit ``limit`` seconds, from ``done`` epochs taking ``elapsed`` so far.

    ``first`` is the epoch this process started at (a resumed run's earlier epochs cost none of its time).
    At least the epochs already done; as Ultralytics' ``time`` argument, but never past the limit.
    """
    pace = elapsed / max(done, 1)
    return first + max(done, int(limit / pace))


def training_sampler(dataset, weights: list[float], seed: int, world: int = 1, rank: int = 0):
    """The epoch's sample order: shuffled without replacement (split over ranks under torchrun), or, where sources
    carry different weights, each image drawn with its source's weight (with replacement; an epoch is still
    ``len(dataset)`` samples). Single-process samplers hold a generator the loop reseeds every epoch."""
    weighted = any(w != 1.0 for w in weights)
    if world > 1:
        if weighted:
            raise SlfmError("--source-weight is not supported under torchrun yet: leave every source at weight 1")
        return DistributedSampler(dataset, world, rank, shuffle=True, seed=seed, drop_last=True)
    generator = torch.Generator().manual_seed(seed)
    if weighted:
        return WeightedRandomSampler(weights, len(dataset), replacement=True, generator=generator)
    return RandomSampler(dataset, generator=generator)


def mean_result(by_source: dict[str, dict]) -> dict:
    """One validation result from each source's: mAP@0.5 and per-class AP as the unweighted mean over sources
    (a small source counts as much as a large one), so the best epoch is the best on every source at once."""
    if not by_source:
        return {}
    results = list(by_source.values())
    if len(results) == 1:
        return results[0]
    classes = sorted({c for r in results for c in r.get("ap50", {})})
    ap = {c: float(np.mean([r["ap50"][c] for r in results if c in r.get("ap50", {})])) for c in classes}
    return {"map50": float(np.mean([r["map50"] for r in results])), "ap50": ap}


def _dist() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


CSV_FIELDS = [
    "epoch",
    "lr",
    "loss",
    "loc",
    "conf",
    "heatmap",
    "map50",
    "ap50_face",
    "ap50_mask",
    "map50_by_source",
    "train_seconds",
    "images_per_second",
    "distill",  # last: a log written before it existed resumes with its columns in place
]


def train(cfg: TrainConfig, model_cfg: ModelConfig, resume: str | Path | None = None, progress: bool = True) -> Path:
    """Train and return the path of the best checkpoint (or the last one without validation). The output
    folder is locked for the run (rank 0): a second live run into it is refused."""
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(cfg, model_cfg, resume, progress)
    with folder_lock(cfg.out, "slfm train"):
        return _train(cfg, model_cfg, resume, progress)


@dataclass(frozen=True)
class TrainJob:
    """``slfm train``'s settings as one config (a pipeline step): the run, the network, a run to resume."""

    train: TrainConfig
    model: ModelConfig
    resume: Path | None = None


def train_job(job: TrainJob) -> Path:
    return train(job.train, job.model, resume=job.resume)


def save_epoch(
    out: Path,
    mode,
    net,
    row: dict,
    meta: dict,
    improved: bool,
    train_state: dict | None = None,
    save_period: int = 0,
) -> None:
    """An epoch's bookkeeping, ordered so that a kill -9 between any two steps leaves a resumable run:
    the best checkpoint (if improved) -> last.pt (holding the epoch's log row) -> the row appended to log.csv.

    Killed after the best: the resumed run redoes the epoch, starting from its score (:func:`saved_best`).
    Killed after last.pt: the resumed run writes the missing row from last.pt (:func:`sync_log`).
    ``train_state`` None (QAT's epoch 0, the starting point): no last.pt."""
    if improved:
        mode.save(out / mode.best_name, net, meta)
    if train_state is not None:
        mode.save(out / "last.pt", net, meta, train_state=train_state)
        if save_period and meta["epoch"] % save_period == 0:  # a snapshot a run can also resume from
            mode.save(out / f"epoch{meta['epoch']}.pt", net, meta, train_state=train_state)
    with open(out / "log.csv", "a", newline="") as f:
        csv.writer(f).writerow([_fmt(row.get(k)) for k in CSV_FIELDS])


def saved_best(path: Path, run_id: str) -> float:
    """The validation mAP@0.5 recorded in this run's best.pt (-1 if there is none, it has none, or it is an
    earlier run's)."""
    if not run_id or not path.is_file():
        return -1.0
    try:
        ckpt = read_checkpoint(path)
    except SlfmError:
        return -1.0
    m = ckpt.get("metrics", {}).get("map50")
    same_run = ckpt.get("train_config", {}).get("run_id") == run_id
    return float(m) if same_run and isinstance(m, (int, float)) else -1.0


def sync_log(path: Path, train_state: dict | None) -> None:
    """log.csv as it should be where training starts: a header only for a new run; on resume, one row per epoch
    up to the checkpoint's (rows of epochs redone after it dropped, its own row restored if the kill came
    before it was written). Rewritten atomically."""
    rows: list[list[str]] = []
    if train_state is not None:
        done = int(train_state["epoch"]) + 1
        if path.is_file():
            with open(path, newline="") as f:
                rows = [r for r in list(csv.reader(f))[1:] if r and r[0].isdigit() and int(r[0]) <= done]
        # resumed into a new folder (e.g. from an epoch<N>.pt snapshot): the log starts with the checkpoint's row
        if train_state.get("log_row") and not any(int(r[0]) == done for r in rows):
            rows.append([_fmt(train_state["log_row"].get(k)) for k in CSV_FIELDS])
    buf = io.StringIO()
    csv.writer(buf).writerows([CSV_FIELDS, *rows])
    write_text(path, buf.getvalue())


class FloatTraining:
    """The fp32 mode of the loop: SL-FMDet trained on the multibox + heatmap loss, validated in PyTorch, saved as
    slfm checkpoints (``best.pt`` / ``last.pt``). :class:`slfm.quantize.qat.QATTraining` is the other mode."""

    name = "fp32"
    best_name = "best.pt"
    validates_start = False  # epoch 0 is the init: not scored
    keeps_latest = False  # without validation there is no best.pt, only last.pt

    def __init__(self, model: SLFMDet, distill_weight: float = 1.0) -> None:
        self.model = model
        self.distill_weight = distill_weight
        self.teachers: dict[int, SLFMDet] = {}  # source index -> its teacher (frozen, eval mode)

    def setup(self, loaded: list[LoadedSource], device: torch.device) -> torch.nn.Module:
        from slfm.checkpoint import load_model

        for i, src in enumerate(loaded):
            if src.source.teacher and self.distill_weight > 0:
                teacher, _ = load_model(src.source.teacher)
                # its outputs must mean what the student's do: the same anchors, offsets and classes
                keys = ("min_sizes", "steps", "variances", "classes", "mean_bgr")
                differ = [k for k in keys if getattr(teacher.config, k) != getattr(self.model.config, k)]
                if differ:
                    raise SlfmError(
                        f"--teacher {src.source.teacher}: its {', '.join(differ)} differ from the model's "
                        f"({', '.join(f'{k} {getattr(teacher.config, k)}' for k in differ)}): "
                        "its outputs cannot be learnt"
                    )
                self.teachers[i] = teacher.to(device).eval().requires_grad_(False)
        return self.model.to(device)

    def restore(self, net: torch.nn.Module, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["state_dict"])

    def param_groups(self, net: torch.nn.Module) -> list[dict]:
        return [{"params": [p for p in self.model.parameters() if p.requires_grad]}]

    def begin_epoch(self, net: torch.nn.Module, epoch: int, epochs: int) -> None:
        net.train()

    def loss(self, net, batch, weights: LossWeights, class_weights) -> dict[str, torch.Tensor]:
        x, loc_t, conf_t, heat_t, source = batch
        outputs = net(x, with_heatmap=self.model.config.heatmap)
        parts = total_loss(outputs, (loc_t, conf_t, heat_t), weights, class_weights)
        if self.teachers:
            box_d, cls_d = self.distillation(outputs[0], outputs[1], x, source)
            parts["distill"] = weights.box * box_d + cls_d
            parts["loss"] = parts["loss"] + self.distill_weight * parts["distill"]
        return parts

    def distillation(self, loc, conf, x, source) -> tuple[torch.Tensor, torch.Tensor]:
        """Each teacher's (box, class) distillation loss on its source's samples of the batch, weighted by their
        share of the batch. Face-free samples (source -1) learn from their labels only: a teacher trained without
        them may see a face there."""
        box = cls = loc.new_zeros(())
        for i, teacher in self.teachers.items():
            rows = (source == i).nonzero().flatten()
            if rows.numel() == 0:
                continue
            with torch.no_grad():
                t_loc, t_conf = teacher(x[rows])[:2]
            b, c = distillation_loss(loc[rows], conf[rows], t_loc, t_conf)
            share = rows.numel() / x.shape[0]
            box, cls = box + share * b, cls + share * c
        return box, cls

    def validate(self, net, loaded: list[LoadedSource], progress: bool) -> dict[str, dict]:
        self.model.eval()
        pred = Predictor(self.model, self.model.config, "letterbox", self.model.config.image_size, EVAL)
        return {
            src.source.name: evaluate_samples(
                pred, src.val, progress=progress, desc=f"val {src.source.name} {src.val_split}"
            )
            for src in loaded
            if src.val
        }

    def save(self, path: Path, net, meta: dict, train_state: dict | None = None) -> None:
        extra = {"train_state": train_state} if train_state is not None else {}
        save_checkpoint(path, self.model, self.model.config, **extra, **meta)

    def on_epoch(self, row: dict, result: dict) -> None:
        pass

    def finish(self, out: Path, best: Path | None) -> None:
        pass


def _train(cfg: TrainConfig, model_cfg: ModelConfig, resume: str | Path | None, progress: bool) -> Path:
    ckpt = None
    if resume:
        ckpt = read_checkpoint(resume)
        if "train_state" not in ckpt:
            raise SlfmError(
                f"{resume} holds no training state (optimizer, epoch): it cannot be resumed; use it with --init instead"
            )
        model_cfg = ModelConfig.from_dict(ckpt["model_config"])
        cfg = resumed_config(cfg, ckpt)
    elif not cfg.run_id:
        cfg.run_id = uuid.uuid4().hex
    torch.manual_seed(cfg.seed)
    if ckpt is None:
        resolve_init_weights(cfg.init)  # a missing weights file fails before any data is read
    loaded = load_sources(cfg.source_list(), cfg.limit, cfg.val_limit)
    model = SLFMDet(model_cfg)
    if ckpt is None:
        apply_init(model, cfg.init)
    return fit(cfg, FloatTraining(model, cfg.distill_weight), loaded, ckpt, progress)


def resumed_config(cfg: TrainConfig, ckpt: dict) -> TrainConfig:
    """The run's own TrainConfig from its checkpoint, with what a resume may change (epochs, out, workers, threads,
    time limit) taken from ``cfg``."""
    saved = TrainConfig.from_dict(ckpt["train_config"])
    return TrainConfig.from_dict(
        {
            **asdict(saved),
            "epochs": cfg.epochs or saved.epochs,
            "out": cfg.out,
            "workers": cfg.workers,
            "threads": cfg.threads,
            "time_limit": cfg.time_limit,
        }
    )


def fit(cfg: TrainConfig, mode, loaded: list[LoadedSource], ckpt: dict | None = None, progress: bool = True) -> Path:
    """The training loop, for every mode (fp32: :class:`FloatTraining`; int8 QAT:
    :class:`slfm.quantize.qat.QATTraining`): data sources, loader, optimizer and schedule, progress, CSV log,
    per-source validation, best / last checkpoints, resume (``ckpt``: a last.pt) and torchrun.

    ``mode`` supplies what differs: the module trained, its parameter groups, the loss, validation and the
    checkpoint format. Returns the path of the best checkpoint (the last one without validation)."""
    rank, world = _dist()
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    apply_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input shapes: pick the fastest kernels once
    out = Path(cfg.out)
    model_cfg = mode.model.config
    samples = [smp for src in loaded for smp in src.train]
    data_sources = [src.summary() for src in loaded]
    start_epoch, best = 0, -1.0
    net = mode.setup(loaded, device)
    if ckpt is not None:
        mode.restore(net, ckpt)
        start_epoch = int(ckpt["train_state"]["epoch"]) + 1
        best = max(float(ckpt["train_state"]["best_map50"]), saved_best(out / mode.best_name, cfg.run_id))
    ddp = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net

    dataset = DetectionDataset(
        samples,
        model_cfg,
        train=cfg.augment,
        seed=cfg.seed,
        full_image_prob=cfg.full_image_prob,
        negative_prob=cfg.negative_prob,
        source_ids=[i for i, src in enumerate(loaded) for _ in src.train],
    )
    sampler = training_sampler(dataset, [src.source.weight for src in loaded for _ in src.train], cfg.seed, world, rank)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        drop_last=len(dataset) // world > cfg.batch_size,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    if len(loader) == 0:
        raise SlfmError(f"no training batches: {len(dataset)} images for batch size {cfg.batch_size} x {world} ranks")

    groups = mode.param_groups(net)
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        raise SlfmError(f"unknown optimizer {cfg.optimizer!r}: use adam or sgd")
    if cfg.schedule not in ("cosine", "step"):
        raise SlfmError(f"unknown schedule {cfg.schedule!r}: use cosine or step")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, len(loader)))
    if ckpt is not None:
        opt.load_state_dict(ckpt["train_state"]["optimizer"])
        sched.load_state_dict(ckpt["train_state"]["scheduler"])
        torch.set_rng_state(ckpt["train_state"]["torch_rng"])
    weights = LossWeights(**cfg.loss)
    class_weights = None
    if cfg.class_balance:
        labels = np.concatenate([smp.labels for smp in samples])
        class_weights = torch.tensor(balanced_class_weights(labels, model_cfg.num_classes), device=device)

    if rank == 0:
        sync_log(out / "log.csv", ckpt["train_state"] if ckpt is not None else None)
    where = {**machine(), "data_workers": cfg.workers, "world_size": world}
    has_val = any(src.val for src in loaded)

    def validate() -> tuple[dict, dict]:
        by_source = mode.validate(net, loaded, progress)
        return mean_result(by_source), by_source

    def record(epoch: int, row: dict, result: dict, by_source: dict, train_state: dict | None) -> None:
        """Score the epoch, keep the best, save (:func:`save_epoch`) and report it (rank 0)."""
        nonlocal best
        map50 = result.get("map50")
        score = map50 if has_val else (float(epoch) if mode.keeps_latest else None)
        improved = score is not None and score > best
        if improved:
            best = score
        row = {
            **row,
            "map50": map50,
            "ap50_face": result.get("ap50", {}).get("face"),
            "ap50_mask": result.get("ap50", {}).get("mask"),
            "map50_by_source": " ".join(f"{k}={v['map50']:.4f}" for k, v in by_source.items()),
        }
        meta = {
            "train_config": asdict(cfg),
            "train_machine": where,
            "epoch": epoch,
            "metrics": {
                "map50": map50,  # the mean over the sources' validation splits
                "ap50": result.get("ap50", {}),
                "split": "+".join(sorted({src.val_split for src in loaded if src.val})),
                "mode": f"letterbox{model_cfg.image_size}",
                "sources": {k: {"map50": v["map50"], "ap50": v.get("ap50", {})} for k, v in by_source.items()},
            },
            "data_sources": data_sources,
        }
        mode.on_epoch(row, result)
        state = (
            {**train_state, "best_map50": best, "log_row": {k: row.get(k) for k in CSV_FIELDS}} if train_state else None
        )
        save_epoch(out, mode, net, row, meta, improved, state, cfg.save_period)
        msg = f"{mode.name} epoch {epoch}/{cfg.epochs}"
        if row.get("loss") is not None:
            msg += f" loss {row['loss']:.4f}"
        if map50 is not None:
            msg += f" val mAP@0.5 {map50:.4f} (best {best:.4f})"
            if len(by_source) > 1:
                msg += " [" + ", ".join(f"{k} {v['map50']:.4f}" for k, v in by_source.items()) + "]"
        tqdm.write(msg + (" saved" if improved else ""))

    if rank == 0 and start_epoch == 0 and mode.validates_start and has_val:  # epoch 0: the starting point
        out.mkdir(parents=True, exist_ok=True)
        result, by_source = validate()
        record(0, {"epoch": 0, "lr": opt.param_groups[0]["lr"]}, result, by_source, None)

    last = out / "last.pt"
    t_start, epoch = time.perf_counter(), start_epoch
    while epoch < cfg.epochs:
        mode.begin_epoch(net, epoch, cfg.epochs)
        dataset.set_epoch(epoch)
        if world > 1:
            sampler.set_epoch(epoch)
        else:
            sampler.generator.manual_seed(cfg.seed * 100003 + epoch)
        sums: dict[str, float] = {}
        n = seen = 0
        t0 = time.perf_counter()
        bar = tqdm(loader, desc=f"{mode.name} {epoch + 1}/{cfg.epochs}", disable=not progress or rank != 0, leave=False)
        for batch in bar:
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
            parts = mode.loss(ddp, batch, weights, class_weights)
            opt.zero_grad(set_to_none=True)
            parts["loss"].backward()
            opt.step()
            sched.step()
            n += 1
            seen += batch[0].shape[0]
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            bar.set_postfix(loss=f"{sums['loss'] / n:.3f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
        seconds = time.perf_counter() - t0
        means = {k: v / max(n, 1) for k, v in sums.items()}
        images_per_rank = [seen]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, seen)
            images_per_rank = gathered
        if not all(math.isfinite(v) for v in means.values()):
            good = f"last good checkpoint: {last}" if last.is_file() else "no checkpoint was saved before it"
            raise SlfmError(f"training diverged at epoch {epoch + 1} (loss {means}); {good}")
        if cfg.time_limit:
            # before validation and saving, so that an epoch the limit makes the last is validated (whatever
            # --val-every says) and last.pt records the plan as it ended; the pace counts earlier validations
            fit_epochs = epochs_within(
                cfg.time_limit, time.perf_counter() - t_start, epoch + 1 - start_epoch, start_epoch
            )
            if world > 1:
                shared = [fit_epochs]
                dist.broadcast_object_list(shared, src=0)
                fit_epochs = shared[0]
            if fit_epochs != cfg.epochs:
                if rank == 0:
                    tqdm.write(
                        f"--time-limit {cfg.time_limit:g}s: {fit_epochs} epochs fit at this pace (was {cfg.epochs})"
                    )
                cfg.epochs = fit_epochs  # the schedule reads cfg.epochs: cosine now ends at the new last epoch
                sched.lr_lambdas = [lr_lambda(cfg, len(loader))]
        if rank == 0:
            result, by_source = {}, {}
            if has_val and ((epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs):
                result, by_source = validate()
            row = {
                "epoch": epoch + 1,
                "lr": opt.param_groups[0]["lr"],
                **means,
                "train_seconds": round(seconds, 2),
                "images_per_second": round(sum(images_per_rank) / seconds, 2),
            }
            state = {
                "epoch": epoch,
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "world_size": world,
                "images_per_rank": images_per_rank,
            }
            record(epoch + 1, row, result, by_source, state)
        if world > 1:
            dist.barrier()
        epoch += 1
    if world > 1:
        dist.destroy_process_group()
    best_path = out / mode.best_name
    best_path = best_path if best_path.exists() else last
    if rank == 0:
        mode.finish(out, best_path)
    return best_path


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else ("" if v is None else v)
