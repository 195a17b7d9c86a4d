"""The eval step as a library function: :class:`EvalJob` -> :func:`eval_job` -> the evaluation summary.

``slfm eval`` is this function behind click options; ``slfm pipeline`` can run it as a step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from slfm.config_cli import opt
from slfm.options import FRACTION, NON_NEGATIVE
from slfm.postprocess import DEMO, EVAL


@dataclass(frozen=True)
class EvalJob:
    model: str | None  # a checkpoint path, a bundled name, an artifact, or None: the bundled weights for ``kind``
    data: Path
    kind: str = "moxa3k"
    split: str | None = None  # None: the layout's test split
    class_map: dict | None = None
    mode: str = "letterbox"
    size: int | None = None
    runtime: str = "auto"
    json_out: Path | None = None  # report (+ PR curves beside it)
    limit: int | None = None
    score_threshold: float = field(default=EVAL.score_threshold, metadata=opt("keep scores above this", FRACTION))
    nms_iou: float = field(default=EVAL.nms_iou, metadata=opt("NMS IoU within each class", FRACTION))
    cross_class_iou: float = field(
        default=EVAL.cross_class_iou,
        metadata=opt(
            "also drop a box under a higher-scoring box of the other class at this IoU (the demo uses "
            f"{DEMO.cross_class_iou}; 0: off, as the paper's mAP protocol)",
            FRACTION,
        ),
    )
    bootstrap: int = field(
        default=0,
        metadata=opt(
            "also resample the test images N times: mAP@0.5's spread (std, 5th-95th percentile)", NON_NEGATIVE
        ),
    )
    threads: int = 1


def eval_job(job: EvalJob, log=print) -> dict:
    """Evaluate ``job.model`` on the split; writes ``job.json_out`` when set; returns the summary."""
    from slfm.evaluate import evaluate_samples, summary, write_report
    from slfm.layouts import layout
    from slfm.runnable import RunOptions, load_runnable
    from slfm.voc import load_dataset

    post = replace(EVAL, score_threshold=job.score_threshold, nms_iou=job.nms_iou, cross_class_iou=job.cross_class_iou)
    opts = RunOptions(mode=job.mode, size=job.size, runtime=job.runtime, threads=job.threads)
    loaded = load_runnable(job.model, opts, job.kind)
    split = job.split or layout(job.kind).test_split
    samples = load_dataset(job.data, job.kind, split, job.class_map, job.limit)
    result = evaluate_samples(loaded.predictor(opts, post), samples, bootstrap=job.bootstrap)
    insize = loaded.input_size(opts)
    meta = {
        **loaded.describe(),
        "dataset": job.kind,
        "data": str(job.data),
        "split": split,
        "mode": job.mode,
        "input_size": insize,
        "postprocess": asdict(post),
        "title": f"{loaded.path.name} on {job.kind} {split} ({job.mode} {insize}, {loaded.runtime})",
    }
    if job.json_out:
        png = write_report(result, job.json_out, meta)
        log(f"report: {job.json_out}" + (f", PR curves: {png}" if png else ""))
    return summary(result)
