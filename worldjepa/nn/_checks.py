"""Shape checks and weight initialisation shared by the network parts."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from worldjepa.errors import WorldJepaError


class ShapeError(WorldJepaError, ValueError):
    """A tensor whose shape does not fit the module: the message gives expected vs got."""


def check_shape(name: str, x: torch.Tensor, expected: tuple[int | str, ...]) -> None:
    """Raise :class:`ShapeError` unless ``x`` has ``len(expected)`` axes matching ``expected``.

    Integers in ``expected`` must match exactly; strings (``"B"``, ``"T"``) match anything.
    """
    shape = tuple(x.shape)
    ok = len(shape) == len(expected) and all(
        isinstance(e, str) or e == s for e, s in zip(expected, shape)
    )
    if not ok:
        want = "(" + ", ".join(str(e) for e in expected) + ")"
        raise ShapeError(f"{name} must have shape {want}, got {shape}")


def check_same(what: str, got: int, expected: int) -> None:
    """Raise :class:`ShapeError` when two axes that must agree do not."""
    if got != expected:
        raise ShapeError(f"{what}: expected {expected}, got {got}")


def check_rollout(
    z_hist: torch.Tensor, a_hist: torch.Tensor, actions: torch.Tensor, dim: int, adim: int
) -> tuple[int, int, int, int]:
    """Validate ``rollout`` inputs (see the Predictor contract); return ``(B, Th, S, H)``."""
    check_shape("z_hist", z_hist, ("B", "Th", dim))
    b, th, _ = z_hist.shape
    if th < 1:
        raise ShapeError(f"z_hist needs at least one embedding, got shape {tuple(z_hist.shape)}")
    check_shape("a_hist", a_hist, (b, th - 1, adim))
    check_shape("actions", actions, (b, "S", "H", adim))
    if actions.shape[1] < 1 or actions.shape[2] < 1:
        raise ShapeError(f"actions needs S >= 1 and H >= 1, got shape {tuple(actions.shape)}")
    return b, th, actions.shape[1], actions.shape[2]


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal linears/convs (std ``std``, cut at 2 std), zero biases, unit norms."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def planned_state(build: Callable[[], nn.Module]) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of the module ``build()`` returns, built on the meta device: nothing
    is allocated, so a config asking for absurd sizes costs nothing to inspect."""
    with torch.device("meta"):
        module = build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def machine_bytes() -> int:
    """The machine's physical memory in bytes (0 when unknown)."""
    import os

    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def check_fits(nbytes: float, what: str) -> None:
    """Refuse, before allocating, ``what`` needing more than the machine's memory."""
    from worldjepa.utils import human_bytes

    total = machine_bytes()
    if total and nbytes > total:
        raise WorldJepaError(f"{what} would need {human_bytes(nbytes)}, more than this machine's "
                             f"{human_bytes(total)} of memory; use smaller sizes")


def check_trainable(build: Callable[[], nn.Module], what: str = "the model") -> None:
    """Refuse a model whose float32 weights, gradients and AdamW moments (4 copies) do not fit."""
    params = sum(math.prod(s) for s in planned_state(build).values())
    check_fits(16 * params, f"{what} ({params:,} values; weights, gradients and optimiser state)")


def check_weights(where: str, expected: dict[str, tuple[int, ...]], got: dict[str, tuple[int, ...]]) -> None:
    """Refuse weights that are missing, extra, or shaped otherwise than the config says."""
    from worldjepa.errors import CheckpointError

    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = [k for k in sorted(set(expected) & set(got)) if tuple(expected[k]) != tuple(got[k])]
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}"] if extra else []) + \
                ([f"{k} is {tuple(got[k])} in the file, {tuple(expected[k])} in its config" for k in wrong[:3]])
        raise CheckpointError(f"{where}: the weights do not fit the model its metadata describes ({'; '.join(parts)})")
