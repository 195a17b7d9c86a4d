"""What ``slfm eval`` and ``slfm detect`` run: an slfm checkpoint or an on-device artifact, behind one API.

An artifact (``.tflite``, ``.pte``, ``.mlpackage``) brings its own contract (:class:`slfm.artifact.ArtifactMeta`,
from its sidecar or, without one, from the metadata inside it): input size, mean, layout, quantization,
anchors and the demo thresholds all come from there, so "how accurate is the file I ship" is one command.
Loading an artifact runs no code from it (flatbuffers and Core ML specs are data).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from slfm.artifact import ArtifactMeta
from slfm.checkpoint import _is_artifact, file_sha256, load_model, resolve_checkpoint
from slfm.config import ModelConfig
from slfm.errors import SlfmError
from slfm.formats import FORMATS
from slfm.postprocess import PostprocessConfig
from slfm.predictor import Predictor


@dataclass(frozen=True)
class RunOptions:
    """How to run the model: ``mode``/``size`` of the input (an artifact's input is fixed by its contract),
    ``runtime`` for an artifact whose format has several (``auto``: the format's default), threads."""

    mode: str = "letterbox"
    size: int | None = None
    runtime: str = "auto"
    threads: int = 1


@dataclass
class Runnable:
    """A loaded model: ``model`` is the torch module or a :class:`slfm.runner.Runner`."""

    path: Path
    model: object
    config: ModelConfig
    meta: ArtifactMeta | None  # the artifact's contract; None for a checkpoint
    runtime: str  # "pytorch", or the runner's name (litert, tflite-runtime, executorch, coreml)

    @property
    def is_artifact(self) -> bool:
        return self.meta is not None

    def input_size(self, opts: RunOptions) -> int:
        if self.meta is not None:
            return self.meta.image_size
        return opts.size or (self.config.image_size if opts.mode == "letterbox" else 840)

    def predictor(self, opts: RunOptions, post: PostprocessConfig) -> Predictor:
        if self.meta is not None:  # the artifact's own contract (its pixel_scale too)
            return Predictor(self.model, self.meta, opts.mode, self.meta.image_size, post)
        return Predictor(self.model, self.config, opts.mode, opts.size, post)

    def demo_post(self, score: float | None, nms: float | None) -> PostprocessConfig:
        """The display thresholds: those given, else the artifact's contract (a checkpoint: the demo's)."""
        base = PostprocessConfig()
        if self.meta is not None:
            m = self.meta
            base = replace(
                base, score_threshold=m.score_threshold, nms_iou=m.nms_iou, cross_class_iou=m.cross_class_iou
            )
        return replace(
            base,
            score_threshold=base.score_threshold if score is None else score,
            nms_iou=base.nms_iou if nms is None else nms,
        )

    def describe(self) -> dict:
        """What a report names: the file, its hash, and for an artifact its format, precision and runtime."""
        key = "artifact" if self.is_artifact else "checkpoint"
        d = {key: str(self.path), f"{key}_sha256": _sha256(self.path), "runtime": self.runtime}
        if self.meta is not None:
            d |= {
                "format": self.meta.format,
                "precision": self.meta.precision,
                "quantization": self.meta.quantization,
                "source_checkpoint": self.meta.source_checkpoint,
            }
        return d


def _sha256(path: Path) -> str:
    if path.is_dir():  # an .mlpackage: the hash of its files' hashes, in name order
        import hashlib

        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f.relative_to(path).as_posix().encode() + file_sha256(f).encode())
        return h.hexdigest()
    return file_sha256(path)


def is_artifact(path: str | Path) -> bool:
    p = Path(path)
    return p.suffix.lower() in FORMATS["coreml"].suffixes or (p.is_file() and _is_artifact(p))


def _check_contract(path: Path, meta: ArtifactMeta) -> None:
    """Refuse a contract this slfm cannot honour, rather than feed the model the wrong input."""
    bad = []
    if meta.color != "BGR":
        bad.append(f"color {meta.color!r} (slfm feeds BGR)")
    if meta.outputs != ["loc", "scores"]:
        bad.append(f"outputs {meta.outputs} (slfm reads [loc, scores])")
    if bad:
        raise SlfmError(f"{path}: its contract asks for {'; '.join(bad)}: made by another tool or version")


def check_options(r: Runnable, opts: RunOptions) -> None:
    """An artifact's input is fixed: a different --size or the reference mode is a clear error, not a resize."""
    if r.meta is None:
        if opts.runtime != "auto":
            raise SlfmError(f"--runtime {opts.runtime} is for artifacts; {r.path} is a checkpoint (runs in PyTorch)")
        return
    s = r.meta.image_size
    if opts.mode != "letterbox":
        raise SlfmError(f"{r.path}: --mode {opts.mode} needs a checkpoint; an artifact takes a fixed {s}x{s} letterbox")
    if opts.size not in (None, s):
        raise SlfmError(f"{r.path}: --size {opts.size} does not match the artifact's input {s} (its contract)")


def load_runnable(arg: str | Path | None, opts: RunOptions = RunOptions(), dataset: str | None = None) -> Runnable:
    """A checkpoint (a path, a bundled name, or None for the bundled default) or an artifact, loaded to run."""
    if arg is not None and is_artifact(arg):
        from slfm.device_tests.runtimes import load_runner  # the artifact runtimes: only needed for artifacts

        path = Path(arg)
        runner = load_runner(path, threads=opts.threads, runtime=opts.runtime)
        _check_contract(path, runner.meta)
        r = Runnable(path, runner, runner.meta.model_config(), runner.meta, runner.name)
    else:
        path = resolve_checkpoint(arg, dataset)
        model, _ = load_model(path)
        r = Runnable(path, model, model.config, None, "pytorch")
    check_options(r, opts)
    return r
