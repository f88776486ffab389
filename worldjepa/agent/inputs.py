"""What a policy is handed: frames of any size and kind, extras by keyword, goals as frames or embeddings."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import WorldJepaError

__all__ = ["check_frame"]


def check_frame(frame: Any, what: str) -> np.ndarray:
    """A frame as (H, W, 3) uint8, or a clear error (RGBA loses its alpha; floats are scaled)."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise WorldJepaError(f"{what} must be an (H, W, 3) RGB frame (or (H, W, 4) RGBA), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr)):
            raise WorldJepaError(f"{what} must hold finite numbers, got dtype {arr.dtype}")
        scale = 255.0 if arr.dtype.kind == "f" and arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    return arr[..., :3]


def _gather(info: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Extras from a policy call's keyword arguments: ``{prefix}extras={...}`` plus any
    ``{prefix}NAME=value`` (``goal_state=s`` -> ``{"state": s}``); ``None`` values are skipped."""
    out = dict(info.get(f"{prefix}extras") or {})
    out.update({k[len(prefix):]: v for k, v in info.items()
                if k.startswith(prefix) and k != f"{prefix}extras" and v is not None})
    return out


def _is_embedding(x: Any) -> bool:
    """A float vector ``(D,)`` or ``(1, D)`` (a frame is ``(H, W, 3)``, usually uint8)."""
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    kind = str(getattr(x, "dtype", np.asarray(x).dtype))
    return (len(shape) == 1 or (len(shape) == 2 and shape[0] == 1)) and "float" in kind
