from dataclasses import dataclass
from typing import Literal

import pytest

from worldjepa.config import apply_overrides, from_dict, opt, to_dict
from worldjepa.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    lr: float = opt(1e-3, "learning rate")


@dataclass(frozen=True)
class Outer:
    name: str = opt("a", "a name")
    steps: int = opt(10, "steps")
    mode: Literal["x", "y"] = opt("x", "mode")
    flag: bool = opt(False, "a flag")
    inner: Inner = opt(Inner(), "nested")
    sizes: tuple[int, ...] = opt((1, 2), "sizes")


def test_round_trip_and_overrides():
    cfg = from_dict(Outer, apply_overrides(to_dict(Outer()), ["steps=5", "inner.lr=0.5", "flag=true", "sizes=[3,4]"]))
    assert cfg.steps == 5 and cfg.inner.lr == 0.5 and cfg.flag is True and cfg.sizes == (3, 4)
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_is_an_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="stepz.*did you mean steps"):
        from_dict(Outer, {"stepz": 3})
    with pytest.raises(ConfigError, match="inner.lrr"):
        from_dict(Outer, {"inner": {"lrr": 3}})


def test_bad_types_and_literals():
    with pytest.raises(ConfigError, match="steps"):
        from_dict(Outer, {"steps": "many"})
    with pytest.raises(ConfigError, match="mode"):
        from_dict(Outer, {"mode": "z"})
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["novalue"])
