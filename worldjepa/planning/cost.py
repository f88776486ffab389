"""Latent cost: how far imagined embeddings are from the goal embedding.

:func:`latent_cost` scores predicted embeddings; :class:`LatentCost` turns a world model's
dynamics, the observed history, a goal embedding and the cost's weights into one
:class:`~worldjepa.protocols.CostFn` a planner calls; :class:`MeanCost` averages several (an
ensemble).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
from torch import Tensor

from ..losses.prediction import Metric, prediction_error
from ..protocols import CostFn, Dynamics

Reduce = Literal["final", "sum", "mean_path"]


def latent_cost(pred: Tensor, goal: Tensor, metric: Metric = "mse", reduce: Reduce = "sum",
                path_weights: Tensor | None = None) -> Tensor:
    """Distance of predicted embeddings to the goal, one number per candidate.

    Args:
        pred: ``(B, S, H, D)`` predicted embeddings after each of the ``H`` actions.
        goal: ``(B, D)`` goal embedding, or ``(B, H, D)`` one goal per step.
        metric: ``"mse"`` (mean squared difference over D) or ``"l1"`` (mean absolute).
        reduce: over the horizon: ``"sum"`` (default) adds every step's distance,
            ``"final"`` keeps the last step only, ``"mean_path"`` averages the steps.
            The path cost is the default because many sequences reach the same endpoint:
            on TwoRoom the final-step cost left MPC at 0% success against 98% with the sum
            (see ANCHORS.md), since it does not say which first action gets there soonest.
        path_weights: optional ``(H,)`` weights of the steps for ``"sum"``/``"mean_path"``.

    Returns:
        ``(B, S)`` cost, lower is better.
    """
    if pred.ndim != 4:
        raise ValueError(f"pred must be (B, S, H, D), got shape {tuple(pred.shape)}")
    B, S, H, D = pred.shape
    if goal.shape == (B, D):
        goal = goal[:, None, None, :]  # (B, 1, 1, D)
    elif goal.shape == (B, H, D):
        goal = goal[:, None, :, :]  # (B, 1, H, D)
    else:
        raise ValueError(f"goal must be (B, D) = {(B, D)} or (B, H, D) = {(B, H, D)}, "
                         f"got {tuple(goal.shape)}")
    dist = prediction_error(pred, goal, metric=metric)  # (B, S, H)
    if reduce == "final":
        if path_weights is not None:
            raise ValueError("path_weights only apply to reduce='sum' or 'mean_path'")
        return dist[..., -1]  # (B, S)
    if reduce not in ("sum", "mean_path"):
        raise ValueError(f"reduce must be 'final', 'sum' or 'mean_path', got {reduce!r}")
    if path_weights is not None:
        if path_weights.shape != (H,):
            raise ValueError(f"path_weights must be (H,) = ({H},), got {tuple(path_weights.shape)}")
        dist = dist * path_weights.to(dist)  # (B, S, H)
        return dist.sum(-1) if reduce == "sum" else dist.sum(-1) / path_weights.sum()
    return dist.sum(-1) if reduce == "sum" else dist.mean(-1)  # (B, S)


def make_latent_cost(rollout: Callable[[Tensor], Tensor], goal: Tensor, *,
                     metric: Metric = "mse", reduce: Reduce = "sum",
                     path_weights: Tensor | None = None) -> CostFn:
    """A :class:`~worldjepa.protocols.CostFn` from a latent rollout and a goal embedding.

    Args:
        rollout: ``actions (B, S, H, A) -> (B, S, H, D)`` predicted embeddings.
        goal: ``(B, D)`` or ``(B, H, D)``.
        metric, reduce, path_weights: as in :func:`latent_cost`.
    """
    def cost_fn(actions: Tensor) -> Tensor:
        return latent_cost(rollout(actions), goal, metric, reduce, path_weights)  # (B, S)

    return cost_fn


class LatentCost:
    """The cost of candidate macro-action sequences for one world model: ``(B, S, H, A) -> (B, S)``.

    Args:
        dynamics: a :class:`~worldjepa.protocols.Dynamics` (a world model's ``rollout``).
        goal: ``(B, D)`` goal embedding (or ``(B, H, D)``, one per step).
        z_hist: ``(B, Th, D)`` observed embeddings, oldest first.
        a_hist: ``(B, Th - 1, A)`` macro-actions executed between them.
        metric, reduce, path_weights: as in :func:`latent_cost`.
        scale: optional ``(D,)`` per-dimension scale applied to imagined and goal embeddings
            alike (a part of the latent weighted ``w`` under MSE gets ``sqrt(w)``).
        precision: ``"float32"``, or ``"bf16"``: the rollout runs under bfloat16 autocast, and
            its embeddings are cast back to float32 before the distances, so that the costs
            the planner ranks keep float32's resolution.
    Candidates are moved to the history's device and the cost comes back on theirs.
    """

    def __init__(self, dynamics: Dynamics, goal: Tensor, z_hist: Tensor, a_hist: Tensor, *,
                 metric: Metric = "mse", reduce: Reduce = "sum", path_weights: Tensor | None = None,
                 scale: Tensor | None = None, precision: str = "float32") -> None:
        self.dynamics, self.z_hist, self.a_hist, self.scale = dynamics, z_hist, a_hist, scale
        self.goal = goal if scale is None else goal * scale
        self.metric, self.reduce, self.path_weights, self.precision = metric, reduce, path_weights, precision

    def imagine(self, actions: Tensor) -> Tensor:
        """``(B, S, H, A)`` -> the (scaled) embeddings they lead to ``(B, S, H, D)``, float32."""
        from ..utils import autocast

        with autocast(self.z_hist.device, self.precision):
            pred = self.dynamics.rollout(self.z_hist, self.a_hist, actions.to(self.z_hist.device)).float()
        return pred if self.scale is None else pred * self.scale

    def __call__(self, actions: Tensor) -> Tensor:
        cost = latent_cost(self.imagine(actions), self.goal, self.metric, self.reduce, self.path_weights)
        return cost.to(actions.device)  # (B, S)


class MeanCost:
    """The mean of several costs of the same candidates (an ensemble of world models), plus
    ``disagreement`` times their standard deviation: a candidate the members judge differently
    is one whose outcome the models are unsure of (pessimism where they disagree, as in
    PETS-style ensembles)."""

    def __init__(self, costs: Sequence[CostFn], disagreement: float = 0.0) -> None:
        self.costs, self.disagreement = list(costs), float(disagreement)

    def __call__(self, actions: Tensor) -> Tensor:
        if len(self.costs) == 1:
            return self.costs[0](actions)
        each = torch.stack([c(actions) for c in self.costs])  # (M, B, S)
        return each.mean(0) + self.disagreement * each.std(0) if self.disagreement else each.mean(0)


__all__ = ["LatentCost", "MeanCost", "latent_cost", "make_latent_cost"]
