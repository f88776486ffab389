"""Configuration: frozen dataclasses, YAML files and ``key=value`` overrides.

Every command's options are one frozen dataclass whose fields carry their help text in
``metadata["help"]``. The CLI builds its flags from those fields, so ``--help``, YAML files,
``key=value`` overrides and the JSON saved beside every artefact all speak the same names.
Unknown keys are errors, never silently dropped. A config class may rename a key and keep
reading the old one: ``__aliases__ = {"old_name": "new.dotted.path"}`` (old YAML files, old
checkpoints), and a nested section may accept a string (``from_str``, e.g. ``encoder: cnn``).
The dataclasses themselves live in :mod:`worldjepa.configs`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

from .errors import ConfigError

T = TypeVar("T")
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["float32", "bf16"]


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A dataclass field with a default and its help text (shown by ``--help``).

    Extra keywords go to the field's metadata: ``flag="planner-seed"`` names its CLI flag
    (default: the field name), ``cli=False`` keeps it off the command line."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return dataclasses.field(default=default, metadata={"help": help, **kw})


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (possibly nested) config dataclass."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, Path):
            v = str(v)
        out[f.name] = v
    return out


def _resolve_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} is not a valid {tp}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        seq = [_coerce(v, item, where) for v in value]
        return tuple(seq) if origin is tuple else seq
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "from_str"):
            value = tp.from_str(value)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, prefix=f"{where}.")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        return _number(value, tp, where)
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _number(value: Any, tp: type, where: str) -> Any:
    """An int or float from a number or a numeric string; bools and fractional ints refused."""
    kind = "an integer" if tp is int else "a number"
    original = value
    if not isinstance(value, bool):
        if isinstance(value, str):
            try:
                value = float(value) if tp is float else int(value)
            except ValueError:
                value = None
        if isinstance(value, int) or (isinstance(value, float) and (tp is float or value.is_integer())):
            return tp(value)
    raise ConfigError(f"{where}: expected {kind}, got {original!r}")


def _apply_aliases(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the keys ``cls.__aliases__`` renames moved to their new (dotted) place."""
    aliases = getattr(cls, "__aliases__", {})
    out = dict(data)
    for old, new in aliases.items():
        if old not in out:
            continue
        value = out.pop(old)
        parts, node, tp = new.split("."), out, cls
        for p in parts[:-1]:
            tp = _resolve_types(tp)[p]
            cur = node.get(p)
            if cur is None:
                cur = {}
            elif dataclasses.is_dataclass(cur):
                cur = to_dict(cur)
            elif isinstance(cur, str) and hasattr(tp, "from_str"):
                cur = tp.from_str(cur)
            if not isinstance(cur, Mapping):
                raise ConfigError(f"{p}: expected a mapping, got {cur!r}")
            node[p] = dict(cur)
            node = node[p]
        if parts[-1] in node and node[parts[-1]] != value:
            raise ConfigError(f"{old} (an old name of {new}) and {new} are both given, with different values")
        node[parts[-1]] = value
    return out


def normalize(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` for ``cls`` with old key names moved to their new place and string forms of
    nested sections expanded, at every level: two normalised mappings merge key by key."""
    out = _apply_aliases(cls, data)
    hints = _resolve_types(cls)
    for name, value in out.items():
        tp = hints.get(name)
        if tp is None or not dataclasses.is_dataclass(tp):
            continue
        if isinstance(value, str) and hasattr(tp, "from_str"):
            value = tp.from_str(value)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        if isinstance(value, Mapping):
            out[name] = normalize(tp, value)
    return out


def deep_merge(base: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``new``, nested mappings merged rather than replaced."""
    out = dict(base)
    for k, v in new.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build ``cls`` from a mapping; unknown keys and ill-typed values raise ConfigError."""
    data = _apply_aliases(cls, data)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        import difflib

        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, names, n=1)
            hints.append(f"{prefix}{k}" + (f" (did you mean {prefix}{close[0]}?)" if close else ""))
        raise ConfigError(f"unknown config key(s) for {cls.__name__}: {', '.join(hints)}")
    hints = _resolve_types(cls)
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING}  # type: ignore[misc]
    kwargs = {}
    for k, v in data.items():
        tp = hints[k]
        if dataclasses.is_dataclass(tp) and dataclasses.is_dataclass(defaults.get(k)) and \
                (isinstance(v, Mapping) or (isinstance(v, str) and hasattr(tp, "from_str"))):
            # a partial section is laid over the field's own default (PretrainConfig's encoder has its own)
            v = deep_merge(normalize(tp, to_dict(defaults[k])), normalize(tp, tp.from_str(v) if isinstance(v, str) else v))
        kwargs[k] = _coerce(v, tp, f"{prefix}{k}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None


MAX_CONFIG_BYTES = 2**20  # a config file is a page of options, never megabytes


def safe_yaml(text: str) -> Any:
    """YAML (or JSON) text as Python data, with the safe loader and no aliases: ``*name`` is
    refused, so a small file cannot expand into gigabytes ("billion laughs"); too deep a nesting
    is refused too. Raises ``yaml.YAMLError``."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed in "
                                                  "worldjepa configs", event.start_mark)
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliases)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None


def parse_value(text: str) -> Any:
    """A ``key=value`` right-hand side parsed as YAML (numbers, bools, lists), else a string."""
    import yaml

    try:
        return safe_yaml(text)
    except yaml.YAMLError:
        return text


def parse_agent_options(text: str, flag: str = "--agent") -> dict[str, Any]:
    """``"horizon=8 samples=500,reduce=final"`` -> ``{"horizon": 8, "samples": 500, "reduce": "final"}``
    (space- or comma-separated ``key=value`` items; values read as JSON when they parse).
    ``flag`` names the option in the error."""
    out: dict[str, Any] = {}
    for item in text.replace(",", " ").split():
        key, eq, val = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"{flag} takes key=value items, got {item!r}")
        try:
            out[key] = json.loads(val)
        except ValueError:
            out[key] = val
    return out


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to a nested dict (a new dict is returned)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        parts = key.strip().replace("-", "_").split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = parse_value(text)
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {p} is {p.stat().st_size} bytes; configs are limited to {MAX_CONFIG_BYTES}")
    try:
        data = safe_yaml(p.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {p} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys to values")
    return data


def save(cfg: Any, path: str | Path) -> None:
    """Write a config as YAML (if the suffix is .yaml/.yml) or JSON, atomically."""
    from .atomic import atomic_write_text

    p = Path(path)
    d = to_dict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)
    if p.suffix in (".yaml", ".yml"):
        import yaml

        atomic_write_text(p, yaml.safe_dump(d, sort_keys=False))
    else:
        atomic_write_text(p, json.dumps(d, indent=2) + "\n")


def section_from_str(cfg: Any, name: str, cls: type) -> None:
    """Let a nested section be given as its string shorthand in Python too
    (``EvalConfig(agent="horizon=8 samples=500")``)."""
    value = getattr(cfg, name)
    if isinstance(value, str):
        default = to_dict(type(cfg).__dataclass_fields__[name].default)  # laid under it, as from_dict does
        object.__setattr__(cfg, name, from_dict(cls, deep_merge(normalize(cls, default), cls.from_str(value))))


def at_least(cfg: Any, minimum: float, *names: str) -> None:
    """Refuse any of the fields ``names`` of ``cfg`` below ``minimum`` (or NaN, or infinite), naming it."""
    for name in names:
        value = getattr(cfg, name)
        if not value >= minimum or value == math.inf:
            raise ConfigError(f"{name} must be >= {minimum:g} (and finite), got {value}")


def in_range(cfg: Any, name: str, lo: float, hi: float = math.inf, lo_open: bool = False,
             hi_open: bool = False) -> None:
    """Refuse field ``name`` of ``cfg`` outside ``[lo, hi]`` (``(`` / ``)`` where open), NaN or
    infinite; ``None`` (an option left to its default) passes."""
    value = getattr(cfg, name)
    if value is None:
        return
    ok = (value > lo if lo_open else value >= lo) and (value < hi if hi_open else value <= hi) \
        and value not in (math.inf, -math.inf)
    if not ok:
        span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ConfigError(f"{name} must be in {span}, got {value}")


def seeds(cfg: Any, *names: str) -> None:
    """Seeds are 32-bit: refuse any of ``names`` outside [0, 2^32) (2^32 would alias seed 0)."""
    for name in names:
        in_range(cfg, name, 0, 2**32, hi_open=True)
