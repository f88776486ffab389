"""The one prediction error: how far predicted embeddings are from observed ones.

Training (the teacher-forced and open-loop terms), validation (error per horizon, and the
copy-last baseline), the agent's surprise and the physics benchmarks all call
:func:`prediction_error`, so "how wrong was the model" means the same thing everywhere.
The planner's latent cost uses it too, as the distance of imagined embeddings to the goal.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

Metric = Literal["mse", "l1"]


def prediction_error(pred: Tensor, target: Tensor, *, metric: Metric = "mse", normalize: bool = False,
                     reduction: Literal["none", "mean"] = "none") -> Tensor:
    """Error of predicted embeddings ``pred`` ``(..., D)`` against observed ``target`` (broadcastable).

    Args:
        metric: ``"mse"``: mean over ``D`` of the squared difference (the training loss's
            distance); ``"l1"``: mean absolute difference (V-JEPA 2's energy; the
            intuitive-physics study's surprise).
        normalize: layer-normalise both along ``D`` first (zero mean, unit variance per
            embedding, no learned scale), as the intuitive-physics study does, so that the
            error does not grow with the embedding's scale.
        reduction: ``"none"``: one error per embedding, shape ``(...)``; ``"mean"``: their
            mean, a 0-d tensor (equal to ``F.mse_loss`` / ``F.l1_loss`` of the two).
    """
    if pred.shape[-1] != target.shape[-1]:
        raise ValueError(f"prediction_error: pred has D={pred.shape[-1]}, target D={target.shape[-1]}")
    if metric not in ("mse", "l1"):
        raise ValueError(f"metric must be 'mse' or 'l1', got {metric!r}")
    if normalize:
        pred, target = F.layer_norm(pred, pred.shape[-1:]), F.layer_norm(target, target.shape[-1:])
    if reduction == "mean" and pred.shape == target.shape:  # one fused reduction, as the losses always were
        return F.mse_loss(pred, target) if metric == "mse" else F.l1_loss(pred, target)
    diff = pred - target  # (..., D)
    err = diff.square().mean(-1) if metric == "mse" else diff.abs().mean(-1)  # (...)
    return err.mean() if reduction == "mean" else err


__all__ = ["Metric", "prediction_error"]
