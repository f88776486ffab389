"""CEM for a coarse global search, then gradient descent to polish its best sequence."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..protocols import CostFn
from .base import PlanResult
from .cem import CEM
from .gradient import GradientPlanner


class CEMGD:
    """Run :class:`CEM`, then :class:`GradientPlanner` warm-started from CEM's best sequence.

    Update rule: CEM's (elites refit a Gaussian) for ``iterations``; then ``gd_iterations``
    Adam steps on ``gd_restarts`` copies of the best sequence (restart 0 exact, the others
    perturbed by ``gd_std`` half-ranges). The gradient stage keeps the best it sees, so the
    result is never worse than CEM's. ``cost_fn`` must be differentiable for the second stage.

    Args:
        gd_iterations: Adam steps of the refinement.
        gd_restarts: parallel refinements of the CEM answer.
        gd_std: perturbation of the extra restarts, as a fraction of the half-range.
        lr: Adam learning rate.
        **kwargs: CEM's arguments (``low``, ``high``, ``samples``, ``iterations``, ``elites``,
            ``init_std``, ``seed``, ``horizon``, ``momentum``, ...).
    """

    def __init__(self, *, gd_iterations: int = 30, gd_restarts: int = 4, gd_std: float = 0.1,
                 lr: float = 0.05, **kwargs: Any) -> None:
        self.cem = CEM(**kwargs)
        shared = {k: kwargs[k] for k in ("low", "high", "seed", "check_cost") if k in kwargs}
        self.gd = GradientPlanner(lr=lr, samples=gd_restarts, iterations=gd_iterations,
                                  init_std=gd_std, **shared)

    def reset_seed(self) -> None:
        """Replay the same random draws at the next :meth:`plan`."""
        self.cem.reset_seed()
        self.gd.reset_seed()

    def plan(self, cost_fn: CostFn, init: Tensor | None = None, *,
             batch: int | None = None) -> PlanResult:
        """As :meth:`BasePlanner.plan`; ``info`` holds both stages' ``cost_per_iter``."""
        coarse = self.cem.plan(cost_fn, init, batch=batch)
        fine = self.gd.plan(cost_fn, coarse.actions)
        better = fine.cost < coarse.cost  # (B,)
        actions = torch.where(better[:, None, None], fine.actions, coarse.actions)  # (B, H, A)
        info = {"cost_per_iter": torch.cat([coarse.info["cost_per_iter"],
                                            fine.info["cost_per_iter"]]),  # (I + I_gd, B)
                "cem_cost": coarse.cost, "gd_cost": fine.cost}
        return PlanResult(actions=actions, cost=torch.minimum(fine.cost, coarse.cost), info=info)
