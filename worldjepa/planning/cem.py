"""Cross-entropy method: refit a Gaussian to the elites of each iteration."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import BasePlanner


class CEM(BasePlanner):
    """Gaussian CEM over action sequences (DINO-WM / LeWM: 300 samples, top 30, 30 iterations).

    Update rule, per batch row: sample ``S`` sequences from ``N(mean, std^2)`` (clipped into
    the bounds), keep the ``elites`` lowest-cost ones, set ``mean, std`` to their mean and
    standard deviation, blended with the previous values by ``momentum``.

    Args:
        momentum: weight of the previous ``mean``/``std`` in the update (0 = plain CEM).
        min_std: floor on ``std`` as a fraction of the half-range, so the search never
            freezes completely (0 = no floor).
        **kwargs: the shared arguments of :class:`~worldjepa.planning.base.BasePlanner`.
    """

    def __init__(self, *, momentum: float = 0.0, min_std: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if min_std < 0:
            raise ValueError(f"min_std must be >= 0, got {min_std}")
        self.momentum, self.min_std = momentum, min_std

    def _init_state(self, mean: Tensor) -> dict[str, Tensor]:
        return {"mean": mean, "std": self.initial_std(mean)}  # (B, H, A) each

    def _propose(self, state: dict[str, Tensor], it: int) -> Tensor:
        return self.gaussian(state["mean"], state["std"], self.samples)  # (B, S, H, A)

    def _refit(self, state: dict[str, Tensor], elites: Tensor) -> dict[str, Tensor]:
        """Blend ``mean``/``std`` towards the elites' ``(B, K, H, A)`` moments."""
        std, mean = torch.std_mean(elites, dim=1, correction=0)  # (B, H, A) each
        m = self.momentum
        if m > 0:
            mean = m * state["mean"] + (1 - m) * mean  # (B, H, A)
            std = m * state["std"] + (1 - m) * std  # (B, H, A)
        if self.min_std > 0:
            std = std.clamp_min(self.min_std * float((self.high - self.low).min()) / 2)
        return {**state, "mean": mean, "std": std}

    def _update(self, state: dict[str, Tensor], actions: Tensor, cost: Tensor,
                it: int) -> dict[str, Tensor]:
        elites, _ = self.select_elites(actions, cost, self.elites)  # (B, K, H, A)
        return self._refit(state, elites)

    def _solution(self, state: dict[str, Tensor]) -> Tensor:
        return state["mean"]  # (B, H, A)
