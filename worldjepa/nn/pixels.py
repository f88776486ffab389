"""A small pixel-space predictor: the last frames (and the action) -> the next frame.

The control that predicts in pixels what a world model predicts in embedding space: a
U-Net-shaped convolutional network. The ``history`` context frames are stacked on the
channel axis, the macro-action is broadcast to constant planes beside them; one stride-2
convolution per entry of ``channels`` goes down, one transposed convolution per entry comes
back up, each joined to the same resolution's features (skip connections; none at full size,
where convolutions cost the most: the last one draws the output). The output is a change
added to the last context frame, its last layer zero-initialised, so an untrained
predictor copies the last frame (as the residual embedding predictors start as "nothing
moves").
"""

from __future__ import annotations

import torch
from torch import nn

from worldjepa.nn._checks import check_shape, init_weights


class PixelPredictor(nn.Module):
    """``forward(frames (B, Th, 3, S, S) in [0, 1], a (B, A)) -> (B, 3, S, S)``, the next frame.

    Args:
        size: frame side ``S`` in pixels (divisible by ``2 ** len(channels)``).
        history: context frames ``Th``; fewer are padded by repeating the oldest one.
        action_dim: size ``A`` of the (macro-)action; 0 for an action-free predictor.
        channels: feature widths, one resolution halving per entry.
    """

    def __init__(self, size: int, history: int, action_dim: int, channels: tuple[int, ...] = (16, 32, 64, 64)):
        super().__init__()
        if history < 1 or not channels or size % 2 ** len(channels):
            raise ValueError(f"PixelPredictor needs history >= 1 and a size divisible by 2^{len(channels)}, "
                             f"got history={history}, size={size}")
        self.size, self.history, self.action_dim = size, history, action_dim
        width = 3 * history + action_dim
        self.down = nn.ModuleList()
        for c in channels:
            self.down.append(nn.Sequential(nn.Conv2d(width, c, 3, stride=2, padding=1), nn.GroupNorm(1, c), nn.GELU()))
            width = c
        self.up = nn.ModuleList()
        for skip in reversed(channels[:-1]):  # back up to half the frame size, joined to each level's features
            self.up.append(nn.ModuleDict({
                "up": nn.ConvTranspose2d(width, skip, 4, stride=2, padding=1),
                "mix": nn.Sequential(nn.Conv2d(2 * skip, skip, 3, padding=1), nn.GroupNorm(1, skip), nn.GELU())}))
            width = skip
        self.out = nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1)  # the change, at full size
        init_weights(self)
        nn.init.zeros_(self.out.weight)  # start as "copy the last frame"
        nn.init.zeros_(self.out.bias)

    def forward(self, frames: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        """frames ``(B, Th, 3, S, S)`` (``Th <= history``), a ``(B, A)`` -> ``(B, 3, S, S)``."""
        check_shape("frames", frames, ("B", "Th", 3, self.size, self.size))
        b, th = frames.shape[:2]
        if th > self.history:
            frames = frames[:, -self.history:]
        elif th < self.history:  # pad with the oldest frame
            frames = torch.cat([frames[:, :1].expand(b, self.history - th, *frames.shape[2:]), frames], 1)
        x = frames.reshape(b, 3 * self.history, self.size, self.size)  # (B, 3*Th, S, S)
        if self.action_dim:
            check_shape("a", a, (b, self.action_dim))
            x = torch.cat([x, a[:, :, None, None].expand(b, self.action_dim, self.size, self.size)], 1)
        feats = []
        for layer in self.down:
            x = layer(x)  # (B, c, S/2^i, S/2^i)
            feats.append(x)
        h = feats.pop()
        for step in self.up:
            h = step["mix"](torch.cat([step["up"](h), feats.pop()], 1))
        return frames[:, -1] + self.out(h)  # (B, 3, S, S)

    def rollout(self, frames: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Autoregressive: context ``(B, Th, 3, S, S)``, actions ``(B, H, A)`` (``actions[:, 0]``
        acts on the last context frame) -> predicted frames ``(B, H, 3, S, S)``, each clamped to
        [0, 1] before it becomes context."""
        out, ctx = [], frames
        for h in range(actions.shape[1]):
            nxt = self(ctx, actions[:, h]).clamp(0.0, 1.0)  # (B, 3, S, S)
            out.append(nxt)
            ctx = torch.cat([ctx, nxt[:, None]], 1)[:, -self.history:]
        return torch.stack(out, 1)  # (B, H, 3, S, S)


__all__ = ["PixelPredictor"]
