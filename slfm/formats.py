"""The artifact formats slfm makes and runs: one typed table that convert, parity, bench, eval/detect and deploy
read (like Ultralytics' ``export_formats()``, typed).

Importing this module imports no toolchain: a converter or an embedded-metadata reader is named by a lazy
``"module:attr"`` path, imported by :func:`load` when a format is made or read.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    name: str  # what ``slfm convert --to`` and the sidecar's ``format`` say
    title: str  # its runtime's name for people
    suffix: str  # what slfm convert writes
    suffixes: tuple[str, ...]  # every file suffix read as this format (the first: ``suffix``)
    precisions: tuple[str, ...]  # what slfm convert makes
    converter: str  # "module:function" (src, precision, nhwc, out, **kw) -> Path, imported when used
    metadata_reader: str  # "module:function" path -> the contract dict embedded in the file, or None
    runtimes: tuple[str, ...]  # the runtimes that run it here (``--runtime``), the default first
    deploy: tuple[str, ...] = ()  # ``slfm deploy`` apps that take it
    nhwc: bool = False  # takes ``--nhwc`` (channels-last input)
    int8_graph: bool = True  # int8 is the QAT / PTQ graph (False: int8 weights unless a QAT file is given)
    platforms: tuple[str, ...] = ()  # the ``sys.platform`` values it runs on (none: any)

    @property
    def runs_here(self) -> bool:
        return not self.platforms or sys.platform in self.platforms

    @property
    def runtime(self) -> str:
        """The default runtime (``--runtime auto``)."""
        return self.runtimes[0]

    def convert(self):
        return load(self.converter)

    def read_metadata(self):
        return load(self.metadata_reader)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "tflite",
            "LiteRT",
            ".tflite",
            (".tflite",),
            PRECISIONS,
            "slfm.convert.api:convert_tflite",
            "slfm.convert.meta:read_tflite",
            ("litert", "tflite-runtime"),
            deploy=("android", "pi", "web"),
            nhwc=True,
        ),
        Format(
            "coreml",
            "Core ML",
            ".mlpackage",
            (".mlpackage", ".mlmodel"),
            PRECISIONS,
            "slfm.convert.api:convert_coreml",
            "slfm.convert.meta:read_coreml",
            ("coreml",),
            deploy=("ios",),
            int8_graph=False,
            platforms=("darwin",),
        ),
        Format(
            "executorch",
            "ExecuTorch",
            ".pte",
            (".pte",),
            PRECISIONS,
            "slfm.convert.api:convert_executorch",
            "slfm.convert.meta:read_pte",
            ("executorch",),
            deploy=("android",),
        ),
    )
}
NAMES = tuple(FORMATS)  # the order convert makes them in
SUFFIXES = tuple(s for f in FORMATS.values() for s in f.suffixes)  # every artifact suffix
RUNTIMES = tuple(dict.fromkeys(r for f in FORMATS.values() for r in f.runtimes))
RUNTIME_CHOICES = ("auto", *RUNTIMES)  # ``--runtime``: auto is each format's default


def load(target: str):
    """Import ``"module:attr"``."""
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def format_of(path: str | Path) -> Format | None:
    """The format a file's suffix names, or None."""
    suffix = Path(path).suffix.lower()
    return next((f for f in FORMATS.values() if suffix in f.suffixes), None)


def for_runtime(runtime: str) -> list[Format]:
    return [f for f in FORMATS.values() if runtime in f.runtimes]


def for_deploy(app: str) -> dict[str, Format]:
    """The formats the ``slfm deploy`` app takes, by name."""
    return {n: f for n, f in FORMATS.items() if app in f.deploy}


def hint(fmt: Format) -> str:
    """``.tflite (LiteRT)``: how messages name a format."""
    return f"{fmt.suffix} ({fmt.title})"
