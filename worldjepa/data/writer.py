"""Writing datasets: episodes appended to a temporary copy, published by an atomic rename.

The layout is :mod:`worldjepa.data.dataset`'s (and docs/data.md's).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError
from .dataset import FORMAT, FORMAT_VERSION, _open_h5, read_meta

__all__ = ["DatasetWriter"]


class DatasetWriter:
    """Write (or append) episodes to ``path`` atomically: use as a context manager.

    ``meta`` must hold ``env_id``, ``frame_size`` and ``action_space``; when appending, they
    must match the existing file's. On a normal exit or ``KeyboardInterrupt`` the completed
    episodes are published; on any other error the target is left as it was.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], append: bool = False,
                 compression: str | None = "lzf", chunk_frames: int = 4) -> None:
        self.path = Path(path)
        self.meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
        self.append = append
        self.compression = compression
        self.chunk_frames = chunk_frames
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.f: Any = None
        self.added = 0

    def __enter__(self) -> "DatasetWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmps(self.path)
        if self.path.exists():
            if not self.append:
                raise DatasetError(f"{self.path} exists; pass --append to add episodes or choose another --out")
            with _open_h5(self.path) as old:
                old_meta = read_meta(old, self.path)
            for key in ("env_id", "env_kwargs", "frame_size", "action_space"):
                if old_meta.get(key) != self.meta.get(key):
                    raise DatasetError(
                        f"cannot append to {self.path}: its {key} is {old_meta.get(key)!r}, new episodes have {self.meta.get(key)!r}")
            shutil.copyfile(self.path, self.tmp)
            self.f = _open_h5(self.tmp, "a")
            self.meta = {**old_meta, **{k: v for k, v in self.meta.items() if k != "created"},
                         "appended": old_meta.get("appended", []) + [time.strftime("%Y-%m-%dT%H:%M:%S")]}
        else:
            self.f = _open_h5(self.tmp, "w")
            self.meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.f.attrs["worldjepa"] = json.dumps(self.meta)
        return self

    @property
    def num_episodes(self) -> int:
        return int(self.f["episodes/start"].shape[0]) if "episodes" in self.f else 0

    def _dataset(self, name: str, sample: np.ndarray, dtype: Any) -> Any:
        if name in self.f:
            ds = self.f[name]
            if ds.shape[1:] != sample.shape[1:]:
                raise DatasetError(f"{name}: new episode has shape {sample.shape[1:]}, file has {ds.shape[1:]}")
            return ds
        kw: dict[str, Any] = {}
        if name == "frames":
            kw = {"chunks": (self.chunk_frames, *sample.shape[1:]), "compression": self.compression}
        elif sample.ndim >= 1:
            kw = {"chunks": (1024, *sample.shape[1:])}
        return self.f.create_dataset(name, shape=(0, *sample.shape[1:]), maxshape=(None, *sample.shape[1:]), dtype=dtype, **kw)

    def add_episode(self, frames: np.ndarray, actions: np.ndarray, extras: dict[str, np.ndarray], seed: int) -> None:
        """frames (L, H, W, 3) uint8; actions (L - 1, A) float32; extras name -> (L, ...)."""
        L = len(frames)
        size = self.meta["frame_size"]
        if frames.dtype != np.uint8 or frames.shape[1:] != (size, size, 3):
            raise DatasetError(f"episode frames {frames.shape} {frames.dtype}, expected (L, {size}, {size}, 3) uint8")
        if L < 2 or actions.shape[0] != L - 1:
            raise DatasetError(f"an episode of {L} frames needs {L - 1} actions, got {actions.shape[0]}")
        padded = np.concatenate([actions.astype(np.float32), np.zeros((1, actions.shape[1]), np.float32)])
        items = {"frames": (frames, np.uint8), "actions": (padded, np.float32)}
        known = [k[len("extras/"):] for k in self._extra_names()] if self.num_episodes else list(extras)
        for name in known:
            if name not in extras:
                raise DatasetError(f"episode lacks '{name}', which earlier episodes in the file have")
            arr = np.asarray(extras[name])
            items[f"extras/{name}"] = (arr, np.float32 if arr.dtype == np.float32 else np.float64)
        start = self.f["frames"].shape[0] if "frames" in self.f else 0
        for name, (arr, dtype) in items.items():
            ds = self._dataset(name, arr, dtype)
            if ds.shape[0] != start:
                raise DatasetError(f"{self.path}: '{name}' has {ds.shape[0]} rows, expected {start}")
            ds.resize(start + L, axis=0)
            ds[start:] = arr
        for name, value in (("start", start), ("length", L), ("seed", seed)):
            ds = self._dataset(f"episodes/{name}", np.zeros((1,), np.int64), np.int64)
            ds.resize(ds.shape[0] + 1, axis=0)
            ds[-1] = value
        self.added += 1

    def _extra_names(self) -> list[str]:
        out: list[str] = []
        if "extras" in self.f:
            self.f["extras"].visit(lambda n: out.append(f"extras/{n}") if hasattr(self.f["extras"][n], "shape") else None)
        return out

    def _trim_to_complete(self) -> None:
        """Drop the rows of an episode whose writing was interrupted (its index entry comes last)."""
        if "episodes" not in self.f:
            return
        n = min(self.f[f"episodes/{k}"].shape[0] for k in ("start", "length", "seed"))
        for k in ("start", "length", "seed"):
            self.f[f"episodes/{k}"].resize(n, axis=0)
        end = int(self.f["episodes/start"][n - 1] + self.f["episodes/length"][n - 1]) if n else 0
        for name in ["frames", "actions", *self._extra_names()]:
            if self.f[name].shape[0] > end:
                self.f[name].resize(end, axis=0)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        publish = exc_type is None or (exc_type is KeyboardInterrupt and self.added > 0)
        try:
            if publish:
                self._trim_to_complete()
            self.f.flush()
            self.f.close()
        finally:
            if publish and self.num_episodes_on_disk() > 0:
                os.replace(self.tmp, self.path)
            elif self.tmp.exists():
                self.tmp.unlink()

    def num_episodes_on_disk(self) -> int:
        try:
            with _open_h5(self.tmp) as f:
                return int(f["episodes/start"].shape[0]) if "episodes" in f else 0
        except DatasetError:
            return 0


def _remove_stale_tmps(path: Path) -> None:
    """Delete temporary files left by killed writers of ``path`` (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass
