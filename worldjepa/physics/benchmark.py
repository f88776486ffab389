"""The violation-of-expectation benchmark of one run, with its controls on the same pairs.

:func:`run_voe` draws matched pairs for the run's env (:func:`~worldjepa.physics.voe.generate_pairs`),
scores every clip with three surprise signals and reports, per violation type, pairwise
accuracy (max and mean surprise after the event) and AUROC
(:func:`~worldjepa.physics.metrics.score_pairs`):

* ``model``: the run's world model (:func:`~worldjepa.physics.surprise.clip_surprise`);
* ``untrained``: the same architecture with fresh weights, one per seed (mean and spread
  over seeds): what the architecture alone gives;
* ``pixels``: the mean absolute difference of adjacent frames (env steps ``t - 1`` and
  ``t``): a detector of change with no model at all;
* ``pixel_model`` (with ``pixel_run``): a pixel-space predictor
  (:class:`~worldjepa.pixel_model.PixelModel`, ``worldjepa train --pixel-space`` on the same
  recordings): its surprise at env step ``t`` is the MSE in pixels (frames in [0, 1])
  between frame ``t`` and the frame it predicted from the frames at ``t - k, t - 2k, ...``
  (up to its history) and the ``k`` actions since ``t - k``, the world model's surprise in
  pixels instead of embeddings.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np
import torch

from ..errors import WorldJepaError
from .metrics import score_pairs
from .surprise import clip_surprise, load_model, macro, model_steps
from .voe import VIOLATIONS, Pair, generate_pairs

__all__ = ["format_table", "pixel_model_surprise", "pixel_surprise", "run_voe"]
logger = logging.getLogger(__name__)

Signal = Callable[[Pair, bool], tuple[np.ndarray, np.ndarray]]  # (pair, impossible?) -> (surprise, steps)


def pixel_surprise(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T - 1,)`` mean absolute difference (0-255 scale) of each frame from the one before, and
    the env steps ``1..T-1`` it belongs to."""
    f = np.asarray(frames, np.float32)
    return np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3)), np.arange(1, len(f))


@torch.no_grad()
def pixel_model_surprise(pixel: Any, frames: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T - k,)`` a pixel-space predictor's surprise (MSE in pixels in [0, 1] of each frame
    against its prediction, see the module docstring) at env steps ``k..T-1``."""
    from ..nn import frames_to_float

    k, hist = int(pixel.frameskip), int(pixel.history)
    x = frames_to_float(frames)  # (T, 3, S, S)
    a, T = np.asarray(actions, np.float32), len(frames)
    out = np.full(T, np.nan)
    for _, ts, ctx in model_steps(T, k, hist):
        pred = pixel.predict(x[torch.as_tensor(ctx)], macro(a, ctx[:, -1], k)).clamp(0, 1)  # (B, 3, S, S)
        out[ts] = ((pred - x[torch.as_tensor(ts)]) ** 2).mean((1, 2, 3)).cpu().numpy()
    return out[k:], np.arange(k, T)


def model_signal(model: Any, metric: str, normalize: bool) -> Signal:
    """A world model's surprise along a pair's clip (steps ``k..T-1``)."""
    k = int(model.frameskip)

    def signal(pair: Pair, impossible: bool) -> tuple[np.ndarray, np.ndarray]:
        frames = pair.impossible if impossible else pair.possible
        states = pair.states[1 if impossible else 0]  # a built-in env's observation is its state
        extras = {"state": states, "obs": states.astype(np.float32)} if model.proprio else None
        _, s = clip_surprise(model, frames, pair.actions, extras, metric=metric, normalize=normalize)
        return s[k:], np.arange(k, len(frames))

    return signal


def score(pairs: list[Pair], signal: Signal) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Per violation type the scores of ``signal`` on ``pairs``, and each pair's curves."""
    curves = []
    for pair in pairs:
        (sp, steps), (si, _) = signal(pair, False), signal(pair, True)
        curves.append({"kind": pair.kind, "event": pair.event, "steps": steps, "possible": sp, "impossible": si})
    out = {}
    for kind in dict.fromkeys(p.kind for p in pairs):
        cs = [c for c in curves if c["kind"] == kind]
        out[kind] = score_pairs([c["possible"] for c in cs], [c["impossible"] for c in cs], [c["steps"] for c in cs],
                                [c["event"] for c in cs])
    return out, curves


def _spread(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation over seeds of each kind's scores."""
    out: dict[str, dict[str, Any]] = {}
    for kind in runs[0]:
        keys = [k for k in runs[0][kind] if k != "pairs"]
        vals = {k: np.array([r[kind][k] for r in runs]) for k in keys}
        out[kind] = {"pairs": runs[0][kind]["pairs"], "seeds": len(runs),
                     **{k: float(v.mean()) for k, v in vals.items()},
                     **{f"{k}_std": float(v.std()) for k, v in vals.items()}}
    return out


@torch.no_grad()
def run_voe(run: Any, pairs: int = 50, *, seed: int = 0, untrained: int = 20, kinds: list[str] | None = None,
            metric: str = "mse", normalize: bool = False, env_kwargs: dict[str, Any] | None = None,
            pixel_run: Any = None, progress: Callable[[str], None] | None = None,
            device: str = "auto") -> tuple[dict[str, Any], list[Pair]]:
    """The benchmark of ``run`` (a run directory or ``(model, meta)``) on ``pairs`` pairs per violation.

    ``pixel_run``: a ``worldjepa train --pixel-space`` run (or ``(PixelModel, meta)``) of the
    same env and frame size, scored as one more control.

    Returns the result, ``{"run", "env_id", "frame_size", "frameskip", "history", "pairs",
    "metric", "normalize", "seed", "before", "after", "results": {"model" | "untrained" |
    "pixels" | "pixel_model": {kind: scores}}, "curves": the model's surprise along each pair,
    "pair_seeds"}`` (and ``"pixel_run"``), and the pairs drawn. The models run on ``device``
    (``auto``: CUDA when torch sees one).
    """
    from ..config import from_dict
    from ..configs import ModelConfig
    from ..utils import pick_device
    from ..world_model import build_world_model

    where = pick_device(device)
    model, meta = load_model(run, device=where)
    env_id = meta.get("env_id")
    if not env_id:
        raise WorldJepaError(f"{run} records no env id: cannot draw pairs for it")
    pixel = _pixel_control(pixel_run, env_id, int(meta["frame_size"])) if pixel_run is not None else None
    k, hist = int(model.frameskip), int(model.history)
    before, after = max(16, hist * k + 1), max(16, 3 * k)
    note = progress or (lambda s: None)
    note(f"drawing {pairs} pairs per violation for {env_id} ({meta['frame_size']}px)")
    drawn = generate_pairs(env_id, pairs, int(meta["frame_size"]), seed, kinds, before, after, **(env_kwargs or {}))
    note("scoring: the model")
    results: dict[str, Any] = {}
    results["model"], curves = score(drawn, model_signal(model, metric, normalize))
    cfg = from_dict(ModelConfig, meta["model"])
    fresh = []
    for s in range(untrained):
        note(f"scoring: untrained seed {s + 1}/{untrained}")
        torch.manual_seed(s)
        m = build_world_model(cfg).eval().to(next(model.parameters()).device)
        if model.proprio:  # the trained model's input scaling, fresh weights
            m.proprio_enc.mean.copy_(model.proprio_enc.mean)
            m.proprio_enc.std.copy_(model.proprio_enc.std)
        fresh.append(score(drawn, model_signal(m, metric, normalize))[0])
    if fresh:
        results["untrained"] = _spread(fresh)
    note("scoring: pixel difference")
    results["pixels"] = score(drawn, lambda pair, imp: pixel_surprise(pair.impossible if imp else pair.possible))[0]
    if pixel is not None:
        note("scoring: the pixel-space predictor")
        results["pixel_model"] = score(drawn, lambda pair, imp: pixel_model_surprise(
            pixel, pair.impossible if imp else pair.possible, pair.actions))[0]
    out = {"run": str(run) if not isinstance(run, tuple) else "", "env_id": env_id,
           "frame_size": int(meta["frame_size"]), "frameskip": k, "history": hist, "pairs": pairs,
           "metric": metric, "normalize": normalize, "seed": seed, "before": before, "after": after,
           "results": results, "curves": curves, "pair_seeds": [p.seed for p in drawn]}
    if pixel is not None:
        out["pixel_run"] = str(pixel_run) if not isinstance(pixel_run, tuple) else ""
    return out, drawn


def _pixel_control(pixel_run: Any, env_id: str, size: int) -> Any:
    """The pixel-space predictor of ``pixel_run``, checked against the world model's env and frame size."""
    from ..checkpoint import check_compatible
    from ..pixel_model import load_pixel_model

    pixel, meta = pixel_run if isinstance(pixel_run, tuple) else load_pixel_model(pixel_run)
    check_compatible(meta, env_id=env_id, frame_size=size, where=f"the pixel-space predictor {pixel_run}")
    return pixel.eval()


def format_table(result: dict[str, Any]) -> str:
    """The results as a text table: one row per violation, the model's and the controls' scores."""
    res = result["results"]
    pm = res.get("pixel_model")
    head = (f"{'violation':<11} {'pairs':>5}  {'model: pair max':>15} {'mean':>5} {'AUROC':>5}  "
            f"{'untrained: pair max':>19} {'AUROC':>11}  {'pixels: pair max':>16} {'AUROC':>5}"
            + (f"  {'pixel model: pair max':>21} {'AUROC':>5}" if pm else ""))
    lines = [head, "-" * len(head)]
    for kind, m in res["model"].items():
        u, p = res.get("untrained", {}).get(kind), res["pixels"][kind]
        untr = (f"{u['pairwise_max']:>13.2f} ±{u['pairwise_max_std']:.2f} "
                f"{u['auroc_max']:>5.2f} ±{u['auroc_max_std']:.2f}"
                if u else f"{'-':>19} {'-':>11}")
        lines.append(f"{kind:<11} {int(m['pairs']):>5}  {m['pairwise_max']:>15.2f} {m['pairwise_mean']:>5.2f} "
                     f"{m['auroc_max']:>5.2f}  {untr}  {p['pairwise_max']:>16.2f} {p['auroc_max']:>5.2f}"
                     + (f"  {pm[kind]['pairwise_max']:>21.2f} {pm[kind]['auroc_max']:>5.2f}" if pm else ""))
    legend = ", ".join(f"{k}: {VIOLATIONS[k]}" for k in res["model"])
    return "\n".join(lines) + f"\n({legend})"
