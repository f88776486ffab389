"""A pixel-space predictor model: what a world model does, in pixels instead of embeddings.

The control of the physics evaluations (``worldjepa physics --pixel-run``,
``benchmarks/bench_forecast.py``): trained on the same recordings, at the same frame-skip
and history, with the same two terms (teacher-forced next-step error and open-loop rollout
error from the first frame, MSE, here in pixels in [0, 1]), and action-free or not like the
world model it is compared with. ``worldjepa train --pixel-space`` trains one; the network
is :class:`~worldjepa.nn.pixels.PixelPredictor`.

Verbs (frames float ``(..., 3, S, S)`` in [0, 1] inside, uint8 ``(..., S, S, 3)`` accepted):

* ``predict(frames (B, Th, ...), a (B, A)) -> (B, 3, S, S)``: the next frame;
* ``rollout(frames (B, Th, ...), actions (B, H, A)) -> (B, H, 3, S, S)``;
* ``loss(actions (B, T, A), frames=(B, T, S, S, 3)) -> {"loss", "pred", "rollout"}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .configs import ModelConfig
from .errors import CheckpointError, ConfigError
from .nn import frames_to_float
from .nn.pixels import PixelPredictor

CHANNELS = (8, 16, 32, 64, 256)  # ~0.58 M weights at 64 px: the default world model's size (0.5-0.56 M)
KIND = "pixel_predictor"  # the checkpoint's kind


class PixelModel(nn.Module):
    """A :class:`PixelPredictor` with the frame-skip, history and action handling of a world model."""

    def __init__(self, net: PixelPredictor, *, frameskip: int, history: int, action_free: bool = False,
                 rollout_weight: float = 1.0) -> None:
        super().__init__()
        self.net, self.frameskip, self.history = net, frameskip, history
        self.macro_dim, self.action_free, self.rollout_weight = net.action_dim, action_free, rollout_weight

    @property
    def frame_size(self) -> int:
        return int(self.net.size)

    def _frames(self, frames: Any) -> Tensor:
        return frames_to_float(frames, next(self.parameters()).device)  # (..., 3, S, S)

    def _acts(self, a: Any) -> Tensor:
        a = torch.as_tensor(a, dtype=torch.float32, device=next(self.parameters()).device)
        return torch.zeros_like(a) if self.action_free else a

    def predict(self, frames: Any, a: Any) -> Tensor:
        """Context ``(B, Th, ...)`` and macro-action ``(B, A)`` -> the next frame ``(B, 3, S, S)``."""
        return self.net(self._frames(frames), self._acts(a))

    def rollout(self, frames: Any, actions: Any) -> Tensor:
        """Context ``(B, Th, ...)``, macro-actions ``(B, H, A)`` -> frames ``(B, H, 3, S, S)`` in [0, 1]."""
        return self.net.rollout(self._frames(frames), self._acts(actions))

    def loss(self, actions: Any, *, frames: Any) -> dict[str, Tensor]:
        """Windows ``(B, T, S, S, 3)`` with macro-actions ``(B, T, A)`` (``actions[:, t]`` leads from
        frame ``t`` to ``t + 1``): teacher-forced MSE of frames ``1..T-1``, each from up to
        ``history`` real frames before it, + ``rollout_weight`` x the MSE of those frames imagined
        open-loop from the first."""
        x, a = self._frames(frames), self._acts(actions)  # (B, T, 3, S, S), (B, T, A)
        b, t = x.shape[:2]
        if t < 2:
            raise ConfigError(f"a training window needs T >= 2 frames, got {t}")
        steps = torch.arange(t - 1)
        idx = (steps[:, None] - self.history + 1 + torch.arange(self.history)[None]).clamp_min(0)  # (T-1, h)
        ctx = x[:, idx].reshape(b * (t - 1), self.history, *x.shape[2:])  # (B*(T-1), h, 3, S, S)
        pred = self.net(ctx, a[:, :-1].reshape(b * (t - 1), -1)).view(b, t - 1, *x.shape[2:])
        target = x[:, 1:]  # (B, T-1, 3, S, S)
        out = {"pred": F.mse_loss(pred, target)}
        out["rollout"] = F.mse_loss(self.net.rollout(x[:, :1], a[:, :-1]), target) if t > 2 else x.new_zeros(())
        out["loss"] = out["pred"] + self.rollout_weight * out["rollout"]
        return out

    def forward(self, actions: Any, **inputs: Any) -> dict[str, Tensor]:
        """Same as :meth:`loss` (what the training loop calls)."""
        return self.loss(actions, **inputs)


def build_pixel_model(cfg: ModelConfig, channels: tuple[int, ...] = CHANNELS) -> PixelModel:
    """The pixel model of a world model's config: its frame size, frame-skip, history, action size
    (``frameskip x action_dim``), ``action_free`` and ``rollout_weight``."""
    size = int(cfg.frame_size)
    if size < 8 or cfg.action_dim < 1:
        raise ConfigError(f"pixel model config needs frame_size and action_dim from the dataset, got {size}, "
                          f"{cfg.action_dim}")
    if size % 2 ** len(channels):
        raise ConfigError(f"the pixel predictor halves the frame {len(channels)} times: frames of {size} px must be "
                          f"a multiple of {2 ** len(channels)} px")
    net = PixelPredictor(size, cfg.history, cfg.action_dim * cfg.frameskip, tuple(channels))
    return PixelModel(net, frameskip=cfg.frameskip, history=cfg.history, action_free=cfg.action_free,
                      rollout_weight=cfg.rollout_weight)


def load_pixel_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[PixelModel, dict[str, Any]]:
    """``(PixelModel in eval mode, meta)`` from a ``worldjepa train --pixel-space`` run or its checkpoint."""
    from . import checkpoint as ckpt
    from .config import from_dict
    from .world_model import model_weights

    tensors, meta = ckpt.load(path)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} is not a pixel-space predictor (kind {meta.get('kind')!r}; train one with "
                              "worldjepa train --pixel-space)")
    model = build_pixel_model(from_dict(ModelConfig, meta["model"]), tuple(meta["pixel_channels"]))
    try:
        model.load_state_dict(model_weights(tensors))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit its config: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), meta


def to_uint8(frames: Tensor) -> np.ndarray:
    """Predicted frames ``(..., 3, S, S)`` in [0, 1] -> uint8 ``(..., S, S, 3)`` (for an encoder or a figure)."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


__all__ = ["CHANNELS", "KIND", "PixelModel", "build_pixel_model", "load_pixel_model", "to_uint8"]
