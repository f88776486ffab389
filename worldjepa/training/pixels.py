"""``worldjepa train --pixel-space``: a pixel-space predictor on the same windows as a world model.

The same loop, data, windows, budget and checkpoints as :class:`~worldjepa.training.trainer.Trainer`;
the model is a :class:`~worldjepa.pixel_model.PixelModel` (frame-skip, history,
``--action-free`` and ``rollout_weight`` from the model flags; the network's widths are fixed,
:data:`~worldjepa.pixel_model.CHANNELS`, about the default world model's size). Validation
on the same held-out windows reports ``val/pred_mse_h{h}`` and ``val/copy_mse_h{h}`` in
pixels (MSE of frames in [0, 1], imagined open-loop from the first frame, against copying it).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .trainer import Trainer


class PixelTrainer(Trainer):
    """One pixel-space predictor training run (see the module docstring)."""

    kind = "pixel_predictor"

    def build_model(self) -> torch.nn.Module:
        from ..pixel_model import build_pixel_model

        return build_pixel_model(self.model_cfg)

    def describe(self) -> dict[str, Any]:
        from ..pixel_model import CHANNELS

        return {**super().describe(), "pixel_channels": list(CHANNELS)}

    def batch_loss(self) -> dict[str, Tensor]:
        batch = self.train_data.sample(self.cfg.batch_size, self.rng)
        return self.net(torch.as_tensor(batch["actions"]), frames=torch.as_tensor(batch["frames"], device=self.device))

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Pixel MSE per horizon of the open-loop rollout from each val window's first frame, and
        of copying that frame."""
        from ..nn import frames_to_float

        model, batch = self.model, self.validator.batch
        was = model.training
        model.eval()
        frames = torch.as_tensor(batch["frames"])  # (N, 1+H, S, S, 3) uint8
        actions = torch.as_tensor(batch["actions"])  # (N, 1+H, A)
        preds = torch.cat([model.rollout(frames[i:i + 64, :1], actions[i:i + 64, :-1])
                           for i in range(0, len(frames), 64)])  # (N, H, 3, S, S)
        model.train(was)
        x = frames_to_float(frames)  # (N, 1+H, 3, S, S)
        out: dict[str, float] = {}
        num = den = 0.0
        for h in range(1, x.shape[1]):
            pred = float(((preds[:, h - 1] - x[:, h]) ** 2).mean())
            copy = float(((x[:, 0] - x[:, h]) ** 2).mean())
            out[f"val/pred_mse_h{h}"], out[f"val/copy_mse_h{h}"] = pred, copy
            num, den = num + pred, den + copy
        out["val/pred_over_copy"] = num / max(den, 1e-12)
        self.last_val = out
        return out


__all__ = ["PixelTrainer"]
