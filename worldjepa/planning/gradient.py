"""Gradient descent on the action sequence, through a differentiable cost."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import BasePlanner

_EDGE = 1.0 - 1e-4  # keeps atanh finite for warm starts sitting on a bound


class GradientPlanner(BasePlanner):
    """Adam on ``S`` restarts of the action sequence, batched as the sample axis.

    Update rule: actions are ``mid + half * tanh(u)`` (so they never leave the bounds); each
    iteration takes one Adam step with learning rate ``lr`` on ``u`` to lower the summed cost
    of all restarts (restarts are independent: the sum's gradient per restart is its own).
    Restart 0 starts at the warm start; the others at the warm start plus Gaussian noise of
    ``init_std`` half-ranges. ``cost_fn`` must be differentiable with respect to its input.

    Args:
        lr: Adam learning rate on the unconstrained variable ``u``.
        samples: number of restarts ``S`` (default 8).
        iterations: Adam steps (default 50).
        init_std: spread of the random restarts as a fraction of the half-range (default 0.5).
        **kwargs: the shared arguments of :class:`~worldjepa.planning.base.BasePlanner`.
    """

    _no_grad = False

    def __init__(self, *, lr: float = 0.1, samples: int = 8, iterations: int = 50,
                 init_std: float = 0.5, **kwargs: Any) -> None:
        kwargs.setdefault("elites", 1)
        super().__init__(samples=samples, iterations=iterations, init_std=init_std, **kwargs)
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = lr

    def _to_actions(self, u: Tensor) -> Tensor:
        mid, half = (self._high + self._low) / 2, (self._high - self._low) / 2  # (A,)
        return mid + half * torch.tanh(u)  # (..., A)

    def _init_state(self, mean: Tensor) -> dict[str, Any]:
        starts = self.gaussian(mean, self.initial_std(mean), self.samples)  # (B, S, H, A)
        starts[:, 0] = mean
        mid, half = (self._high + self._low) / 2, (self._high - self._low) / 2  # (A,)
        u = torch.atanh(((starts - mid) / half).clamp(-_EDGE, _EDGE))  # (B, S, H, A)
        u = u.detach().clone().requires_grad_(True)
        return {"u": u, "opt": torch.optim.Adam([u], lr=self.lr)}

    def _propose(self, state: dict[str, Any], it: int) -> Tensor:
        return self._to_actions(state["u"])  # (B, S, H, A)

    def _update(self, state: dict[str, Any], actions: Tensor, cost: Tensor,
                it: int) -> dict[str, Any]:
        if not cost.requires_grad:
            raise ValueError("GradientPlanner needs a cost_fn that is differentiable with "
                             "respect to its actions (the cost has no grad_fn)")
        state["opt"].zero_grad(set_to_none=True)
        cost.sum().backward()
        state["opt"].step()
        return state

    def _solution(self, state: dict[str, Any]) -> Tensor:
        return self._to_actions(state["u"]).detach()  # (B, S, H, A)
