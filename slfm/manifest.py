"""The one cache and record of work done: a folder's ``manifest.json``.

Each entry names one piece of work (a pipeline step, one format x precision of ``slfm convert``, one bench
row) and records the key of what decided it (:func:`step_key`: the step's resolved settings, the content of
its input files, slfm's version and code) beside the outputs it produced. The work is up to date when its
key is unchanged and every recorded output still exists; the command line that asked for it plays no part,
so an upgrade that changes a default reruns it and a reordered command line does not.

Configs are plain dataclasses (:func:`config_json` / :func:`config_from_json` carry them between processes
as data, never as code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import types
import typing
from pathlib import Path
from typing import Any

from slfm.outputs import write_text

NAME = "manifest.json"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(p: Path) -> list[Path]:
    return sorted(f for f in p.rglob("*") if f.is_file() and f.name != NAME) if p.is_dir() else [p]


def input_hashes(inputs: list[Path]) -> dict[str, str]:
    """sha256 of every file among ``inputs`` (folders: every file below them, their manifest excepted)."""
    return {str(f): file_sha256(f) for p in inputs if Path(p).exists() for f in _files(Path(p))}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def config_json(cfg: Any) -> dict:
    """A dataclass config as JSON-able data (paths as strings, nested dataclasses as dicts)."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"not a dataclass config: {cfg!r}")
    return _plain(cfg)


def _restore(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        return _restore(arms[0], value) if len(arms) == 1 else value
    if tp is Path:
        return Path(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return config_from_json(tp, value)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        items = [_restore(args[0], v) for v in value] if args else list(value)
        return tuple(items) if origin is tuple else items
    return value


def config_from_json(cls: type, data: dict) -> Any:
    """The inverse of :func:`config_json` for the dataclass ``cls`` (unknown keys are refused: a config from
    another slfm version fails with the field it does not know)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    return cls(**{k: _restore(hints[k], v) for k, v in data.items()})


def step_key(name: str, config: dict, inputs: list[Path], code: str | None = None) -> str:
    """What decides a step's outputs: its name, resolved settings, input files' content, slfm's code + version."""
    from slfm.fingerprint import code_fingerprint

    blob = {"step": name, "config": config, "inputs": input_hashes(inputs), "code": code or code_fingerprint()}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


class Manifest:
    """``FOLDER/manifest.json``: entry name -> {key, outputs, status, ...}; written after each change."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / NAME
        self.entries: dict[str, dict] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def up_to_date(self, name: str, key: str) -> list[Path] | None:
        """The recorded outputs when ``name`` was done with this key and all of them exist, else None."""
        rec = self.entries.get(name)
        if rec and rec.get("key") == key and rec.get("status") == "done":
            outputs = [Path(p) for p in rec.get("outputs", [])]
            if all(p.exists() for p in outputs):
                return outputs
        return None

    def record(self, name: str, key: str, outputs: list[Path], status: str = "done", **info: Any) -> dict:
        rec = {
            "key": key,
            "status": status,
            "outputs": [str(p) for p in outputs],
            **{k: _plain(v) for k, v in info.items()},
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        self.entries[name] = rec
        self.save()
        return rec

    def drop(self, names: list[str] | None = None) -> None:
        """Forget ``names`` (all entries when None): that work reruns."""
        for n in list(self.entries) if names is None else names:
            self.entries.pop(n, None)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps(self.entries, indent=1) + "\n")
