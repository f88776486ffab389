"""Surprise: how far what a world model sees is from what it predicted, step by step along a clip.

    from worldjepa.physics import surprise
    s, steps = surprise("runs/tworoom", frames, actions)   # frames (T, H, W, 3) uint8, actions (T, A)

**What is measured.** A clip is taken as recorded, at the env's step rate. The surprise of
the model step that ends at env step ``t`` (for every ``t >= k``, ``k`` the model's
frame-skip) is the prediction error of the embedding of frame ``t`` against the embedding
predicted from the model's context: the frames at ``t - k, t - 2k, ...`` (up to its
``history`` of them, fewer near the clip's start) and the ``k`` env actions executed between
each of them and the next (macro-actions, as in training). Consecutive model steps overlap:
one ends at every env step, so an event is seen by the ``k`` predictions that span it.
This is what :meth:`~worldjepa.agent.Agent.observe` reports on its grid ``k, 2k, ...`` and
what the long-term memory stores with every frame.

**Distance and normalisation.** :func:`~worldjepa.losses.prediction_error`, the one the model
was trained with: by default ``metric="mse"``, the mean over the ``D`` latent dimensions of
the squared difference, on the raw embeddings (``normalize=False``), i.e. the training
loss's per-step term. ``metric="l1", normalize=True`` gives the intuitive-physics study's
surprise (mean absolute difference of layer-normed embeddings), which does not grow with
the embedding's scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import CheckpointError, WorldJepaError
from ..losses.prediction import Metric, prediction_error

__all__ = ["clip_surprise", "load_model", "macro", "model_steps", "surprise"]


def model_steps(T: int, k: int, hist: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The model steps of a clip of ``T`` env steps, grouped by context length: ``(n, ts (B,),
    ctx (B, n))``, the env steps ``t >= k`` whose context holds ``n = min(hist, t // k)``
    frames, and those frames' env steps ``t - n k, ..., t - k``."""
    for n in range(1, hist + 1):
        ts = np.array([t for t in range(k, T) if min(hist, t // k) == n])
        if len(ts):
            yield n, ts, ts[:, None] - k * np.arange(n, 0, -1)[None, :]


def macro(a: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` env actions of ``a`` ``(T - 1, A)`` from each start, concatenated: ``(B,)`` -> ``(B, k*A)``."""
    return np.concatenate([a[starts + j] for j in range(k)], -1)


@torch.no_grad()
def clip_surprise(model: Any, frames: Any, actions: Any, extras: dict[str, Any] | None = None, *,
                  metric: Metric = "mse", normalize: bool = False, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(T, D)`` of a clip's frames and the surprise ``(T,)`` of each: at env step
    ``t`` the prediction error of the embedding of frame ``t`` from the model's context at
    ``t - k, t - 2k, ...`` (up to its ``history``) and the ``k`` actions executed since each;
    ``nan`` for ``t < k``. ``frames`` ``(T, H, W, 3)`` uint8 at the model's frame size,
    ``actions`` ``(T - 1, A)`` (``actions[t]`` leads from frame ``t`` to ``t + 1``), ``extras``
    the per-frame arrays a model with proprioception reads (``{"state": (T, S)}``). No checks:
    :func:`surprise` is the checked entry point."""
    k, hist = int(model.frameskip), int(model.history)
    p = model.proprio_of(extras)
    z = torch.cat([model.encode(frames[i:i + batch], None if p is None else p[i:i + batch])
                   for i in range(0, len(frames), batch)])  # (T, D)
    T, a = len(frames), np.asarray(actions, np.float32)  # (T - 1, A)
    out = np.full(T, np.nan)
    for n, ts, ctx in model_steps(T, k, hist):
        a_hist = (np.stack([macro(a, ctx[:, j], k) for j in range(n - 1)], 1) if n > 1
                  else np.zeros((len(ts), 0, k * a.shape[1])))  # (B, n - 1, k*A)
        last = torch.as_tensor(macro(a, ctx[:, -1], k), device=z.device)[:, None, None]  # (B, 1, 1, k*A)
        pred = model.rollout(z[torch.as_tensor(ctx)], torch.as_tensor(a_hist, dtype=torch.float32, device=z.device),
                             last)[:, 0, 0]  # (B, D)
        out[ts] = prediction_error(pred, z[torch.as_tensor(ts)], metric=metric, normalize=normalize).cpu().numpy()
    return z.cpu().numpy(), out


def load_model(run_or_model: Any, env_id: str | None = None, device: Any = "cpu") -> tuple[Any, dict[str, Any]]:
    """``(WorldModel, meta)`` from a run directory or checkpoint (loaded on ``device``), a
    ``(model, meta)`` pair (what :func:`~worldjepa.world_model.load_world_model` returns) or a
    bare model (``meta`` then holds only its frame size; both stay where they are). With
    ``env_id`` a run trained on another env is a :class:`~worldjepa.errors.CheckpointError`."""
    from ..checkpoint import check_compatible
    from ..world_model import load_world_model

    if isinstance(run_or_model, (str, Path)):
        model, meta = load_world_model(run_or_model, device)
    elif isinstance(run_or_model, tuple) and len(run_or_model) == 2:
        model, meta = run_or_model
    elif hasattr(run_or_model, "rollout") and hasattr(run_or_model, "encode"):
        model, meta = run_or_model, {}
    else:
        raise WorldJepaError("expected a run directory, a checkpoint or a world model, got "
                             f"{type(run_or_model).__name__}")
    meta = dict(meta)
    meta.setdefault("frame_size", getattr(model.encoder, "size", None))
    if env_id is not None:
        if meta.get("env_id") is None:
            raise CheckpointError(f"this model records no env, so it cannot be checked against {env_id}: pass a run "
                                  "directory, or leave env_id out")
        check_compatible(meta, env_id=env_id, where=f"the run ({run_or_model})" if isinstance(run_or_model, (str, Path))
                         else "the model")
    return model.eval(), meta


def _checked_actions(actions: Any, T: int, dim: int, action_free: bool = False) -> np.ndarray:
    """``(T - 1, A)`` float32 from ``(T, A)`` (the last row is never executed) or ``(T - 1, A)``;
    zeros for an action-free model given none."""
    if actions is None and action_free:
        return np.zeros((T - 1, dim), np.float32)
    if actions is None:
        raise WorldJepaError(f"this world model is action-conditioned: pass actions=... of shape ({T}, {dim}) "
                             f"(the env action executed after each frame; the last row is unused)")
    a = np.asarray(actions, np.float32)
    if a.ndim == 1 and dim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != dim or a.shape[0] not in (T, T - 1):
        raise WorldJepaError(f"actions must have shape ({T}, {dim}) or ({T - 1}, {dim}) for {T} frames, "
                             f"got {a.shape}")
    if not np.isfinite(a).all():
        raise WorldJepaError("actions hold NaN or inf")
    return a[:T - 1]


def surprise(run_or_model: Any, frames: Any, actions: Any = None, *, env_id: str | None = None,
             extras: dict[str, Any] | None = None, metric: Metric = "mse",
             normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The surprise of a world model along a clip, one value per model step.

    Args:
        run_or_model: a run directory or checkpoint, a ``(model, meta)`` pair or a
            :class:`~worldjepa.world_model.WorldModel`.
        frames: ``(T, H, W, 3)`` uint8, the clip at the env's step rate, at the model's frame
            size (``H == W ==`` the checkpoint's ``frame_size``).
        actions: ``(T, A)`` (or ``(T - 1, A)``) env actions, ``actions[t]`` executed between
            frame ``t`` and ``t + 1``; required for an action-conditioned model, ignored by an
            action-free one (``worldjepa train --action-free``).
        env_id: if given, the run must have been trained on this env.
        extras: per-frame arrays for a model trained with proprioception (``{"state": (T, S)}``).
        metric, normalize: the distance (see the module docstring); by default the training loss's.

    Returns:
        ``(surprise, steps)``: two arrays of the same length ``T - k``: the surprise of the
        model step ending at env step ``steps[i] = k + i`` (``k`` the frame-skip).

    Bad input (a frame size the model was not trained at, a run for another env, missing or
    misshapen actions, a clip shorter than one model step) raises
    :class:`~worldjepa.errors.WorldJepaError`.
    """
    model, meta = load_model(run_or_model, env_id)
    arr = np.asarray(frames)
    size = meta.get("frame_size")
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise WorldJepaError(f"frames must be a (T, H, W, 3) uint8 clip, got shape {arr.shape} {arr.dtype}")
    if size is not None and arr.shape[1:3] != (int(size), int(size)):
        raise WorldJepaError(f"frames are {arr.shape[2]}x{arr.shape[1]}, the model was trained on {size}x{size}: "
                             f"render the clip at that size (or resize it with worldjepa.envs.adapter.resize_frame)")
    k, T = int(model.frameskip), len(arr)
    if T <= k:
        raise WorldJepaError(f"a clip of {T} frames holds no model step: the model's frame-skip is {k}, so it needs "
                             f"at least {k + 1} frames")
    a = _checked_actions(actions, T, int(model.action_dim), bool(getattr(model, "action_free", False)))
    if model.proprio and extras is None:
        raise WorldJepaError(f"this model also takes proprioception ({model.proprio}): pass extras={{...}} with "
                             "one value per frame")
    _, s = clip_surprise(model, arr, a, extras, metric=metric, normalize=normalize)
    return s[k:], np.arange(k, T)
