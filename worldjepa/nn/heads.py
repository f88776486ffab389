"""Small heads: the BatchNorm projector (LeJEPA/LeWM), the action encoder, the proprioception
encoder and the inverse-dynamics head."""

from __future__ import annotations

import numpy as np
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


class ProprioEncoder(nn.Module):
    """Proprioception (the agent's own state, e.g. a velocity) -> an embedding appended to the latent.

    ``spec`` names a dataset extra and an optional slice (``"state[2:4]"``). Values ``(..., P)``
    are standardised by the training data's mean and std (buffers, saved with the weights;
    :meth:`set_stats`), then mapped by a ``Linear(P, out_dim)``.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: str, dim: int, out_dim: int = 16):
        super().__init__()
        from worldjepa.configs import parse_proprio

        if dim < 1:
            raise ValueError(f"proprio {spec!r} needs dim >= 1 values per frame (filled from the dataset), got {dim}")
        self.spec, self.dim, self.out_dim = spec, dim, out_dim
        self.key, self.slice = parse_proprio(spec)
        self.linear = nn.Linear(dim, out_dim)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def values(self, extras: dict | None) -> np.ndarray:
        """This input's values ``extras[key][..., slice]`` ``(..., P)`` float32 from a dict of
        extras (a batch, an env step's ``info``); a clear error when they are missing."""
        from worldjepa.errors import WorldJepaError

        value = extras.get(self.key) if extras is not None else None
        if value is None:
            raise WorldJepaError(f"this model takes proprioception {self.spec!r}: pass the "
                                 f"'{self.key}' values along with the frames")
        value = np.asarray(value.detach().cpu() if torch.is_tensor(value) else value, np.float32)
        value = value[..., self.slice]  # (..., P): one vector per frame
        if value.ndim == 0 or value.shape[-1] != self.dim:
            raise WorldJepaError(f"proprio {self.spec!r}: expected {self.dim} values per frame, got shape {value.shape}")
        return value

    def set_stats(self, values: np.ndarray) -> None:
        """Standardise by the mean and std of ``values`` ``(N, P)``."""
        v = torch.as_tensor(np.asarray(values, np.float64).reshape(-1, self.dim))
        self.mean.copy_(v.mean(0).float())
        self.std.copy_(v.std(0).clamp_min(1e-6).float())

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """``(..., P)`` -> ``(..., out_dim)``."""
        return self.linear((p - self.mean) / self.std)


class InverseHead(nn.Sequential):
    """PLDM's inverse-dynamics head: ``z_t, z_t+1`` ``(..., D)`` each -> the action between them ``(..., A)``.

    ``Linear(2D, hidden) -> GELU -> Linear(hidden, A)``. It keeps the embedding informative
    about what the agent controls; planning never uses it.
    """

    def __init__(self, dim: int, action_dim: int, hidden: int = 256):
        super().__init__(nn.Linear(2 * dim, hidden), nn.GELU(), nn.Linear(hidden, action_dim))

    def forward(self, z: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(torch.cat([z, z_next], -1))  # (..., A)
