"""Receding-horizon control: plan, execute a few actions, plan again from a shifted guess."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Literal

import torch
from torch import Tensor

from ..protocols import CostFn, Planner

logger = logging.getLogger(__name__)


def _is_factory(fn: Callable[..., Any]) -> bool:
    """True when ``fn`` takes no required positional argument (a cost-function factory)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return not any(p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   for p in params)


class MPC:
    """Model-predictive control over ``B`` parallel environments.

    :meth:`act` returns one action per environment. When the buffer of committed actions is
    empty it plans ``horizon`` steps and commits the first ``replan_every`` of them; each call
    then pops one. With ``warm_start`` the next plan starts from the previous solution
    shifted by ``replan_every`` steps, its tail padded with the last planned action
    (``pad="last"``) or with the middle of the bounds (``pad="zero"``, zeros for symmetric
    bounds); without it every plan starts from the middle of the bounds.

    Args:
        planner: any object with ``plan(cost_fn, init) -> result`` (``.actions (B, H, A)``).
        horizon: ``H`` steps per plan.
        action_dim: ``A``.
        low, high: action bounds, floats or ``(A,)``; warm starts are clipped into them.
        replan_every: actions executed from each plan (1 = replan at every step).
        warm_start: start each plan from the previous one, shifted.
        batch: ``B`` parallel environments (also settable in :meth:`reset`).
        pad: how the shifted warm start is filled at its end: ``"last"`` or ``"zero"``.
    """

    def __init__(self, planner: Planner, horizon: int, action_dim: int,
                 low: float | Tensor = -1.0, high: float | Tensor = 1.0, replan_every: int = 1,
                 warm_start: bool = True, *, batch: int = 1,
                 pad: Literal["last", "zero"] = "last") -> None:
        if not 1 <= replan_every <= horizon:
            raise ValueError(f"replan_every must be in [1, horizon={horizon}], got {replan_every}")
        if pad not in ("last", "zero"):
            raise ValueError(f"pad must be 'last' or 'zero', got {pad!r}")
        self.planner, self.horizon, self.action_dim = planner, horizon, action_dim
        self.low = torch.as_tensor(low, dtype=torch.float32).expand(action_dim)  # (A,)
        self.high = torch.as_tensor(high, dtype=torch.float32).expand(action_dim)  # (A,)
        self.replan_every, self.warm_start, self.pad = replan_every, warm_start, pad
        self.batch = batch
        self.reset()

    def reset(self, batch: int | None = None) -> None:
        """Forget the committed actions and the previous plan (a new episode)."""
        if batch is not None:
            self.batch = batch
        self._buffer: Tensor | None = None  # (B, k, A) committed, not yet executed
        self._previous: Tensor | None = None  # (B, H, A) last plan
        self.last_result: Any = None  # the planner's last result, for diagnostics

    def _initial_guess(self) -> Tensor:
        mid = (self.low + self.high) / 2  # (A,)
        cold = mid.expand(self.batch, self.horizon, self.action_dim).clone()  # (B, H, A)
        if not self.warm_start or self._previous is None:
            return cold
        prev, k = self._previous, self.replan_every  # (B, H, A)
        tail = prev[:, -1:] if self.pad == "last" else mid.to(prev).expand(prev.shape[0], 1, -1)
        shifted = torch.cat([prev[:, k:], tail.expand(-1, k, -1)], dim=1)  # (B, H, A)
        low, high = self.low.to(prev), self.high.to(prev)
        return torch.maximum(torch.minimum(shifted, high), low)

    def act(self, cost: CostFn | Callable[[], CostFn]) -> Tensor:
        """The next action ``(B, A)`` for every environment.

        Args:
            cost: a cost function ``(B, S, H, A) -> (B, S)``, or a factory taking no argument
                that builds one; the factory is called only when a new plan is needed (for
                example to encode the current observation).
        """
        if self._buffer is None or self._buffer.shape[1] == 0:
            cost_fn = cost() if _is_factory(cost) else cost
            init = self._initial_guess()
            if self._previous is not None:
                init = init.to(self._previous.device)
            result = self.planner.plan(cost_fn, init)
            logger.debug("plan/mpc: replanned %d envs, horizon %d", init.shape[0], self.horizon)
            self.last_result = result
            self._previous = result.actions  # (B, H, A)
            self._buffer = result.actions[:, : self.replan_every]  # (B, k, A)
        action, self._buffer = self._buffer[:, 0], self._buffer[:, 1:]  # (B, A), (B, k-1, A)
        return action
