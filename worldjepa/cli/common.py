"""Flags from config dataclasses: ``--field`` flags (nested sections too), ``--config FILE``
and ``key=value`` overrides.

Every field of a command's config is a flag named after it (or after its ``flag`` metadata);
the fields of a nested section (``TrainConfig.model``, ``ModelConfig.encoder``,
``EvalConfig.agent``) are flags too, in their own group of ``--help``. Old names of renamed
fields (``__aliases__``) stay accepted as extra flags. A section with ``shorthand`` metadata
also takes all its options in one flag (``--agent "horizon=8 samples=500"``).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Iterator

from .. import config as C

SEP = "__"  # argparse dest of a nested field: "model__encoder__dim"


def _leaves(cls: type, default: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Any, Any]]:
    """(path, field, type, default) of every CLI leaf of ``cls`` (nested sections flattened)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            continue
        tp, value = hints[f.name], getattr(default, f.name)
        if dataclasses.is_dataclass(tp):
            yield from _leaves(tp, value, (*path, f.name))
        else:
            yield (*path, f.name), f, tp, value


def _sections(cls: type, default: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, type]]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield (*path, f.name), f, hints[f.name]
            yield from _sections(hints[f.name], getattr(default, f.name), (*path, f.name))


def _flag(f: Any) -> str:
    return "--" + f.metadata.get("flag", f.name.replace("_", "-"))


def _aliases(cls: type, path: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Old flag names per leaf path (``"encoder.dim"`` -> ``["--embed-dim"]``), from ``__aliases__``."""
    out: dict[str, list[str]] = {}
    for old, new in getattr(cls, "__aliases__", {}).items():
        out.setdefault(".".join((*path, *new.split("."))), []).append("--" + old.replace("_", "-"))
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            for k, v in _aliases(hints[f.name], (*path, f.name)).items():
                out.setdefault(k, []).extend(v)
    return out


def add_config_args(parser: argparse.ArgumentParser, cls: type, presets: dict[str, dict[str, Any]] | None = None) -> None:
    """One flag per field of ``cls`` (help and default from the field), plus --config and overrides."""
    default = _defaults(cls)
    groups: dict[tuple[str, ...], Any] = {(): parser.add_argument_group(f"options ({cls.__name__})")}
    shorthands = []
    for path, f, tp in _sections(cls, default):
        where = ".".join(path)
        groups[path] = parser.add_argument_group(f"{where} options ({tp.__name__}; also {where}.KEY=VALUE)",
                                                 f.metadata.get("help"))
        if "shorthand" in f.metadata:
            shorthands.append((path, f, tp))
    aliases = _aliases(cls)
    used: set[str] = set()
    for path, f, tp, value in _leaves(cls, default):
        flags = [_flag(f)] + [a for a in aliases.get(".".join(path), []) if a != _flag(f)]
        flags = [x for x in flags if x not in used]
        if not flags:
            continue
        used.update(flags)
        shown = f.metadata.get("none", "the planner's") if value is None else repr(value)
        help_ = f"{f.metadata.get('help', '')} (default: {shown})".replace("%", "%%")
        group = groups[path[:-1]]
        dest = SEP.join(path)
        if tp is bool or tp == (bool | None):
            group.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=help_)
            continue
        choices = typing.get_args(tp) if typing.get_origin(tp) is typing.Literal else None
        group.add_argument(*flags, dest=dest, default=argparse.SUPPRESS, choices=choices,
                           metavar=None if choices else path[-1].upper(), help=help_)
    if "progress" in {f.name for f in dataclasses.fields(cls)}:
        groups[()].add_argument("--quiet", "-q", dest="progress", action="store_false", default=argparse.SUPPRESS,
                                help="the same as --no-progress")
    for path, f, tp in shorthands:
        groups[path].add_argument("--" + f.metadata["shorthand"], dest=SEP.join(path) + SEP + "_shorthand",
                                  default=argparse.SUPPRESS, metavar="'KEY=VALUE ...'",
                                  help=f"any {tp.__name__} options at once, space- or comma-separated (they win "
                                       f"over the flags above), e.g. 'horizon=8 samples=500 reduce=final'")
    for name, values in (presets or {}).items():
        parser.add_argument(f"--{name}", action="store_true", dest=f"preset_{name}",
                            help=f"preset: {_describe(values)} (flags still win)")
    parser.add_argument("--config", metavar="FILE", help="YAML/JSON file of options (flags and overrides win over it)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. episodes=10 or model.latent_dim=32")
    parser.set_defaults(_config_cls=cls, _presets=presets or {})


def _describe(values: dict[str, Any], prefix: str = "") -> str:
    return ", ".join(_describe(v, f"{prefix}{k}.") if isinstance(v, dict) else f"{prefix}{k}={v}"
                     for k, v in values.items())


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        data = data.setdefault(p, {})
    data[path[-1]] = value


def config_from_args(args: argparse.Namespace, cls: type | None = None, base: dict[str, Any] | None = None) -> Any:
    """defaults < base < preset < --config file < flags < shorthands (--agent) < key=value overrides."""
    cls = cls or args._config_cls
    data = C.normalize(cls, base or {})
    for name, values in args._presets.items():
        if getattr(args, f"preset_{name}", False):
            data = C.deep_merge(data, C.normalize(cls, values))
    if getattr(args, "config", None):
        data = C.deep_merge(data, C.normalize(cls, options_file(args.config, cls)))
    flags: dict[str, Any] = {}
    shorthand: dict[str, Any] = {}
    for dest, value in vars(args).items():
        path = tuple(dest.split(SEP))
        if path[-1] == "_shorthand":
            _set(shorthand, path[:-1], value)
        elif dest in _leaf_dests(cls):
            _set(flags, path, value)
    data = C.deep_merge(data, C.normalize(cls, flags))
    data = C.deep_merge(data, C.normalize(cls, shorthand))
    overrides = C.apply_overrides({}, list(getattr(args, "overrides", []) or []))
    data = C.deep_merge(data, C.normalize(cls, overrides))
    return C.from_dict(cls, data)


RUN_KINDS = {"world_model": ("train", "TrainConfig"), "lejepa": ("pretrain", "PretrainConfig")}


def options_file(path: str, cls: type) -> dict[str, Any]:
    """The options in a YAML/JSON file; a run's ``config.json`` (a checkpoint's metadata) gives the
    options its run was made with, less ``resume`` (each launch says whether it continues a run)."""
    from ..errors import ConfigError

    data = C.load_file(path)
    if data.get("format") != "worldjepa-checkpoint":
        return data
    command, name = RUN_KINDS.get(data.get("kind", ""), ("?", "?"))
    if name != cls.__name__ or not isinstance(data.get("config"), dict):
        raise ConfigError(f"{path} is the config.json of a `worldjepa {command}` run (kind {data.get('kind')!r}); "
                          f"it gives the options of `worldjepa {command} --config {path}`")
    return {k: v for k, v in data["config"].items() if k != "resume"}


def _defaults(cls: type) -> Any:
    """An instance holding the field defaults, without ``__post_init__`` (EvalConfig's needs --data)."""
    default = cls.__new__(cls)
    for f in dataclasses.fields(cls):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        object.__setattr__(default, f.name, value)
    return default


def _leaf_dests(cls: type) -> set[str]:
    return {SEP.join(path) for path, *_ in _leaves(cls, _defaults(cls))}
