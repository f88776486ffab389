"""VICReg (Bardes, Ponce, LeCun 2022): variance, invariance, covariance; the baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldjepa.errors import WorldJepaError

__all__ = ["VICReg"]


def _variance(z: Tensor, eps: float) -> Tensor:
    """Hinge on the per-dimension std: mean_d relu(1 - sqrt(var_d + eps)). z (N, D) -> ()."""
    std = torch.sqrt(z.var(dim=0) + eps)  # (D,)
    return F.relu(1.0 - std).mean()


def _covariance(z: Tensor) -> Tensor:
    """Sum of squared off-diagonal covariances divided by D. z (N, D) -> ()."""
    n, d = z.shape
    zc = z - z.mean(dim=0)  # (N, D)
    cov = (zc.T @ zc) / (n - 1)  # (D, D)
    off = cov - torch.diag_embed(torch.diagonal(cov))  # (D, D) zero diagonal
    return off.square().sum() / d


class VICReg(nn.Module):
    """VICReg loss on two views, or variance + covariance regulariser on one.

    ``forward(z_a, z_b)`` with ``z_a``, ``z_b`` of shape (N, D) (embeddings of two views of
    the same N samples) returns ``{"loss", "invariance", "variance", "covariance"}`` (0-d
    tensors) with

        loss = sim_coeff * mean((z_a - z_b)^2)
             + std_coeff * (V(z_a) + V(z_b)) / 2 + cov_coeff * (C(z_a) + C(z_b))

    where ``V(z) = mean_d relu(1 - sqrt(var_d(z) + eps))`` and ``C(z)`` is the sum of
    squared off-diagonal covariances over ``D``. As a one-view regulariser (e.g. beside a
    world model's prediction loss, as PLDM does) call ``forward(z)``: the invariance term is
    0 and ``loss = std_coeff * V(z) + cov_coeff * C(z)``.
    """

    def __init__(self, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                 cov_coeff: float = 1.0, eps: float = 1e-4) -> None:
        super().__init__()
        self.sim_coeff, self.std_coeff, self.cov_coeff, self.eps = (
            sim_coeff, std_coeff, cov_coeff, eps)

    def forward(self, z_a: Tensor, z_b: Tensor | None = None) -> dict[str, Tensor]:
        views = [z_a] if z_b is None else [z_a, z_b]
        for z in views:
            if z.dim() != 2 or z.shape[0] < 2:
                raise WorldJepaError(f"VICReg expects (N, D) embeddings with N >= 2, "
                                     f"got {tuple(z.shape)}")
        if z_b is not None and z_b.shape != z_a.shape:
            raise WorldJepaError(f"VICReg views differ in shape: {tuple(z_a.shape)} vs "
                                 f"{tuple(z_b.shape)}")
        inv = F.mse_loss(z_a, z_b) if z_b is not None else z_a.new_zeros(())
        var = sum(_variance(z, self.eps) for z in views) / len(views)
        cov = sum(_covariance(z) for z in views)
        loss = self.sim_coeff * inv + self.std_coeff * var + self.cov_coeff * cov
        return {"loss": loss, "invariance": inv, "variance": var, "covariance": cov}

    def extra_repr(self) -> str:
        return f"sim_coeff={self.sim_coeff}, std_coeff={self.std_coeff}, cov_coeff={self.cov_coeff}"


class SequenceVICReg(VICReg):
    """VICReg's variance and covariance terms on world-model embeddings ``(B, T, D)`` taken
    together (``B * T`` samples), a 0-d tensor: PLDM's regulariser."""

    def forward(self, z: Tensor, z_b: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(z.reshape(-1, z.shape[-1]))["loss"]
