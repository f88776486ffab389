"""Shape checks and weight initialisation shared by the network parts."""

from __future__ import annotations

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
