"""Options made from config dataclasses (slfm.config_cli): the command line and the library config are one
definition, so a default changed in the config is the command's default."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import click
from click.testing import CliRunner

from slfm.config_cli import config_options, config_values, opt, option_fields
from slfm.options import POSITIVE


@dataclass(frozen=True)
class Toy:
    count: int = field(default=3, metadata=opt("how many", POSITIVE))
    mode: str = field(default="a", metadata=opt("which", choices=("a", "b")))
    augment: bool = field(default=True, metadata=opt("turn it off", flag="--no-augment"))
    balance: bool = field(default=False, metadata=opt("turn it on", flag="--balance"))
    smooth: bool = field(default=True, metadata=opt("on or off"))
    hidden: int = 7  # no opt(): not an option


def _run(*args: str) -> Toy:
    seen = []

    @click.command()
    @config_options(Toy)
    def cmd(**kw):
        seen.append(Toy(**config_values(Toy, kw)))
        assert kw == {}  # every option was a config field

    res = CliRunner().invoke(cmd, list(args))
    assert res.exit_code == 0, res.output
    return seen[0]


def test_defaults_flags_and_choices_come_from_the_dataclass():
    assert _run() == Toy()
    got = _run("--count", "5", "--mode", "b", "--no-augment", "--balance", "--no-smooth")
    assert got == Toy(count=5, mode="b", augment=False, balance=True, smooth=False, hidden=7)


def test_a_bad_value_is_a_usage_error_naming_the_option():
    @click.command()
    @config_options(Toy)
    def cmd(**kw):
        raise AssertionError("not reached")

    for args, name in ((["--count", "0"], "--count"), (["--mode", "c"], "--mode")):
        res = CliRunner().invoke(cmd, args)
        assert res.exit_code == 2 and name in res.output


def test_commands_options_are_their_configs_fields():
    """Each config field with opt() is an option of the command, with the config's default."""
    from slfm.cli import main
    from slfm.convert.job import ConvertJob
    from slfm.device_tests.bench import BenchJob, artifacts
    from slfm.eval_job import EvalJob
    from slfm.quantize.qat import QATConfig
    from slfm.train import TrainConfig

    commands = {n: main.get_command(click.Context(main), n) for n in ("train", "qat", "eval", "convert")}
    commands["bench artifacts"] = artifacts
    pairs = (("train", TrainConfig), ("qat", QATConfig), ("eval", EvalJob), ("convert", ConvertJob))
    for command, cls in (*pairs, ("bench artifacts", BenchJob)):
        cmd = commands[command]
        params = {p.name: p for p in cmd.params}
        wanted = option_fields(cls)
        assert wanted, cls
        for f in wanted:
            assert f.name in params, f"{command}: no option for {cls.__name__}.{f.name}"
            p = params[f.name]
            default = cls.__dataclass_fields__[f.name].default
            assert p.default == default or (p.is_flag and p.flag_value == (not default)), (command, f.name)
    assert {f.name for f in fields(Toy)} - {f.name for f in option_fields(Toy)} == {"hidden"}
