"""What every planner shares: bounds, seeding, warm start, the cost check and the loop.

A planner subclass adds only its update rule through four hooks:

- ``_init_state(mean)``: the search state from the warm start ``mean`` ``(B, H, A)``;
- ``_propose(state, it)``: candidate action sequences ``(B, S, H, A)`` inside the bounds;
- ``_update(state, actions, cost, it)``: the next state from the candidates and their cost;
- ``_solution(state)``: the planner's own answer ``(B, H, A)`` (e.g. the CEM mean) or
  ``(B, S, H, A)`` answers, scored once more after the last update.

The loop in :meth:`BasePlanner.plan` scores the initial guess, runs the hooks
``iterations`` times, keeps the best candidate seen so far per batch row, scores the
planner's own answer once at the end and returns the lowest of all (so a warm start never
makes the answer worse than the guess itself). Its ``cost`` is therefore always the true cost of its
``actions``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from ..protocols import CostFn

logger = logging.getLogger(__name__)

Bound = float | Sequence[float] | Tensor


@dataclass
class PlanResult:
    """The answer of a planner.

    Attributes:
        actions: ``(B, H, A)`` best action sequence per batch row, inside the bounds.
        cost: ``(B,)`` its cost under the planner's ``cost_fn``.
        info: diagnostics; ``"cost_per_iter"`` is ``(iterations, B)``, the lowest cost
            sampled at each iteration.
    """

    actions: Tensor
    cost: Tensor
    info: dict[str, Any] = field(default_factory=dict)


class BasePlanner:
    """Shared machinery of all planners; subclasses implement the update rule.

    Args:
        low: lower action bound, a float or ``(A,)``; every returned action is >= it.
        high: upper action bound, a float or ``(A,)``; every returned action is <= it.
        samples: candidates ``S`` evaluated per iteration (restarts for gradient descent).
        iterations: optimisation iterations per :meth:`plan` call.
        elites: candidates kept to refit the distribution (sampling planners); default
            ``min(30, samples)``.
        init_std: initial standard deviation as a fraction of the half-range
            ``(high - low) / 2`` of the bounds (stable-worldmodel calls it ``var_scale``).
        seed: seed of the planner's own ``torch.Generator`` (one per device).
        horizon: ``H`` when :meth:`plan` gets no ``init``; otherwise taken from ``init``.
        action_dim: ``A`` when bounds are floats and :meth:`plan` gets no ``init``.
        check_cost: check the cost's shape and NaNs at every iteration.
    """

    _no_grad: bool = True  # sampling planners never need autograd

    def __init__(
        self,
        *,
        low: Bound = -1.0,
        high: Bound = 1.0,
        samples: int = 300,
        iterations: int = 30,
        elites: int | None = None,
        init_std: float = 1.0,
        seed: int = 0,
        horizon: int | None = None,
        action_dim: int | None = None,
        check_cost: bool = True,
    ) -> None:
        self.low = torch.as_tensor(low, dtype=torch.float32)
        self.high = torch.as_tensor(high, dtype=torch.float32)
        if self.low.ndim > 1 or self.high.ndim > 1:
            raise ValueError(f"bounds must be floats or (A,) tensors, got {tuple(self.low.shape)} "
                             f"and {tuple(self.high.shape)}")
        if not bool((self.low < self.high).all()):
            raise ValueError(f"every low bound must be below its high bound: low={self.low}, "
                             f"high={self.high}")
        if samples < 1 or iterations < 1:
            raise ValueError(f"samples and iterations must be >= 1, got {samples}, {iterations}")
        if elites is None:
            elites = min(30, samples)
        if not 1 <= elites <= samples:
            raise ValueError(f"elites must be in [1, samples={samples}], got {elites}")
        if init_std <= 0:
            raise ValueError(f"init_std must be > 0, got {init_std}")
        self.samples, self.iterations, self.elites = samples, iterations, elites
        self.init_std, self.seed = init_std, seed
        self.horizon, self.action_dim, self.check_cost = horizon, action_dim, check_cost
        self._generators: dict[torch.device, torch.Generator] = {}

    # ----------------------------------------------------------------- helpers for subclasses
    def generator(self, device: torch.device) -> torch.Generator:
        """The planner's generator on ``device``, seeded with ``seed`` at first use."""
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def reset_seed(self) -> None:
        """Forget the generators, so the next :meth:`plan` replays the same random draws."""
        self._generators.clear()

    def clip(self, actions: Tensor) -> Tensor:
        """Clamp ``(..., A)`` actions into ``[low, high]``."""
        return torch.clamp(actions, self._low, self._high)

    def gaussian(self, mean: Tensor, std: Tensor, n: int) -> Tensor:
        """``n`` clipped Gaussian samples around ``mean`` ``(B, H, A)``: ``(B, n, H, A)``."""
        noise = torch.randn((mean.shape[0], n, *mean.shape[1:]), generator=self._gen,
                            device=mean.device, dtype=mean.dtype)  # (B, n, H, A)
        return self.clip(mean.unsqueeze(1) + std.unsqueeze(1) * noise)  # (B, n, H, A)

    def select_elites(self, actions: Tensor, cost: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` lowest-cost candidates: ``(B, k, H, A)`` and their cost ``(B, k)``."""
        elite_cost, idx = torch.topk(cost, k, dim=1, largest=False, sorted=True)  # (B, k)
        idx = idx[:, :, None, None].expand(-1, -1, *actions.shape[2:])  # (B, k, H, A)
        return torch.gather(actions, 1, idx), elite_cost  # (B, k, H, A), (B, k)

    def initial_std(self, like: Tensor) -> Tensor:
        """``init_std`` times the bounds' half-range, broadcast to ``like`` ``(B, H, A)``."""
        return (self.init_std * (self._high - self._low) / 2).expand_as(like).clone()

    # ------------------------------------------------------------------ hooks for subclasses
    def _init_state(self, mean: Tensor) -> Any:
        raise NotImplementedError

    def _propose(self, state: Any, it: int) -> Tensor:
        raise NotImplementedError

    def _update(self, state: Any, actions: Tensor, cost: Tensor, it: int) -> Any:
        raise NotImplementedError

    def _solution(self, state: Any) -> Tensor | None:
        return None

    # ------------------------------------------------------------------------------ the loop
    def plan(self, cost_fn: CostFn, init: Tensor | None = None, *,
             batch: int | None = None) -> PlanResult:
        """Search the action sequence of lowest cost.

        Args:
            cost_fn: ``(B, S, H, A) -> (B, S)``, lower is better.
            init: ``(B, H, A)`` warm start (clipped into the bounds); ``None`` starts from
                the middle of the bounds with ``horizon`` steps and ``batch`` rows (default 1).
            batch: ``B`` when ``init`` is ``None``; must match ``init`` otherwise.

        Device and dtype follow ``init`` (CPU float32 without it).

        Returns:
            :class:`PlanResult` with ``actions`` ``(B, H, A)`` and ``cost`` ``(B,)``.
        """
        mean = self._initial_guess(init, batch)  # (B, H, A)
        self._gen = self.generator(mean.device)
        grad_mode = torch.inference_mode() if self._no_grad else contextlib.nullcontext()
        B = mean.shape[0]
        best_cost = torch.full((B,), float("inf"), device=mean.device)  # (B,)
        best = mean.detach().clone()  # (B, H, A)
        per_iter = []
        with grad_mode:
            with torch.no_grad():  # the warm start itself is a candidate: warm never hurts
                start = mean.unsqueeze(1)  # (B, 1, H, A)
                best, best_cost, start_cost = self._keep_best(best, best_cost, start,
                                                              self._evaluate(cost_fn, start))
                self._check_nan(start_cost)
            state = self._init_state(mean)
            for it in range(self.iterations):
                actions = self._propose(state, it)  # (B, S, H, A)
                cost = self._evaluate(cost_fn, actions)  # (B, S)
                best, best_cost, it_min = self._keep_best(best, best_cost, actions, cost)
                self._check_nan(it_min)
                per_iter.append(it_min)
                state = self._update(state, actions, cost, it)
            final = self._solution(state)  # (B, H, A), (B, S, H, A) or None
        if final is not None:
            with torch.no_grad():
                final = self.clip(final.detach())
                final = final.unsqueeze(1) if final.ndim == 3 else final  # (B, S', H, A)
                best, best_cost, final_cost = self._keep_best(best, best_cost, final,
                                                              self._evaluate(cost_fn, final))
                self._check_nan(final_cost)
        info = {"cost_per_iter": torch.stack(per_iter)}  # (iterations, B)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("plan/%s: B=%d H=%d cost %s", type(self).__name__, B, mean.shape[1],
                         best_cost.tolist())
        return PlanResult(actions=best, cost=best_cost, info=info)

    def _initial_guess(self, init: Tensor | None, batch: int | None) -> Tensor:
        if init is None:
            A = next((b.numel() for b in (self.low, self.high) if b.ndim == 1), self.action_dim)
            if self.horizon is None or A is None:
                raise ValueError("plan() without init needs horizon= (and action_dim= when the "
                                 "bounds are floats) at construction")
            self._bind_bounds(torch.device("cpu"), torch.float32, A)
            mid = (self._low + self._high) / 2  # (A,)
            return mid.expand(batch or 1, self.horizon, A).clone()  # (B, H, A)
        if init.ndim != 3:
            raise ValueError(f"init must be (B, H, A), got shape {tuple(init.shape)}")
        if batch is not None and batch != init.shape[0]:
            raise ValueError(f"batch={batch} does not match init's B={init.shape[0]}")
        if not init.is_floating_point():
            init = init.float()
        self._bind_bounds(init.device, init.dtype, init.shape[-1])
        return self.clip(init.detach())  # (B, H, A)

    def _bind_bounds(self, device: torch.device, dtype: torch.dtype, A: int) -> None:
        for name, b in (("low", self.low), ("high", self.high)):
            if b.ndim == 1 and b.numel() != A:
                raise ValueError(f"{name} has {b.numel()} entries but actions have A={A}")
        self._low = self.low.to(device, dtype).expand(A)  # (A,)
        self._high = self.high.to(device, dtype).expand(A)  # (A,)

    def _evaluate(self, cost_fn: CostFn, actions: Tensor) -> Tensor:
        cost = cost_fn(actions)  # (B, S)
        if self.check_cost:
            expected = tuple(actions.shape[:2])
            if not isinstance(cost, Tensor) or tuple(cost.shape) != expected:
                got = tuple(cost.shape) if isinstance(cost, Tensor) else type(cost).__name__
                raise ValueError(f"cost_fn must return (B, S) = {expected} for actions "
                                 f"(B, S, H, A) = {tuple(actions.shape)}, got {got}")
        return cost

    def _check_nan(self, cost_min: Tensor) -> None:
        # min propagates NaN, so checking the (B,) minima covers every candidate
        if self.check_cost and bool(torch.isnan(cost_min).any()):
            raise ValueError("cost_fn returned NaN for some candidates (B, S) of this batch")

    @staticmethod
    def _keep_best(best: Tensor, best_cost: Tensor, actions: Tensor,
                   cost: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c = cost.detach()  # (B, S)
        c_min, idx = c.min(dim=1)  # (B,)
        cand = actions.detach()[torch.arange(actions.shape[0], device=idx.device), idx]  # (B, H, A)
        better = c_min < best_cost  # (B,)
        best = torch.where(better[:, None, None], cand, best)  # (B, H, A)
        return best, torch.where(better, c_min, best_cost), c_min
