"""Model configuration: plain data, stored inside every checkpoint and artifact."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

CLASSES = ("background", "face", "mask")
# Reference pixel normalisation: BGR input, per-channel mean subtracted, no scaling.
BGR_MEAN = (104.0, 117.0, 123.0)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network and interpret its outputs."""

    image_size: int = 640
    attention: bool = True  # RCAM (SSH + CBAM + residual); False gives plain SSH (paper ablation)
    heatmap: bool = True  # auxiliary Gaussian heatmap head (training only)
    fpn_channels: int = 64
    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    classes: tuple[str, ...] = CLASSES
    mean_bgr: tuple[float, float, float] = BGR_MEAN
    cbam_reduction: int = 16
    extra: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_anchors(self) -> int:
        return len(self.min_sizes[0])

    def to_dict(self) -> dict:
        d = asdict(self)
        d["min_sizes"] = [list(m) for m in self.min_sizes]
        d["steps"] = list(self.steps)
        d["variances"] = list(self.variances)
        d["classes"] = list(self.classes)
        d["mean_bgr"] = list(self.mean_bgr)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        d = dict(d)
        for key in ("min_sizes",):
            if key in d:
                d[key] = tuple(tuple(m) for m in d[key])
        for key in ("steps", "variances", "classes", "mean_bgr"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)
