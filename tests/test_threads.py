"""Every compute command takes the one shared --threads option; it (or the environment) sets torch's threads."""

import json

import click
import pytest
import torch
from click.testing import CliRunner

from slfm.cli import main
from slfm.options import MAX_DEFAULT_THREADS, THREADS_ENV, physical_cores, resolve_threads, threads_option
from slfm.pipeline import plan

COMPUTE = [
    ("eval",),
    ("detect",),
    ("train",),
    ("qat",),
    ("ptq",),
    ("convert",),
    ("parity",),
    ("pipeline",),
    ("bench", "peer"),
    ("bench", "layers"),
    ("bench", "ablation"),
]


def _command(path: tuple[str, ...]) -> click.Command:
    cmd = main
    for name in path:
        cmd = cmd.get_command(click.Context(cmd), name)
        assert cmd is not None, f"slfm {' '.join(path)} is not available"
    return cmd


@pytest.mark.parametrize("path", COMPUTE, ids=" ".join)
def test_every_compute_command_takes_the_shared_threads_option(path):
    shared = next(p for p in click.command()(threads_option(lambda threads: None)).params if p.name == "threads")
    (opt,) = [p for p in _command(path).params if p.name == "threads"]
    assert opt.callback is shared.callback and opt.help == shared.help


@pytest.fixture
def no_thread_env(monkeypatch):
    for name in THREADS_ENV:
        monkeypatch.delenv(name, raising=False)
    saved = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(saved)


def _threads_inside(args: list[str]) -> int:
    seen = {}

    @click.command()
    @threads_option
    def probe(threads):
        seen["torch"], seen["option"] = torch.get_num_threads(), threads

    r = CliRunner().invoke(probe, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert seen["torch"] == seen["option"]
    return seen["torch"]


def test_threads_option_sets_torch_threads_and_env_is_the_fallback(no_thread_env):
    assert _threads_inside(["--threads", "3"]) == 3
    no_thread_env.setenv("OMP_NUM_THREADS", "2")
    assert _threads_inside([]) == 2
    no_thread_env.setenv("SLFM_THREADS", "3")
    assert _threads_inside([]) == 3
    assert _threads_inside(["--threads", "1"]) == 1  # the option beats the environment


def test_default_does_not_oversubscribe(no_thread_env):
    no_thread_env.setenv("OMP_NUM_THREADS", "not-a-number")  # ignored, as an unset variable
    n = resolve_threads(None)
    assert 1 <= n <= min(MAX_DEFAULT_THREADS, physical_cores())


def test_eval_runs_with_the_threads_it_was_given(moxa, tmp_path, no_thread_env):
    report = tmp_path / "r.json"
    args = ["eval", "moxa3k", "--data", str(moxa), "--limit", "1", "--threads", "2", "--json", str(report)]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads(report.read_text())["machine"]["torch_threads"] == 2


def test_pipeline_passes_its_threads_to_every_step(tmp_path):
    steps = plan(tmp_path, None, tmp_path, "moxa3k", 2, 1, None, ["tflite"], ["local"], 3, threads=3)
    assert [s.name for s in steps] == ["train", "convert-fp32", "qat", "convert-int8-tflite", "parity"]
    assert all(s.threads == 3 for s in steps)  # each step's interpreter applies it (python -m slfm.steps ... 3)
    assert steps[0].config.train.threads == 3 and steps[-1].config.threads == 3  # and the configs that record it
