"""The LeJEPA objective (Balestriero & LeCun, arXiv 2511.08544)."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from worldjepa.errors import WorldJepaError
from worldjepa.losses.sigreg import SIGReg

__all__ = ["lejepa_loss"]


def lejepa_loss(global_views: Tensor, all_views: Tensor, sigreg: SIGReg, lam: float = 0.05,
                dim_reduction: Literal["mean", "sum"] = "mean") -> dict[str, Tensor]:
    """LeJEPA loss: ``lam * mean_v SIGReg(z_v) + (1 - lam) * mean_n mean_v ||mu_n - z_nv||^2``.

    Args:
        global_views: (V_g, N, D) embeddings of the V_g global views of N samples.
        all_views: (V, N, D) embeddings of all views (global ones included, as in the
            reference), same N samples in the same order.
        sigreg: the :class:`SIGReg` module; applied to each view separately (the views
            share one step's directions) and averaged over views. One call = one step.
        lam: SIGReg weight lambda (0.05 in the paper, 0.02 in its minimal example).
        dim_reduction: ``"mean"`` (default) averages the squared error over D, like the
            reference code (``(centers - z).square().mean()``), which is what lambda was
            tuned with; ``"sum"`` gives the paper's literal squared norm (D times larger).

    Returns:
        ``{"loss", "sigreg", "pred"}``, 0-d tensors; ``mu_n`` = mean of sample n's global
        views (not detached: no stop-gradient in LeJEPA). Under DDP "sigreg" is the global
        value and "pred" is the local mean; with equal per-rank batches DDP's gradient
        averaging gives the single-process gradient of the whole batch.
    """
    if global_views.dim() != 3 or all_views.dim() != 3:
        raise WorldJepaError(f"lejepa_loss expects (V_g, N, D) and (V, N, D), got "
                             f"{tuple(global_views.shape)} and {tuple(all_views.shape)}")
    if global_views.shape[1:] != all_views.shape[1:]:
        raise WorldJepaError(f"global views {tuple(global_views.shape)} and all views "
                             f"{tuple(all_views.shape)} differ in (N, D)")
    if not 0.0 <= lam <= 1.0:
        raise WorldJepaError(f"lam must be in [0, 1], got {lam}")
    mu = global_views.mean(dim=0)  # (N, D) centre of each sample's global views
    sq = (mu - all_views).square()  # (V, N, D)
    if dim_reduction == "mean":
        pred = sq.mean()
    elif dim_reduction == "sum":
        pred = sq.sum(dim=-1).mean()
    else:
        raise WorldJepaError(f"dim_reduction must be 'mean' or 'sum', got {dim_reduction!r}")
    sig = sigreg(all_views)  # () mean over views and slices
    loss = lam * sig + (1.0 - lam) * pred
    return {"loss": loss, "sigreg": sig, "pred": pred}
