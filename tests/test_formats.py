"""The one format table (slfm.formats) and the one dataset-layout table (slfm.layouts): every command, converter,
runner and split default reads them (no second table to drift)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from slfm.formats import FORMATS, NAMES, PRECISIONS, RUNTIME_CHOICES, RUNTIMES, format_of, load
from slfm.layouts import FIT, HOLDOUT, KINDS, LAYOUTS, default_splits

REPO = Path(__file__).resolve().parents[1]


def all_commands() -> dict[str, click.Command]:
    """Every command under ``slfm``, lazy ones included, by its full name (``slfm bench peer``)."""
    from slfm.cli import main

    out = {}

    def walk(cmd: click.Command, name: str, parent: click.Context | None) -> None:
        out[name] = cmd
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd, info_name=name.split()[-1], parent=parent)
            for sub in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, sub), f"{name} {sub}", ctx)

    walk(main, "slfm", None)
    return out


def test_importing_the_format_table_imports_no_toolchain():
    code = (
        "import sys, slfm.formats, slfm.layouts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'coremltools', 'executorch', 'ai_edge_litert', 'litert_torch', 'numpy')))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_every_format_is_described_once():
    assert NAMES == ("tflite", "coreml", "executorch")
    assert RUNTIME_CHOICES == ("auto", *RUNTIMES) and set(RUNTIMES) == {r for f in FORMATS.values() for r in f.runtimes}
    for name, f in FORMATS.items():
        assert f.name == name and f.suffixes[0] == f.suffix and set(f.precisions) <= set(PRECISIONS)
        for s in f.suffixes:
            assert format_of(Path("x" + s)) is f and format_of(Path("X" + s.upper())) is f
        # the lazy paths name real functions (imported here, never by the table itself)
        assert callable(load(f.converter)) and callable(load(f.metadata_reader))
    assert format_of(Path("model.pt")) is None and format_of(Path("photo.jpg")) is None
    # Core ML: int8 weights unless a QAT graph is given, and it runs on macOS only
    assert [n for n, f in FORMATS.items() if not f.int8_graph] == ["coreml"]
    assert FORMATS["coreml"].runs_here == (sys.platform == "darwin") and FORMATS["tflite"].runs_here


def test_converters_runners_contracts_and_apps_read_the_table():
    from slfm.artifact import ArtifactMeta
    from slfm.config import ModelConfig
    from slfm.convert.api import artifact_name, supports
    from slfm.convert.cli import convert
    from slfm.convert.job import formats_to_make
    from slfm.deploy_cli import ANDROID_MODELS
    from slfm.device_tests.bench import artifacts
    from slfm.pipeline import pipeline

    for name, f in FORMATS.items():
        assert artifact_name(name, 320, "fp32", None, False).endswith(f.suffix)
        for p in f.precisions:
            assert supports(name, p) is None
            meta = ArtifactMeta.from_model_config(ModelConfig(image_size=64), name, p)
            assert ArtifactMeta.from_dict(__import__("json").loads(meta.to_json())).format == name
        assert (supports(name, "fp32", nhwc=True) is None) == f.nhwc
    with pytest.raises(ValueError, match="format"):
        ArtifactMeta.from_dict({**__import__("json").loads(meta.to_json()), "format": "onnx"})
    # one spelling for "these formats" (--to, repeatable) in every command that takes several, from the table
    for cmd in (convert, pipeline, artifacts):
        (to,) = [p for p in cmd.params if p.name == "to"]
        assert to.multiple and to.opts == ["--to"] and list(to.type.choices)[: len(NAMES)] == list(NAMES), cmd.name
    assert formats_to_make(("all",), "fp32", False)[0] == list(NAMES)
    assert ANDROID_MODELS == {n: "model" + FORMATS[n].suffix for n, f in FORMATS.items() if "android" in f.deploy}


def test_every_runtime_choice_is_a_runner():
    from slfm.device_tests import runtimes

    src = (REPO / "device_tests" / "runtimes.py").read_text()
    for r in RUNTIMES:
        assert f'"{r}":' in src.split("runners = {")[1].split("}")[0]  # load_runner's runner for each runtime
    assert runtimes.RUNTIMES == RUNTIME_CHOICES


def test_every_dataset_option_offers_the_layout_table():
    commands = all_commands()
    with_dataset = {}
    for name, cmd in commands.items():
        for p in cmd.params:
            if isinstance(p, click.Option) and "--dataset" in p.opts:
                with_dataset[name] = p
    # train, eval, compact, qat, ptq, convert, parity, pipeline, release, bench artifacts/peer/ablation/layers
    assert len(with_dataset) >= 13, sorted(with_dataset)
    for name, p in with_dataset.items():
        assert isinstance(p.type, click.Choice) and tuple(p.type.choices) == KINDS, name
    for name in ("slfm convert", "slfm eval", "slfm detect", "slfm parity", "slfm bench artifacts"):
        runtime = next((p for p in commands[name].params if "--runtime" in getattr(p, "opts", ())), None)
        assert runtime is None or tuple(runtime.type.choices) == RUNTIME_CHOICES, name


def test_no_second_table_left_in_the_sources():
    for folder in ("slfm", "convert", "device_tests", "quantize"):
        for py in (REPO / folder).rglob("*.py"):
            if "pi_runner" in py.parts:  # the Pi's own copy: it ships alone, without slfm
                continue
            text = py.read_text()
            assert 'click.Choice(["aizoo"' not in text and "click.Choice(['aizoo'" not in text, py
            for pair in ('".tflite": "tflite"', '".tflite": "litert"', '".pte": "executorch"', '"tflite": ".tflite"'):
                assert pair not in text, (py, pair)  # a suffix <-> format / runtime map


def test_split_defaults_agree():
    from slfm.inputs import DataSpec, data_specs
    from slfm.voc import SPLITS_DIR

    for kind, lay in LAYOUTS.items():
        assert lay.kind == kind and set(lay.class_map.values()) == {1, 2}
        assert lay.test_split in lay.splits
        assert lay.holdout == (SPLITS_DIR / f"{kind}_holdout.txt").is_file()
        assert default_splits(kind) == (lay.train_split, lay.val_split)
        assert default_splits(kind)[1] != lay.test_split  # training never validates on the test split by default
        assert (lay.train_split, lay.val_split) == ((FIT, HOLDOUT) if lay.holdout else ("train", "val"))
        # eval, parity (both forms) and the pipeline's parity score the test split
        assert data_specs(["/d"], [kind])[0].split == lay.test_split
        assert DataSpec.parse(f"{kind}:/d").split == lay.test_split
    assert LAYOUTS["moxa3k"].test_split == "test" and LAYOUTS["aizoo"].test_split == "val"
    assert LAYOUTS["voc"].test_split == "test"


def test_eval_defaults_to_the_test_split(tmp_path):
    """``slfm eval`` without --split reads the layout's test split (an empty voc folder: the error names it)."""
    from click.testing import CliRunner

    from slfm.cli import main

    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "Annotations").mkdir()
    r = CliRunner().invoke(main, ["eval", "--data", str(tmp_path), "--dataset", "voc"])
    assert r.exit_code == 1 and "split 'test'" in r.output, r.output
