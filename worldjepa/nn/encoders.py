"""Encoders (perception): frames ``(B, 3, H, W)`` float in [0, 1] -> embeddings ``(B, out_dim)``.

``CNNEncoder`` is the CPU default (a 4-layer strided CNN); ``ViTTiny`` is the LeWM-style
option. Both map [0, 1] pixels to [-1, 1] internally.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worldjepa.errors import ConfigError, WorldJepaError
from worldjepa.nn._checks import check_shape, init_weights

if TYPE_CHECKING:
    from worldjepa.configs import EncoderConfig


class CNNEncoder(nn.Module):
    """Strided CNN: ``Conv(4x4, stride 2) -> GroupNorm -> GELU`` per entry of ``channels``,
    then flatten a ``grid x grid`` map and a ``Linear`` to ``out_dim``.

    Each conv halves the side; ``grid = size / 2**len(channels)`` (at least 1) is computed at
    construction, so ``size`` must be the frame side (32..128 tested; 64 -> 4x4 map). The
    flatten keeps *where* things are, which global pooling would average away.
    GroupNorm keeps samples independent (no batch statistics in the encoder).

    With ``keypoints = K > 0`` the last ``2K`` outputs are spatial-softmax keypoints (Levine et
    al., 2016): a 1x1 conv maps the map after the second conv (side ``size / 4``) to ``K``
    heatmaps, and each heatmap's expected ``(x, y)`` in [-1, 1] is an output. Those coordinates
    move in proportion to what they track, so distances between embeddings keep growing with
    how far an object moved, where the flattened map's features stop changing once the object
    leaves its old cells. The first ``out_dim - 2K`` outputs are the flatten path's.
    """

    def __init__(
        self, size: int = 64, channels: tuple[int, ...] = (32, 64, 128, 256), out_dim: int = 256,
        keypoints: int = 0,
    ):
        super().__init__()
        if size < 2 ** len(channels):
            raise ValueError(f"size {size} too small for {len(channels)} stride-2 layers")
        if keypoints < 0 or 2 * keypoints >= out_dim or (keypoints and len(channels) < 2):
            raise ValueError(f"keypoints must be in [0, out_dim / 2) with >= 2 conv layers, got {keypoints} "
                             f"(out_dim {out_dim}, {len(channels)} layers)")
        self.size, self.out_dim, self.keypoints = size, out_dim, keypoints
        layers: list[nn.Module] = []
        c_in, side = 3, size
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), _groupnorm(c), nn.GELU()]
            c_in, side = c, side // 2
        self.convs = nn.Sequential(*layers)
        self.grid = side
        self.fc = nn.Linear(c_in * side * side, out_dim - 2 * keypoints)
        init_weights(self.fc)
        if keypoints:
            kp_side = size // 4
            self.heatmaps = nn.Conv2d(channels[1], keypoints, 1)
            # softmax temperature 0.05 at the start: with 1, the heatmaps' logits (~0.3 apart) give a
            # near-uniform softmax and coordinates of std ~0.005; at 0.05 their spread (~0.3 on
            # Push-T frames) is that of the other outputs, so what follows them can learn from them
            self.log_temperature = nn.Parameter(torch.tensor(math.log(0.05)))
            ramp = torch.linspace(-1.0, 1.0, kp_side)
            self.register_buffer("kp_x", ramp.repeat(kp_side), persistent=False)  # (side*side,) x of each cell
            self.register_buffer("kp_y", ramp.repeat_interleave(kp_side), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 3, size, size)`` in [0, 1] -> ``(B, out_dim)``."""
        check_shape("frames", frames, ("B", 3, self.size, self.size))
        x = frames * 2 - 1
        if not self.keypoints:
            return self.fc(self.convs(x).flatten(1))  # (B, out_dim)
        mid = self.convs[:6](x)  # (B, C1, size/4, size/4): after the second conv block
        out = self.fc(self.convs[6:](mid).flatten(1))  # (B, out_dim - 2K)
        attn = (self.heatmaps(mid).flatten(2) / self.log_temperature.exp()).softmax(-1)  # (B, K, side*side)
        kp = torch.cat([attn @ self.kp_x, attn @ self.kp_y], dim=-1)  # (B, 2K): expected x's, then y's
        return torch.cat([out, kp], dim=-1)


def _groupnorm(c: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups that divide ``c``."""
    groups = max(g for g in (1, 2, 4, 8) if c % g == 0)
    return nn.GroupNorm(groups, c)


class _ViTBlock(nn.Module):
    """Pre-norm transformer block (bidirectional attention)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, dim)`` -> ``(B, N, dim)``."""
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads)  # (B,N,3,h,hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, h, N, hd) each
        att = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, hd)
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, d))  # (B, N, dim)
        return x + self.mlp(self.norm2(x))  # (B, N, dim)


class ViTTiny(nn.Module):
    """Vision transformer (ViT-tiny by default: 12 blocks, width 192, 3 heads; ~5.5M params).

    Patches of ``patch x patch`` pixels plus a CLS token with learned positions; the output is
    the final-LayerNorm CLS token (``pool="cls"``) or the mean of the patch tokens
    (``pool="mean"``), then a ``Linear`` to ``out_dim`` (identity when ``out_dim == dim``).
    """

    def __init__(
        self,
        size: int = 64,
        patch: int = 8,
        dim: int = 192,
        depth: int = 12,
        heads: int = 3,
        out_dim: int = 192,
        mlp_ratio: float = 4.0,
        pool: str = "cls",
    ):
        super().__init__()
        if size % patch:
            raise ValueError(f"size {size} is not a multiple of patch {patch}")
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        self.size, self.out_dim, self.pool = size, out_dim, pool
        n = (size // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.Sequential(*(_ViTBlock(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, out_dim) if out_dim != dim else nn.Identity()
        init_weights(self)
        nn.init.trunc_normal_(self.pos, std=0.02, a=-0.04, b=0.04)
        nn.init.trunc_normal_(self.cls, std=0.02, a=-0.04, b=0.04)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 3, size, size)`` in [0, 1] -> ``(B, out_dim)``."""
        check_shape("frames", frames, ("B", 3, self.size, self.size))
        x = self.patch_embed(frames * 2 - 1).flatten(2).transpose(1, 2)  # (B, N, dim)
        x = torch.cat((self.cls.expand(x.shape[0], -1, -1), x), dim=1)  # (B, N+1, dim)
        x = self.norm(self.blocks(x + self.pos))  # (B, N+1, dim)
        feat = x[:, 0] if self.pool == "cls" else x[:, 1:].mean(dim=1)  # (B, dim)
        return self.head(feat)  # (B, out_dim)


ENCODERS: dict[str, type[nn.Module]] = {"cnn": CNNEncoder, "vit_tiny": ViTTiny}


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered encoder, e.g. ``build_encoder("cnn", size=64, out_dim=128)``."""
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder {name!r}; valid: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](**kwargs)


def encoder_from_config(cfg: EncoderConfig, size: int) -> nn.Module:
    """The encoder an :class:`~worldjepa.configs.EncoderConfig` describes, for frames of side ``size``."""
    if cfg.kind == "cnn":
        return build_encoder("cnn", size=size, channels=tuple(cfg.channels), out_dim=cfg.dim, keypoints=cfg.keypoints)
    if cfg.kind == "module":
        from worldjepa.nn.external import build_external

        return build_external(cfg, size)
    return build_encoder(cfg.kind, size=size, patch=cfg.patch, out_dim=cfg.dim)


def frames_to_float(frames: Any, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` (numpy or torch) -> float ``(..., 3, H, W)`` in [0, 1];
    float ``(..., 3, H, W)`` passes through (moved to ``device``)."""
    if isinstance(frames, np.ndarray):
        frames = np.ascontiguousarray(frames) if frames.flags.writeable else np.array(frames)
    x = torch.as_tensor(frames)
    if x.dtype == torch.uint8:
        if x.dim() < 3 or x.shape[-1] != 3:
            raise WorldJepaError(f"uint8 frames must be (..., H, W, 3), got {tuple(x.shape)}")
        x = x.to(device).movedim(-1, -3)  # (..., 3, H, W)
        return x.float() / 255.0
    if not x.is_floating_point() or x.dim() < 3 or x.shape[-3] != 3:
        raise WorldJepaError(f"frames must be uint8 (..., H, W, 3) or float (..., 3, H, W), "
                             f"got {x.dtype} {tuple(x.shape)}")
    return x.to(device)
