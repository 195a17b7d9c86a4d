"""Training data sources: one or several data sets, each with its layout, splits, class map and weight.

``slfm train --data A --dataset aizoo --data B --dataset moxa3k`` trains on both, their labels mapped to face /
mask by each layout's class map, validated on each source's own validation split and reported per source.
By default a source trains on ``fit`` and validates on ``holdout`` (the committed list carved from its training
split, ``slfm/splits/``) where its layout has one: test splits are for final numbers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from slfm.errors import SlfmError
from slfm.layouts import default_splits
from slfm.voc import Sample, load_dataset


@dataclass
class Source:
    data: str
    dataset: str = "moxa3k"
    split: str | None = None  # None: default_splits
    class_map: dict | None = None
    weight: float = 1.0  # relative sampling weight of each of its images
    val_split: str | None = None  # None: default_splits; "" for none
    name: str = ""  # how reports name it (default: the layout, numbered when repeated)
    # a checkpoint (path, or a bundled name: faces / aizoo / moxa3k) whose outputs the model also learns on this
    # source's images (knowledge distillation, e.g. from the specialist trained on it); None: labels only
    teacher: str | None = None

    def splits(self) -> tuple[str, str]:
        return default_splits(self.dataset, self.split, self.val_split)

    def to_dict(self) -> dict:
        return asdict(self)


def named(sources: Sequence[Source]) -> list[Source]:
    """Sources with unique names (``aizoo``, ``moxa3k``; ``voc``, ``voc2`` for a repeated layout)."""
    out, seen = [], {}
    for s in sources:
        base = s.name or s.dataset
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}{seen[base]}"
        out.append(Source(**{**asdict(s), "name": name}))
    return out


def per_data(values: Sequence, n: int, what: str, default) -> list:
    """A repeated option paired with ``n`` repeated ``--data``: one value per ``--data``, or a single one for
    all, or none (``default`` for all)."""
    if not values:
        return [default] * n
    if len(values) == 1:
        return list(values) * n
    if len(values) != n:
        raise SlfmError(f"{len(values)} {what} options for {n} --data folders: give one per --data, or one for all")
    return list(values)


def zip_sources(
    data: Sequence[str | Path],
    kinds: Sequence[str],
    splits: Sequence[str] = (),
    weights: Sequence[float] = (),
    class_map: dict | None = None,
    val_split: str | None = None,
    teachers: Sequence[str] = (),
) -> list[Source]:
    """Repeated ``--data`` / ``--dataset`` / ``--split`` / ``--source-weight`` / ``--teacher`` options paired by
    position: each of the other lists has one entry per ``--data`` or a single one for all (none: the defaults).
    ``class_map`` applies to the ``voc`` sources (the other layouts have their own). A teacher ``none``: labels
    only for that source."""

    kinds_ = per_data(kinds, len(data), "--dataset", "moxa3k")
    splits_ = per_data(splits, len(data), "--split", None)
    weights_ = per_data(weights, len(data), "--source-weight", 1.0)
    teachers_ = [
        None if t in (None, "", "none") else teacher_path(t) for t in per_data(teachers, len(data), "--teacher", None)
    ]
    for w in weights_:
        if not w > 0:
            raise SlfmError(f"--source-weight {w}: must be > 0")
    return named(
        [
            Source(str(Path(d).resolve()), k, s, class_map if k == "voc" else None, float(w), val_split, teacher=t)
            for d, k, s, w, t in zip(data, kinds_, splits_, weights_, teachers_, strict=True)
        ]
    )


def teacher_path(teacher: str) -> str:
    """A ``--teacher`` value as an absolute checkpoint path: a bundled name (faces / aizoo / moxa3k) or a file."""
    from slfm.checkpoint import BUNDLED, bundled_checkpoint

    if teacher in BUNDLED:
        return str(bundled_checkpoint(teacher))
    p = Path(teacher)
    if not p.is_file():
        raise SlfmError(
            f"--teacher {teacher}: no such checkpoint (give a path, a bundled name: {', '.join(BUNDLED)}, or none)"
        )
    return str(p.resolve())


@dataclass
class LoadedSource:
    source: Source
    train: list[Sample]
    val: list[Sample]
    split: str
    val_split: str

    def summary(self) -> dict:
        return {
            **self.source.to_dict(),
            "split": self.split,
            "val_split": self.val_split,
            "images": len(self.train),
            "val_images": len(self.val),
        }


def load_sources(
    sources: Sequence[Source], limit: int | None = None, val_limit: int | None = None
) -> list[LoadedSource]:
    """Parse every source's training and validation split. ``limit``: the first N training images of each;
    ``val_limit``: N validation images of each, spread over its split (file order groups AIZOO's sources)."""
    out = []
    for s in sources:
        split, val_split = s.splits()
        train = load_dataset(s.data, s.dataset, split, s.class_map, limit)
        val = load_dataset(s.data, s.dataset, val_split, s.class_map) if val_split else []
        if val_limit and len(val) > val_limit:
            step = len(val) / val_limit
            val = [val[int(i * step)] for i in range(val_limit)]
        out.append(LoadedSource(s, train, val, split, val_split))
    return out
