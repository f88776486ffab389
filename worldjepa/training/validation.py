"""Validation of a world model on held-out windows: prediction error per horizon and collapse.

Metrics (namespaced ``val/…``), on a fixed set of windows of the dataset's val split:

* ``val/pred_mse_h{h}``: the prediction error (:func:`~worldjepa.losses.prediction_error`, MSE) between the embedding imagined ``h`` model steps open-loop from
  the first frame (its actions given) and the encoded frame ``h`` steps later;
* ``val/copy_mse_h{h}``: the same for the "copy the last embedding" baseline (nothing moves);
* ``val/pred_over_copy``: their ratio summed over horizons (< 1: the model beats copying);
* ``val/sigreg`` (SIGReg statistic, ~1 for N(0, I)), ``val/rankme`` (effective rank of the
  embeddings, 1 = collapsed), ``val/z_std`` (mean per-dimension std): the collapse monitor;
* ``val/probe_r2``: linear-probe R^2 of the env's ``state`` from the embedding (first half
  of the windows fits, second half scores), when the dataset records ``state``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError

logger = logging.getLogger(__name__)


class Validator:
    """Samples ``windows`` val windows of ``1 + horizon`` frames once; call it with a model."""

    def __init__(self, path: str | Path, frameskip: int, horizon: int, windows: int, seed: int,
                 max_memory_mb: float = 2048, split: str = "val", extra: str | None = None) -> None:
        from ..data.dataset import Dataset
        from ..data.windows import WindowDataset

        with Dataset(path) as ds:
            extras = ("state",) if "state" in ds.extras else ()
            if extra and extra not in extras:  # the model's proprioceptive input
                extras = (*extras, extra)
        wd, err = None, None
        for h in range(horizon, 0, -1):  # the longest horizon the split's episodes allow
            try:
                wd = WindowDataset(path, split, 1 + h, frameskip, extras=extras, max_memory_mb=max_memory_mb)
                break
            except DatasetError as e:
                err = e
        if wd is None:
            raise DatasetError(f"no validation windows: {err}")
        if wd.T - 1 < horizon:
            logger.warning("val: episodes allow horizons up to %d, not %d", wd.T - 1, horizon)
        self.horizon = wd.T - 1
        self.batch = wd.sample(windows, np.random.default_rng([seed, 7919]))  # fixed windows
        del wd  # keep only the sampled windows in memory
        from ..losses import SIGReg

        # eval: fixed directions; every rank validates the same windows: no sum over ranks
        self.sigreg = SIGReg(num_slices=256, seed=1, across_ranks=False).eval()

    @torch.no_grad()
    def __call__(self, model: Any, chunk: int = 64) -> dict[str, float]:
        from ..losses import prediction_error
        from ..metrics import linear_r2, rankme

        was_training = model.training
        model.eval()
        w = next(model.parameters())
        frames, actions = self.batch["frames"], torch.as_tensor(self.batch["actions"], device=w.device, dtype=w.dtype)
        zs, imag = [], []
        for i in range(0, len(frames), chunk):
            p = model.proprio_of({k: v[i:i + chunk] for k, v in self.batch.items()}) if model.proprio else None
            z = model.encode(frames[i:i + chunk], p)  # (n, 1+H, D)
            a = actions[i:i + chunk]  # (n, 1+H, A)
            imag.append(model.rollout(z[:, :1], a[:, :0], a[:, None, :-1])[:, 0])  # (n, H, D)
            zs.append(z)
        z, imagined = torch.cat(zs), torch.cat(imag)  # (N, 1+H, D), (N, H, D)
        model.train(was_training)
        out: dict[str, float] = {}
        ratio_num = ratio_den = 0.0
        for h in range(1, self.horizon + 1):
            pred = float(prediction_error(imagined[:, h - 1], z[:, h], reduction="mean"))
            copy = float(prediction_error(z[:, 0], z[:, h], reduction="mean"))
            out[f"val/pred_mse_h{h}"], out[f"val/copy_mse_h{h}"] = pred, copy
            ratio_num, ratio_den = ratio_num + pred, ratio_den + copy
        out["val/pred_over_copy"] = ratio_num / max(ratio_den, 1e-12)
        z0 = z[:, 0].float()  # (N, D)
        out["val/sigreg"] = float(self.sigreg(z0)) if torch.isfinite(z0).all() else float("nan")
        out["val/rankme"] = rankme(z0)
        out["val/z_std"] = float(z0.std(0).mean())
        if "state" in self.batch and len(z0) >= 64:
            state = np.asarray(self.batch["state"][:, 0], np.float64).reshape(len(z0), -1)  # (N, S)
            half = len(z0) // 2
            out["val/probe_r2"] = linear_r2(z0[:half], state[:half], z0[half:], state[half:])["r2"]
        return out
