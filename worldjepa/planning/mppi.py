"""MPPI: move the mean to the softmax-weighted average of the samples."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import BasePlanner


class MPPI(BasePlanner):
    """Model-predictive path integral control over action sequences.

    Update rule, per batch row: sample ``S`` sequences ``mean + std * eps`` (clipped), weight
    each by ``softmax(-cost / temperature)`` over the samples and set the mean to the
    weighted average. ``std`` starts at ``noise_std`` and is multiplied by ``noise_decay``
    after every iteration (1 = the fixed noise of textbook MPPI; < 1 anneals it so that the
    mean can settle), or, with ``adapt_std``, refit to the weighted spread of the samples.
    ``temperature`` is in the units of the cost: smaller is greedier.

    Args:
        temperature: lambda of the softmax weights (> 0).
        noise_std: sampling std as a fraction of the half-range; ``None`` uses ``init_std``.
        noise_decay: factor in (0, 1] applied to ``std`` after each iteration.
        adapt_std: set ``std`` to the weighted standard deviation of the samples instead.
        **kwargs: the shared arguments of :class:`~worldjepa.planning.base.BasePlanner`
            (``elites`` is unused).
    """

    def __init__(self, *, temperature: float = 1.0, noise_std: float | None = None,
                 noise_decay: float = 1.0, adapt_std: bool = False, **kwargs: Any) -> None:
        if noise_std is not None:
            kwargs["init_std"] = noise_std
        kwargs.setdefault("elites", 1)
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 < noise_decay <= 1.0:
            raise ValueError(f"noise_decay must be in (0, 1], got {noise_decay}")
        self.temperature, self.adapt_std, self.noise_decay = temperature, adapt_std, noise_decay

    def _init_state(self, mean: Tensor) -> dict[str, Tensor]:
        return {"mean": mean, "std": self.initial_std(mean)}  # (B, H, A) each

    def _propose(self, state: dict[str, Tensor], it: int) -> Tensor:
        return self.gaussian(state["mean"], state["std"], self.samples)  # (B, S, H, A)

    def _update(self, state: dict[str, Tensor], actions: Tensor, cost: Tensor,
                it: int) -> dict[str, Tensor]:
        w = torch.softmax(-cost / self.temperature, dim=1)[:, :, None, None]  # (B, S, 1, 1)
        mean = (w * actions).sum(dim=1)  # (B, H, A)
        std = state["std"] * self.noise_decay  # (B, H, A)
        if self.adapt_std:
            var = (w * (actions - mean.unsqueeze(1)) ** 2).sum(dim=1)  # (B, H, A)
            std = var.sqrt().clamp_min(1e-6)
        return {"mean": mean, "std": std}

    def _solution(self, state: dict[str, Tensor]) -> Tensor:
        return state["mean"]  # (B, H, A)
