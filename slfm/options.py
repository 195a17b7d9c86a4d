"""The command line's option types, shared by every command: a wrong value is a usage error naming the option
before any work starts (click prints ``Invalid value for '--x': ...`` and exits 2)."""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
from pathlib import Path

import click

from slfm.layouts import KINDS, split_help

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
NON_NEGATIVE = click.IntRange(min=0)  # counts where 0 means none / all / default (workers)
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


# Threads. torch's default (one per core it sees) oversubscribes a machine that is doing other work: on a busy
# 2-core machine `slfm eval` ran 17x slower with it than with one thread, as OpenMP threads spin waiting for each
# other. So every compute command takes --threads (one option, applied by one function, below); without it the
# usual environment variables decide, and without those the cores left free by the machine's current load,
# at most MAX_DEFAULT_THREADS.
THREADS_ENV = ("SLFM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
MAX_DEFAULT_THREADS = 4


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads of one core count once; the cgroup's CPU quota caps)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            cores.add(("", str(cpu)))
    n = len(cores) or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def default_threads() -> int:
    """Threads when neither --threads nor an environment variable says: the physical cores the current load
    leaves free (1-minute load average), at least 1 and at most :data:`MAX_DEFAULT_THREADS`."""
    cores = physical_cores()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(MAX_DEFAULT_THREADS, cores - int(load)))


def resolve_threads(threads: int | None) -> int:
    """``threads`` if given, else the first valid positive integer in :data:`THREADS_ENV`, else the default."""
    if threads:
        return threads
    for name in THREADS_ENV:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return default_threads()


def apply_threads(threads: int | None) -> int:
    """Set torch's and OpenCV's thread pools to :func:`resolve_threads` ``(threads)``; returns the number."""
    import cv2
    import torch

    n = resolve_threads(threads)
    torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return n


def _threads_callback(ctx, param, value):
    return apply_threads(value)


def threads_option(f):
    """``--threads N`` for a command that computes: applied (:func:`apply_threads`) before the command runs, which
    receives the number in effect."""
    return click.option(
        "--threads",
        type=POSITIVE,
        default=None,
        callback=_threads_callback,
        help=f"torch / runtime threads  [default: ${THREADS_ENV[0]} or ${THREADS_ENV[1]}, else the physical "
        f"cores the load leaves free, at most {MAX_DEFAULT_THREADS}]",
    )(f)


def limit_option(what: str = "images", name: str = "--limit"):
    """``--limit N``, one meaning in every command: the first N ``what`` in file order; unset: all of them."""
    return click.option(name, type=POSITIVE, default=None, help=f"use only the first N {what}  [default: all]")


# The commands' shared pieces: every feature package's CLI builds on these (slfm.cli only assembles them).


class LazyGroup(click.Group):
    """A click group whose commands in ``lazy`` (name -> "module:attr") are imported on demand."""

    lazy: dict[str, str] = {}

    def list_commands(self, ctx):
        found = [n for n, target in self.lazy.items() if importlib.util.find_spec(target.split(":")[0])]
        return sorted(set(super().list_commands(ctx)) | set(found))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is None and name in self.lazy:
            module, attr = self.lazy[name].split(":")
            try:
                cmd = getattr(importlib.import_module(module), attr)
            except ModuleNotFoundError as e:
                if e.name and e.name.startswith("slfm"):
                    return None
                raise
        return cmd


def class_map_option(f):
    """``--class-map``: the voc layout's XML class names to face / mask (:func:`class_map_of` parses it)."""
    return click.option(
        "--class-map",
        default=None,
        help="for --dataset voc: XML class names to face/mask, e.g. 'nomask=face,mask=mask'",
    )(f)


def repeated_data_option(what: str, required: bool = False):
    """A repeatable ``--data`` (several sources, paired by position with :func:`repeated_dataset_options`);
    ``what``: the end of its help, e.g. "to train on several sources at once"."""
    return click.option(
        "--data",
        type=click.Path(path_type=Path),
        multiple=True,
        required=required,
        help=f"dataset root folder; repeat it (with --dataset, --split in the same order) {what}",
    )


def dataset_options(f=None, *, data_required: bool = True, split_default: str | None = None):
    """``--data PATH --dataset KIND --split S --class-map M``, the layouts from :mod:`slfm.layouts`; with keywords
    only, a decorator (``@dataset_options(split_default=...)``)."""
    if f is None:
        return lambda g: dataset_options(g, data_required=data_required, split_default=split_default)
    f = class_map_option(f)
    f = click.option(
        "--split",
        default=None,
        help=f"split name ({split_help()}; fit / holdout: train without / only the committed holdout list)"
        + (f"  [default: {split_default}]" if split_default else ""),
    )(f)
    f = click.option(
        "--dataset",
        "kind",
        type=click.Choice(KINDS),
        default="moxa3k",
        show_default=True,
        help="dataset layout",
    )(f)
    f = click.option("--data", type=click.Path(path_type=Path), required=data_required, help="dataset root folder")(f)
    return f


def repeated_dataset_options(split_default: str, kind_dest: str = "kinds", split_dest: str = "splits"):
    """``--dataset`` and ``--split`` beside a repeated ``--data``: one per --data or one for all, paired by
    position (:func:`slfm.sources.per_data`)."""

    def decorate(f):
        split_help = f"split, one per --data or one for all  [default: {split_default}]"
        f = click.option("--split", split_dest, multiple=True, help=split_help)(f)
        return click.option(
            "--dataset",
            kind_dest,
            type=click.Choice(KINDS),
            multiple=True,
            help="dataset layout, one per --data or one for all  [default: moxa3k]",
        )(f)

    return decorate


def class_map_of(spec):
    """``--class-map`` parsed (:func:`slfm.voc.parse_class_map`), or None when not given."""
    from slfm.voc import parse_class_map

    return parse_class_map(spec) if spec else None


def choices_option(
    name: str,
    legacy: str | None,
    choices: tuple[str, ...],
    what: str,
    extra: tuple[str, ...] = ("all",),
    expand: bool = True,
):
    """``--NAME X``, repeatable: one spelling in every command that takes several formats or precisions
    (``--to tflite --to executorch``; ``all``, the default, is every choice; ``none``, where offered, is none).
    The old comma-separated ``--LEGACY a,b`` still works, hidden, with a deprecation note. The command receives
    the chosen values, each once, in the table's order (``expand=False``: as given, ``all`` kept)."""
    dest = name.lstrip("-").replace("-", "_")

    def callback(ctx, param, value):
        if not expand:
            return value
        old = ctx.params.pop(f"_{dest}_legacy", None)
        if old is not None:
            click.echo(f"warning: {legacy} a,b is deprecated; use {name} X (repeatable)", err=True)
            value = tuple(v.strip() for v in old.split(",") if v.strip())
            if not value and "none" not in extra:
                raise click.BadParameter(f"names none (choose from {', '.join(choices)})", param_hint=legacy)
            value = value or ("none",)
            bad = [v for v in value if v not in (*choices, *extra)]
            if bad:
                raise click.BadParameter(f"unknown {bad[0]!r} (choose from {', '.join(choices)})", param_hint=legacy)
        if "all" in value:
            return tuple(choices)
        return tuple(c for c in choices if c in value)

    def decorate(f):
        f = click.option(
            name,
            dest,
            type=click.Choice([*choices, *extra]),
            multiple=True,
            default=["all"],
            show_default=True,
            callback=callback,
            help=f"{what}; repeat for several ({name} {choices[0]} {name} {choices[-1]})",
        )(f)
        if legacy is None:
            return f
        # the old spelling is parsed first (is_eager), so the new option's callback can read it
        return click.option(legacy, f"_{dest}_legacy", default=None, hidden=True, is_eager=True)(f)

    return decorate


def repeated_option(
    name: str,
    choices: tuple[str, ...] | None,
    default: tuple,
    what: str,
    convert=str,
    check=None,
    help: str | None = None,
):
    """``--NAME X``, repeatable (``--threads 1 --threads 2``), for options that took one comma-separated value
    (``--threads 1,2``): that form still parses, with a deprecation note. The command receives the values, each
    once (``choices``: in the table's order; numbers: sorted). ``check(value)`` returns why a number is refused,
    or None. ``help`` leads the option's help (default: ``what``)."""
    dest = name.lstrip("-").replace("-", "_")

    def callback(ctx, param, value):
        got: list[str] = []
        for v in value:
            parts = [p.strip() for p in str(v).split(",") if p.strip()]
            if len(parts) != 1:
                click.echo(f"warning: {name} a,b is deprecated; use {name} X (repeatable)", err=True)
            if not parts:
                raise click.BadParameter(f"{v!r} names none", param_hint=name)
            got += parts
        if choices is not None:
            bad = [v for v in got if v not in choices]
            if bad:
                raise click.BadParameter(f"unknown {bad[0]!r} (choose from {', '.join(choices)})", param_hint=name)
            return tuple(c for c in choices if c in got)
        try:
            values = sorted({convert(v) for v in got})
        except ValueError:
            raise click.BadParameter(f"{', '.join(got)}: expected {what}", param_hint=name) from None
        if any(v < 1 for v in values):
            raise click.BadParameter(f"{', '.join(got)}: each must be >= 1", param_hint=name)
        for v in values:
            why = check(v) if check else None
            if why:
                raise click.BadParameter(f"{v}: {why}", param_hint=name)
        return tuple(values)

    def decorate(f):
        shown = " ".join(f"{name} {d}" for d in default)
        return click.option(
            name,
            dest,
            multiple=True,
            default=[str(d) for d in default],
            callback=callback,
            metavar="[" + "|".join(choices) + "]" if choices else "N",
            help=f"{help or what}; repeat for several" + (f"  [default: {shown}]" if default else ""),
        )(f)

    return decorate
