"""Small MLP heads: the BatchNorm projector (LeJEPA/LeWM) and the action encoder."""

from __future__ import annotations

import torch
from torch import nn

from worldjepa.nn._checks import check_shape, init_weights


class Projector(nn.Module):
    """MLP with BatchNorm1d + GELU between layers: embedding -> space the regulariser shapes.

    ``layers`` linear layers; every hidden layer is ``Linear -> BatchNorm1d -> GELU`` and the
    last one is a plain ``Linear(hidden_dim, out_dim)``. ``layers=0`` projects nothing: each
    dimension is only standardised (``BatchNorm1d`` without parameters: batch statistics in
    training, running ones in eval), so that the latent's image part and a proprioceptive
    part appended to it weigh alike in the planner's cost; ``out_dim`` must equal ``in_dim``.
    Accepts ``(N, in_dim)`` or ``(B, T, in_dim)``; a sequence is flattened to
    ``(B * T, in_dim)`` first, so in training mode the BatchNorm statistics span all ``B * T``
    embeddings of the batch (not each time step separately). Under DDP, convert with
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` so they span every rank.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 64, layers: int = 2):
        super().__init__()
        if layers < 0 or (layers == 0 and out_dim != in_dim):
            raise ValueError(f"Projector needs layers >= 1, or layers = 0 (standardisation only) with "
                             f"out_dim = in_dim; got layers={layers}, in_dim={in_dim}, out_dim={out_dim}")
        self.in_dim, self.out_dim, self.layers = in_dim, out_dim, layers
        if layers == 0:  # no projection: each dimension standardised by its running statistics
            self.net: nn.Module = nn.BatchNorm1d(in_dim, affine=False)
            return
        mods: list[nn.Module] = []
        width = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.GELU()]
            width = hidden_dim
        mods.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*mods)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_dim)`` -> ``(N, out_dim)``, or ``(B, T, in_dim)`` -> ``(B, T, out_dim)``."""
        if x.dim() == 3:
            check_shape("projector input", x, ("B", "T", self.in_dim))
            b, t, _ = x.shape
            return self.net(x.reshape(b * t, -1)).view(b, t, self.out_dim)  # (B, T, out_dim)
        check_shape("projector input", x, ("N", self.in_dim))
        return self.net(x)  # (N, out_dim)


class ActionEncoder(nn.Module):
    """Embeds actions for conditioning: ``(..., action_dim)`` -> ``(..., out_dim)``.

    ``Linear -> SiLU -> Linear``; per-sample (no batch statistics), so it can be applied to
    any leading shape, e.g. the planner's ``(B, S, H, A)`` candidates at once.
    """

    def __init__(self, action_dim: int, out_dim: int, hidden_dim: int | None = None):
        super().__init__()
        hidden_dim = hidden_dim or out_dim
        self.action_dim, self.out_dim = action_dim, out_dim
        self.net = nn.Sequential(
            nn.Linear(action_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, out_dim)
        )
        init_weights(self)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """``(..., action_dim)`` -> ``(..., out_dim)``."""
        if a.dim() == 0 or a.shape[-1] != self.action_dim:
            check_shape("actions", a, ("...", self.action_dim))
        return self.net(a)  # (..., out_dim)
