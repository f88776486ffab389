"""The checks on what a caller hands a memory store: options, embeddings, the per-entry columns
of an add, and the world model a file was built with. Each failure is a
:class:`~worldjepa.errors.MemoryInputError` (or :class:`~worldjepa.errors.MemoryFileError`)
naming the file, raised before anything is written."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MemoryFileError, MemoryInputError
from .schema import short


def array(x: Any, dtype: Any) -> np.ndarray:
    """``x`` as a numpy array; a torch tensor is accepted without importing torch."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype)


def embeddings_in(x: Any, dim: int, where: Path, name: str) -> np.ndarray:
    """(N, D) float32 C-contiguous, finite, with squares that fit float32; (D,) is one row."""
    try:
        a = array(x, np.float32)
    except (TypeError, ValueError) as e:
        raise MemoryInputError(f"{where}: {name} must be a float array ({e})") from None
    shape = a.shape
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != dim:
        raise MemoryInputError(f"{where}: {name} must have shape (N, {dim}), got {shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(a).all(1) | ~np.isfinite(np.einsum("ij,ij->i", a, a))
    if bad.any():
        raise MemoryInputError(f"{where}: {name} rows {np.flatnonzero(bad)[:5].tolist()} hold NaN, inf or values "
                               "too large to square in float32; nothing was written")
    return np.ascontiguousarray(a)


def columns_in(n: int, where: Path, thumb_size: int, episode: Any, step: Any, time: Any, action: Any,
               surprise: Any, state: Any, thumbnail: Any) -> dict[str, Any]:
    """The per-entry arrays of ``MemoryStore.add``, checked and broadcast to N rows: episode,
    step (N,) int64; time, surprise (N,) float64; action (N, A) float32, state (N, S) float64,
    thumbnail (N, h, w, 3) uint8, or None."""
    def vector(v: Any, name: str, integer: bool = False) -> np.ndarray:
        try:
            a = array(v, np.float64)
        except (TypeError, ValueError) as e:
            raise MemoryInputError(f"{where}: {name} must be numbers ({e})") from None
        if a.ndim == 0:
            a = np.full(n, a)
        if a.shape != (n,):
            raise MemoryInputError(f"{where}: {name} must be a number or have shape ({n},), got {a.shape}")
        if integer:
            if not np.isfinite(a).all() or (a != np.round(a)).any():
                raise MemoryInputError(f"{where}: {name} must hold integers")
            return array(v, np.int64) * np.ones(n, np.int64)
        return a

    def matrix(v: Any, name: str, dtype: Any) -> np.ndarray | None:
        if v is None:
            return None
        a = array(v, dtype)
        if a.ndim != 2 or len(a) != n:
            raise MemoryInputError(f"{where}: {name} must have shape ({n}, width), got {a.shape}")
        if not np.isfinite(a).all():
            raise MemoryInputError(f"{where}: {name} holds NaN or inf; nothing was written")
        return a

    cols = {"episode": vector(episode, "episode", True), "step": vector(step, "step", True)}
    cols["time"] = cols["step"].astype(np.float64) if time is None else vector(time, "time")
    if not np.isfinite(cols["time"]).all():
        raise MemoryInputError(f"{where}: time holds NaN or inf")
    cols["surprise"] = np.full(n, np.nan) if surprise is None else vector(surprise, "surprise")
    if np.isinf(cols["surprise"]).any():
        raise MemoryInputError(f"{where}: surprise holds inf (NaN means unknown and is allowed)")
    cols["action"] = matrix(action, "action", np.float32)
    cols["state"] = matrix(state, "state", np.float64)
    cols["thumbnail"] = None
    if thumbnail is not None:
        t = array(thumbnail, None)
        if t.dtype != np.uint8 or t.ndim != 4 or len(t) != n or t.shape[3] != 3:
            raise MemoryInputError(f"{where}: thumbnail must be ({n}, h, w, 3) uint8, got {t.shape} {t.dtype}")
        if thumb_size == 0:
            raise MemoryInputError(f"{where} stores no thumbnails (created with thumb_size=0)")
        cols["thumbnail"] = t
    return cols


def check_options(where: Path, dim: Any, fingerprint: Any, capacity: Any, thumb_size: Any, merge_radius: Any,
                  event_z: Any, event_window: Any, event_gap: Any = 0) -> None:
    """The options of ``MemoryStore.create``, all problems in one message."""
    def whole(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def number(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and 0 <= v < math.inf

    problems = []
    if not whole(dim) or dim < 1:
        problems.append(f"dim must be a positive integer, got {dim!r}")
    if not isinstance(fingerprint, str) or not fingerprint:
        problems.append(f"fingerprint must be a non-empty string, got {fingerprint!r}")
    if not whole(capacity) or capacity < 0:
        problems.append(f"capacity must be an integer >= 0 (0: unbounded), got {capacity!r}")
    if not whole(thumb_size) or thumb_size < 0:
        problems.append(f"thumb_size must be an integer >= 0 (0: no thumbnails), got {thumb_size!r}")
    if not number(merge_radius):
        problems.append(f"merge_radius must be a finite number >= 0, got {merge_radius!r}")
    if not number(event_z):
        problems.append(f"event_z must be a finite number >= 0, got {event_z!r}")
    if not whole(event_window) or event_window < 2:
        problems.append(f"event_window must be an integer >= 2, got {event_window!r}")
    if not whole(event_gap) or event_gap < 0:
        problems.append(f"event_gap must be an integer >= 0 (0: none), got {event_gap!r}")
    if problems:
        raise MemoryInputError(f"{where}: {'; '.join(problems)}")


def check_model(where: Path, meta: dict[str, Any], dim: int | None, fingerprint: str | None) -> None:
    """Refuse a memory built with another world model than the caller's (embedding size or fingerprint)."""
    have_dim, have_fp = int(meta["dim"]), str(meta["fingerprint"])
    if (dim is None or int(dim) == have_dim) and (fingerprint is None or fingerprint == have_fp):
        return
    if dim is None or int(dim) == have_dim:  # the same size, other weights (e.g. the run trained further)
        user = meta.get("meta")
        run = f", the run {user['run']}" if isinstance(user, dict) and user.get("run") else ""
        raise MemoryFileError(f"{where.name} was built with other weights than this model's (fingerprint "
                              f"{short(have_fp)}{run}; this model: {short(str(fingerprint))}): its embeddings are "
                              f"another model's; open it with that model, or rebuild it with this one (`worldjepa "
                              f"memory build --run RUN --data DATA --out {where} --overwrite`)")
    want = f"{dim}" + (f" ({short(fingerprint)})" if fingerprint else "")
    raise MemoryFileError(f"{where.name} was built with a model of embedding size {have_dim} (fingerprint "
                          f"{short(have_fp)}), not {want}: open it with that model or create a new memory ({where})")
