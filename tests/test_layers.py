"""The package layers, enforced: an import may only point down (or sideways, within its own layer).

    core  <-  model/data  <-  train/quantize  <-  convert  <-  device_tests  <-  pipeline/cli

Every import of every module is read with ``ast`` (module-level and function-local, ``import x`` and
``from x import y``, relative imports resolved); nothing is imported, so this runs without torch.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS = ("core", "model/data", "train/quantize", "convert", "device_tests", "pipeline/cli")

# A module's layer: its own entry, else its longest package prefix here. The feature packages and slfm.core
# take their layer as a whole; each flat slfm/ module is named, so a new one has to be placed on purpose.
TABLE = {
    # the NumPy-only inference core (what the Pi runner and the Kotlin/Swift ports mirror)
    "slfm.core": "core",
    "slfm.anchors": "core",
    "slfm.codec": "core",
    "slfm.metrics": "core",
    "slfm.nms": "core",
    "slfm.postprocess": "core",
    # the model, its data, and the plumbing every layer shares
    "slfm": "model/data",
    "slfm.artifact": "model/data",
    "slfm.augment": "model/data",
    "slfm.bench": "model/data",
    "slfm.checkpoint": "model/data",
    "slfm.compact": "model/data",
    "slfm.config": "model/data",
    "slfm.config_cli": "model/data",
    "slfm.data": "model/data",
    "slfm.detect": "model/data",
    "slfm.draw": "model/data",
    "slfm.errors": "model/data",
    "slfm.evaluate": "model/data",
    "slfm.fingerprint": "model/data",
    "slfm.formats": "model/data",
    "slfm.forms": "model/data",
    "slfm.golden": "model/data",
    "slfm.heatmap": "model/data",
    "slfm.images": "model/data",
    "slfm.inputs": "model/data",
    "slfm.layers": "model/data",
    "slfm.layouts": "model/data",
    "slfm.manifest": "model/data",
    "slfm.loss": "model/data",
    "slfm.match": "model/data",
    "slfm.model": "model/data",
    "slfm.negatives": "model/data",
    "slfm.options": "model/data",
    "slfm.outputs": "model/data",
    "slfm.predictor": "model/data",
    "slfm.profile": "model/data",
    "slfm.runner": "model/data",
    "slfm.sources": "model/data",
    "slfm.toolchain": "model/data",
    "slfm.voc": "model/data",
    "slfm.web_build": "model/data",
    "slfm.web_serve": "model/data",
    "slfm.weights": "model/data",
    # training, and what reads trained checkpoints to report on them
    "slfm.train": "train/quantize",
    "slfm.release": "train/quantize",
    "slfm.ablation": "train/quantize",
    "slfm.quantize": "train/quantize",
    "slfm.convert": "convert",
    "slfm.device_tests": "device_tests",
    # the commands that run any artifact (through slfm.device_tests.runtimes) and the top that assembles all
    "slfm.runnable": "pipeline/cli",
    "slfm.peer": "pipeline/cli",
    "slfm.sizes": "pipeline/cli",
    "slfm.nofaces": "pipeline/cli",
    "slfm.eval_job": "pipeline/cli",
    "slfm.pipeline": "pipeline/cli",
    "slfm.steps": "pipeline/cli",
    "slfm.deploy_cli": "pipeline/cli",
    "slfm.deploy_web": "pipeline/cli",
    "slfm.cli": "pipeline/cli",
}
PACKAGES = {"slfm.core", "slfm.quantize", "slfm.convert", "slfm.device_tests"}  # layer by prefix


def package_dirs() -> dict[str, Path]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {pkg: ROOT / folder for pkg, folder in cfg.items()}


def modules() -> dict[str, tuple[Path, bool]]:
    """{module name: (file, is a package __init__)} of every .py of the four packages."""
    dirs = package_dirs()
    claimed = {d.resolve() for d in dirs.values()}
    out = {}
    for pkg, folder in dirs.items():
        for p in sorted(folder.rglob("*.py")):
            if any(d in claimed and d != folder.resolve() for d in p.resolve().parents):
                continue  # a folder mapped to a package of its own
            parts = list(p.relative_to(folder).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join([pkg, *(parts[:-1] if is_pkg else parts)])] = (p, is_pkg)
    return out


def layer_of(module: str) -> str | None:
    if module in TABLE:
        return TABLE[module]
    for pkg in sorted(PACKAGES, key=len, reverse=True):
        if module.startswith(pkg + "."):
            return TABLE[pkg]
    return None


def imported(path: Path, module: str, is_pkg: bool, known: set[str]):
    """(line, module imported) for every import in ``path`` of a module in ``known``."""

    def resolve(name: str) -> str | None:  # the longest known module naming it (slfm.core.prepare -> slfm.core)
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_pkg else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for n in names:
            target = resolve(n)
            if target is not None:
                yield node.lineno, target


def violations() -> list[str]:
    mods = modules()
    rank = {name: i for i, name in enumerate(LAYERS)}
    out = set()
    for module, (path, is_pkg) in mods.items():
        own = layer_of(module)
        for line, target in imported(path, module, is_pkg, set(mods)):
            theirs = layer_of(target)
            if own and theirs and rank[theirs] > rank[own]:
                rel = path.relative_to(ROOT)
                out.add((str(rel), line, f"{rel}:{line} imports {target} ({theirs}) from layer {own}"))
    return [v for *_, v in sorted(out)]


def test_every_module_has_a_layer():
    missing = sorted(m for m in modules() if layer_of(m) is None)
    assert not missing, (
        f"modules without a layer: {missing}; add each to TABLE in tests/test_layers.py "
        f"(one of {LAYERS}) at the lowest layer its imports allow"
    )
    assert set(TABLE.values()) <= set(LAYERS)
    stale = sorted(m for m in TABLE if m not in modules())
    assert not stale, f"TABLE names modules that no longer exist: {stale}"


def test_imports_point_down_the_layers():
    found = violations()
    assert not found, f"{len(found)} imports against the layers ({' <- '.join(LAYERS)}):\n" + "\n".join(found)


def test_the_walk_sees_local_and_relative_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import slfm.cli\n\ndef f():\n    from .. import cli\n    from slfm.core import prepare\n")
    known = {"slfm", "slfm.cli", "slfm.core", "slfm.convert", "slfm.convert.m"}
    found = list(imported(src, "slfm.convert.m", False, known))
    assert (1, "slfm.cli") in found and (4, "slfm.cli") in found and (5, "slfm.core") in found
