"""Flags from config dataclasses: ``--field`` flags, ``--config FILE`` and ``key=value``."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from .. import config as C


def add_config_args(parser: argparse.ArgumentParser, cls: type, presets: dict[str, dict[str, Any]] | None = None,
                    skip: tuple[str, ...] = ()) -> None:
    """One flag per field of ``cls`` (help and default from the field), plus --config and overrides."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"options ({cls.__name__})")
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_ = f"{f.metadata.get('help', '')} (default: {default!r})".replace("%", "%%")
        tp = hints[f.name]
        if tp is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_)
        else:
            choices = typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else None
            group.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, choices=choices, metavar=None if choices else f.name.upper(),
                               help=help_)
    for name, values in (presets or {}).items():
        parser.add_argument(f"--{name}", action="store_true", dest=f"preset_{name}",
                            help=f"preset: {', '.join(f'{k}={v}' for k, v in values.items())} (flags still win)")
    parser.add_argument("--config", metavar="FILE", help="YAML/JSON file of options (flags and overrides win over it)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. episodes=10")
    parser.set_defaults(_config_cls=cls, _presets=presets or {})


def config_from_args(args: argparse.Namespace, cls: type | None = None, base: dict[str, Any] | None = None) -> Any:
    """defaults < base < preset < --config file < flags < key=value overrides."""
    cls = cls or args._config_cls
    data: dict[str, Any] = dict(base or {})
    for name, values in args._presets.items():
        if getattr(args, f"preset_{name}", False):
            data.update(values)
    if getattr(args, "config", None):
        data.update(C.load_file(args.config))
    for f in dataclasses.fields(cls):
        if hasattr(args, f.name):
            data[f.name] = getattr(args, f.name)
    data = C.apply_overrides(data, list(getattr(args, "overrides", []) or []))
    return C.from_dict(cls, data)
