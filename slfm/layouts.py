"""The dataset layouts slfm reads (``--dataset KIND``): one typed table that every command's ``--dataset``
choices, split defaults and class maps come from.

Which split a command uses when ``--split`` is not given:

- training (``slfm train``, ``qat``): ``train_split``, validated on ``val_split``; where a layout has a committed
  holdout list (``slfm/splits/<kind>_holdout.txt``) these are ``fit`` / ``holdout``, carved from ``train``;
- final numbers (``slfm eval``, ``parity``, ``bench``): ``test_split``, never seen in training or in choices.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

FACE, MASK = 1, 2
HOLDOUT, FIT = "holdout", "fit"  # split names: the committed held-out list, and the training split without it


@dataclass(frozen=True)
class Layout:
    kind: str  # ``--dataset KIND``
    files: str  # how image / annotation pairs are found (for help and errors)
    pairs: str  # "module:function" (root, split) -> [(xml, image)], imported when used
    splits: tuple[str, ...]  # the splits the dataset ships with (``fit`` / ``holdout`` besides, where committed)
    class_map: dict[str, int] = field(hash=False)  # annotation class name -> FACE / MASK
    train_split: str = "train"  # what training fits on
    val_split: str = "val"  # what training validates on (epochs, thresholds, the QAT epoch)
    test_split: str = "test"  # what eval / parity / bench score by default: final numbers only

    @property
    def holdout(self) -> bool:
        """It has a committed holdout list: training validates on ``holdout``, carved from ``train``."""
        return self.val_split == HOLDOUT

    def find_pairs(self, root, split: str):
        module, attr = self.pairs.split(":")
        return getattr(importlib.import_module(module), attr)(root, split)


LAYOUTS: dict[str, Layout] = {
    lay.kind: lay
    for lay in (
        Layout(
            "aizoo",
            "ROOT/<split>/ with <name>.jpg beside <name>.xml",
            "slfm.voc:aizoo_pairs",
            ("train", "val"),
            {"face": FACE, "face_mask": MASK},
            train_split=FIT,
            val_split=HOLDOUT,
            test_split="val",  # AIZOO's published split for numbers; it has no test split
        ),
        Layout(
            "moxa3k",
            "ROOT/images/, 'ROOT/annotations/Pascal Voc/' and ROOT/<split>.txt listing the names",
            "slfm.voc:moxa3k_pairs",
            ("train", "test"),
            {"nomask": FACE, "mask": MASK},
            train_split=FIT,
            val_split=HOLDOUT,
            test_split="test",
        ),
        Layout(
            "voc",
            "ROOT/JPEGImages + ROOT/Annotations (+ ImageSets/Main/<split>.txt), or ROOT/<split>/ (or ROOT) with "
            "images beside their .xml",
            "slfm.voc:voc_pairs",
            ("train", "val", "test"),
            {"face": FACE, "mask": MASK},
        ),
    )
}
KINDS = tuple(LAYOUTS)  # every --dataset choice


def layout(kind: str) -> Layout:
    from slfm.errors import SlfmError

    if kind not in LAYOUTS:
        raise SlfmError(f"unknown dataset layout {kind!r}: use one of {', '.join(KINDS)}")
    return LAYOUTS[kind]


def default_splits(kind: str, split: str | None = None, val_split: str | None = None) -> tuple[str, str]:
    """(training split, validation split) for training on ``kind``: ``fit`` / ``holdout`` where the layout has a
    committed holdout list (a validation split carved from training data, never the test split), else ``train``
    / ``val``. Training on all of ``train`` leaves no holdout: such a run validates on the test split.
    ``val_split=''`` means no validation."""
    lay = layout(kind)
    train = split or lay.train_split
    if val_split is not None:
        return train, val_split
    if lay.holdout:
        return train, HOLDOUT if train in (FIT, HOLDOUT) else lay.test_split
    return train, lay.val_split


def split_help() -> str:
    """``--split``'s help: each layout's splits."""
    return "; ".join(f"{lay.kind}: {'/'.join(lay.splits)}" for lay in LAYOUTS.values())


def eval_splits_help() -> str:
    """Each layout's default split for final numbers (eval, parity)."""
    return ", ".join(f"{lay.kind} {lay.test_split}" for lay in LAYOUTS.values())
