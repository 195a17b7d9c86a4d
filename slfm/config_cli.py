"""Click options made from a config dataclass's fields, so a command's options and the library's config are one
definition (as ai-hub-models derives its CLI from signatures).

A field takes part when it carries :func:`opt` metadata::

    lr: float = field(default=1e-3, metadata=opt("Adam / SGD learning rate", POSITIVE_FLOAT))

``--lr`` then has the field's default and type; a bool field becomes ``--name/--no-name`` (``flag=`` names a
plain flag that turns the default around, or another ``--on/--off`` pair). :func:`config_options` adds the
options, :func:`config_values` picks their values out of the callback's keyword arguments.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import click

_KEY = "slfm_option"


def opt(
    help: str, type: Any = None, *, flag: str | None = None, choices: Any = None, show_default: bool = True
) -> dict:
    """Field metadata that makes the field a command-line option (``choices``: a sequence of allowed values)."""
    return {_KEY: {"help": help, "type": type, "flag": flag, "choices": choices, "show_default": show_default}}


def option_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if _KEY in f.metadata]


def field_default(f: dataclasses.Field, missing: Any = None) -> Any:
    """A dataclass field's default (its factory's value), or ``missing`` when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return missing


def _is_bool(cls: type, f: dataclasses.Field) -> bool:
    return typing.get_type_hints(cls)[f.name] is bool


def config_options(
    cls: type, exclude: tuple[str, ...] = (), defaults: dict | None = None, only: tuple[str, ...] = ()
) -> Callable:
    """A decorator adding one click option per :func:`opt` field of ``cls`` (those in ``only`` when given, never
    those in ``exclude``), in field order; ``defaults`` overrides a field's default for this command."""
    defaults = defaults or {}

    def decorate(f):
        for field in reversed(option_fields(cls)):
            if field.name in exclude or (only and field.name not in only):
                continue
            m = field.metadata[_KEY]
            name = field.name.replace("_", "-")
            default = defaults.get(field.name, field_default(field))
            kw: dict[str, Any] = {"default": default, "help": m["help"], "show_default": m["show_default"]}
            if _is_bool(cls, field):
                decls = [m["flag"]] if m["flag"] else [f"--{name}/--no-{name}"]
                if m["flag"] and "/" not in m["flag"]:
                    kw["is_flag"] = True
                    kw["flag_value"] = not default  # the flag turns the field's default around
                    kw["default"] = default
                    kw["show_default"] = False
                f = click.option(*decls, field.name, **kw)(f)
                continue
            kw["type"] = click.Choice(list(m["choices"])) if m["choices"] else m["type"]
            f = click.option(f"--{name}", field.name, **kw)(f)
        return f

    return decorate


def config_values(cls: type, kwargs: dict, exclude: tuple[str, ...] = ()) -> dict:
    """The values of ``cls``'s option fields among a callback's ``kwargs`` (removed from it)."""
    return {f.name: kwargs.pop(f.name) for f in option_fields(cls) if f.name not in exclude and f.name in kwargs}
