"""The command line's option types, shared by every command: a wrong value is a usage error naming the option
before any work starts (click prints ``Invalid value for '--x': ...`` and exits 2)."""

from __future__ import annotations

from pathlib import Path

import click

# The network's largest stride: smaller inputs have no coarse feature map.
MIN_IMAGE_SIZE = 32


class ImageSize(click.ParamType):
    """An input size in pixels: an integer of at least :data:`MIN_IMAGE_SIZE`."""

    name = "pixels"

    def convert(self, value, param, ctx):
        try:
            size = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a whole number of pixels", param, ctx)
        if size < MIN_IMAGE_SIZE:
            self.fail(f"{size} is below {MIN_IMAGE_SIZE}, the network's largest stride", param, ctx)
        return size


IMAGE_SIZE = ImageSize()
POSITIVE = click.IntRange(min=1)  # counts of things to do: epochs, batch size, images, calibration images
NON_NEGATIVE = click.IntRange(min=0)  # counts where 0 means none / all / default (workers, threads 0)
FRACTION = click.FloatRange(0, 1)  # probabilities, scores, IoUs
POSITIVE_FLOAT = click.FloatRange(min=0, min_open=True)  # learning rates, seconds
NON_NEGATIVE_FLOAT = click.FloatRange(min=0)  # weight decay, warm-up epochs


def _file_in_the_way(path: Path) -> Path | None:
    """The first of ``path``'s existing ancestors that is a file (so nothing can be created under it)."""
    for p in path.absolute().parents:
        if p.exists():
            return p if not p.is_dir() else None
    return None


class OutPath(click.Path):
    """An output folder (``folder=True``) or file: it may not exist yet, but must not be the other kind nor lie
    under a file (so it can be made), checked before any work."""

    def __init__(self, folder: bool) -> None:
        super().__init__(file_okay=not folder, dir_okay=folder, path_type=Path)
        self.name = "folder" if folder else "file"

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        blocker = _file_in_the_way(Path(path))
        if blocker is not None:
            self.fail(f"{path}: {blocker} is a file, so this {self.name} cannot be made", param, ctx)
        return path


class InFile(click.Path):
    """An input file that must exist; ``refuse`` maps suffixes to why such files are never read."""

    name = "file"

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        super().__init__(exists=True, file_okay=True, dir_okay=False, path_type=Path)
        self.refuse = refuse or {}

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        why = self.refuse.get(Path(path).suffix.lower())
        if why:
            self.fail(f"{path}: {why}", param, ctx)
        return path


# torch.export programs unpickle parts of themselves without torch.load's data-only guard: a downloaded one
# could run code, so slfm never loads them (a fake-quant model is rebuilt from a quantized checkpoint instead).
PROGRAMS_REFUSED = {
    ".pt2": "a torch.export program (.pt2) can hold code and is never loaded; give the quantized checkpoint "
    "(slfm qat / slfm ptq), whose fake-quant model is rebuilt from data"
}

OUT_DIR = OutPath(folder=True)
OUT_FILE = OutPath(folder=False)
IN_FILE = InFile()
