"""Latent cost: how far imagined embeddings are from the goal embedding."""

from __future__ import annotations

from typing import Callable, Literal

from torch import Tensor

from ..protocols import CostFn

Metric = Literal["mse", "l1"]
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
    diff = pred - goal  # (B, S, H, D)
    if metric == "mse":
        dist = diff.square().mean(dim=-1)  # (B, S, H)
    elif metric == "l1":
        dist = diff.abs().mean(dim=-1)  # (B, S, H)
    else:
        raise ValueError(f"metric must be 'mse' or 'l1', got {metric!r}")
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


__all__ = ["latent_cost", "make_latent_cost"]
