"""Action-free forecasting, measured: how far ahead does a world model predict a video?

    from worldjepa.physics.forecast import forecast_clips, forecast_scores
    clips = forecast_clips("data/balls.h5", frameskip=5, history=3, horizon=10)
    result = forecast_scores(model, clips, pixel=pixel_model)

Clips come from held-out episodes (the dataset's test split): ``history`` context frames at
the model's frame-skip, then ``horizon`` future frames. From the context's embeddings the
action-free world model forecasts the next ``horizon`` embeddings
(:meth:`~worldjepa.world_model.WorldModel.forecast`); its error at horizon ``h`` is
:func:`~worldjepa.losses.prediction_error` (MSE over the latent's dimensions, as in
training) against the embedding of the real frame ``h`` model steps after the last context
frame. Beside it, in the same space and on the same clips:

* ``copy_last``: the last context embedding, for every horizon (nothing moves);
* ``mean``: the mean embedding of all the clips' frames, a constant (it knows the test
  frames' average: an oracle of "where things are on average");
* ``pixel``: a pixel-space predictor (:class:`~worldjepa.pixel_model.PixelModel`) rolled out
  from the same context frames; its predicted frames, rounded to uint8, are encoded by the
  world model's own encoder and scored like the world model's forecast. Its error in pixels
  (``pixel_mse``, frames in [0, 1]) is reported beside that of copying the last frame
  (``copy_pixel_mse``) and of the per-pixel median of the clips' frames
  (``median_pixel_mse``: where nothing moves, i.e. the background, the objects erased): the
  pixel model judged in its own space, where a blurred or erased object costs less than one
  drawn in the wrong place.

Each mean comes with a 95% interval of the difference from the world model's, by bootstrap
over episodes (windows of one episode are not independent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WorldJepaError
from ..losses.prediction import prediction_error

__all__ = ["forecast_clips", "forecast_scores", "format_forecast_table"]


def forecast_clips(data: str | Path, frameskip: int, history: int, horizon: int, per_episode: int = 8,
                   split: str = "test") -> dict[str, np.ndarray]:
    """Clips of ``history + horizon`` frames at ``frameskip`` from each episode of ``split``
    (``per_episode`` evenly spaced starts): ``{"frames": (N, Th + H, S, S, 3) uint8, "actions":
    (N, Th + H, k*A), "episode": (N,)}``."""
    from ..data.windows import WindowDataset

    wd = WindowDataset(data, split, history + horizon, frameskip, extras=())
    ep_of = wd.episode_ends  # (W,) one past the last row of each window's episode: the episode's key
    picks = []
    for e in np.unique(ep_of):
        rows = np.flatnonzero(ep_of == e)
        picks += list(rows[np.unique(np.linspace(0, len(rows) - 1, per_episode).round().astype(int))])
    items = [wd[int(i)] for i in picks]
    return {"frames": np.stack([it["frames"] for it in items]), "actions": np.stack([it["actions"] for it in items]),
            "episode": ep_of[picks]}


def _bootstrap(diff: np.ndarray, episode: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean of per-clip ``diff`` (N,), resampling whole episodes."""
    eps = np.unique(episode)
    sums = np.array([diff[episode == e].sum() for e in eps])
    counts = np.array([(episode == e).sum() for e in eps])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(eps), (n, len(eps)))
    means = sums[idx].sum(1) / counts[idx].sum(1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


@torch.no_grad()
def forecast_scores(model: Any, clips: dict[str, np.ndarray], pixel: Any = None, batch: int = 64) -> dict[str, Any]:
    """Per horizon ``1..H`` the mean error of the world model's forecast and of the baselines (see
    the module docstring): ``{"horizons": [...], "model": [...], "copy_last": [...], "mean": [...],
    "pixel": [...], "pixel_mse": [...], "copy_pixel_mse": [...], "median_pixel_mse": [...], "ci":
    {baseline: [(lo, hi), ...]},
    "clips", "episodes"}``; ``ci`` holds the 95% interval of baseline minus model (> 0: the
    model is better)."""
    if not getattr(model, "action_free", False):
        raise WorldJepaError("forecasting is measured on an action-free world model (worldjepa train --action-free)")
    th = int(model.history)
    frames, actions = clips["frames"], clips["actions"]
    horizon = frames.shape[1] - th
    if horizon < 1:
        raise WorldJepaError(f"clips of {frames.shape[1]} frames leave no horizon after a context of {th}")
    z = torch.cat([model.encode(frames[i:i + batch]) for i in range(0, len(frames), batch)])  # (N, Th+H, D)
    pred = torch.cat([model.forecast(z[i:i + batch, :th], horizon) for i in range(0, len(z), batch)])  # (N, H, D)
    future = z[:, th:]  # (N, H, D)
    mean = z.reshape(-1, z.shape[-1]).mean(0)  # (D,)
    per: dict[str, torch.Tensor] = {
        "model": prediction_error(pred, future),  # (N, H)
        "copy_last": prediction_error(z[:, th - 1:th].expand_as(future), future),
        "mean": prediction_error(mean.expand_as(future), future)}
    pix: dict[str, torch.Tensor] = {}
    if pixel is not None:
        from ..nn import frames_to_float
        from ..pixel_model import to_uint8

        if (int(pixel.frameskip), pixel.frame_size) != (int(model.frameskip), frames.shape[2]):
            raise WorldJepaError(f"the pixel predictor works at frame-skip {pixel.frameskip} on {pixel.frame_size} px "
                                 f"frames, the world model at {model.frameskip} on {frames.shape[2]} px")
        imagined = torch.cat([pixel.rollout(frames[i:i + batch, :th], actions[i:i + batch, th - 1:-1])
                              for i in range(0, len(frames), batch)])  # (N, H, 3, S, S)
        as_uint8 = to_uint8(imagined)  # (N, H, S, S, 3)
        zp = torch.cat([model.encode(as_uint8[i:i + batch]) for i in range(0, len(frames), batch)])  # (N, H, D)
        per["pixel"] = prediction_error(zp, future)
        x = frames_to_float(frames)  # (N, Th+H, 3, S, S)
        pix["pixel_mse"] = ((imagined - x[:, th:]) ** 2).mean((2, 3, 4))  # (N, H)
        pix["copy_pixel_mse"] = ((x[:, th - 1:th] - x[:, th:]) ** 2).mean((2, 3, 4))
        median = x.reshape(-1, *x.shape[2:]).median(0).values  # (3, S, S) per-pixel median: the background
        pix["median_pixel_mse"] = ((median - x[:, th:]) ** 2).mean((2, 3, 4))
    ep = np.asarray(clips["episode"])
    out: dict[str, Any] = {"horizons": list(range(1, horizon + 1)), "clips": len(frames),
                           "episodes": int(len(np.unique(ep))), "ci": {}}
    for name, err in {**per, **pix}.items():
        out[name] = err.mean(0).tolist()
    m = per["model"].cpu().numpy()
    for name, err in per.items():
        if name != "model":
            d = err.cpu().numpy() - m  # (N, H)
            out["ci"][name] = [_bootstrap(d[:, h], ep) for h in range(horizon)]
    return out


def format_forecast_table(result: dict[str, Any]) -> str:
    """A markdown table: one row per horizon, the errors side by side."""
    cols = [c for c in ("model", "copy_last", "mean", "pixel") if c in result]
    extra = [c for c in ("pixel_mse", "copy_pixel_mse", "median_pixel_mse") if c in result]
    head = "| horizon | " + " | ".join(cols + extra) + " |"
    lines = [head, "|" + " ---: |" * (1 + len(cols) + len(extra))]
    for i, h in enumerate(result["horizons"]):
        cells = [f"{result[c][i]:.4f}" for c in cols] + [f"{result[c][i]:.5f}" for c in extra]
        lines.append(f"| {h} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
