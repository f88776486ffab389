"""Training windows: T frames at a stride (frame-skip) from one episode, never across two.

A window starting at frame ``s`` holds frames ``s, s + k, ..., s + (T - 1) k`` (``k`` the
frame-skip), and for each of its T steps the ``k`` actions applied between that frame and the
next, concatenated into one "macro" action of ``k * A`` values (zeros past the episode's
end, only for the last step, whose action no loss uses). Extras (e.g. ``state``) are taken at
the window's frames.

Reading is lazy (HDF5 chunks through a cache) unless the frames fit in ``max_memory_mb``,
in which case they are loaded once, which is what small CPU runs want.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DatasetError
from .dataset import Dataset


class WindowDataset:
    """Windows of one split of a dataset file; indexable, and with a fast ``sample`` of batches.

    Items are dicts of numpy arrays: ``frames (T, H, W, 3) uint8``, ``actions (T, k*A)
    float32`` and each requested extra ``(T, ...)``. A torch ``DataLoader`` can wrap it
    (each worker reopens the file).
    """

    def __init__(self, path: str | Path, split: str | None = "train", num_frames: int = 4, frameskip: int = 1,
                 extras: Sequence[str] = ("state",), max_memory_mb: float = 2048, split_seed: int = 0,
                 val: float = 0.1, test: float = 0.1) -> None:
        if num_frames < 1 or frameskip < 1:
            raise DatasetError(f"num_frames ({num_frames}) and frameskip ({frameskip}) must be >= 1")
        self.path, self.split = Path(path), split
        self.T, self.k = num_frames, frameskip
        self._split_args = dict(val=val, test=test, split_seed=split_seed)
        ds = Dataset(path, **self._split_args)
        self.meta, self.frame_size, self.action_dim = ds.meta, ds.frame_size, ds.action_dim
        missing = [e for e in extras if e not in ds.extras]
        if missing:
            raise DatasetError(f"{path} has no extra(s) {missing}; it has {ds.extras or 'none'}")
        self.extras = list(extras)
        span = (num_frames - 1) * frameskip + 1
        starts, lengths = ds.starts, ds.lengths
        eps = ds.episode_ids(split)
        if len(eps) == 0:
            raise DatasetError(f"{path}: the '{split}' split is empty ({ds.num_episodes} episodes); collect more episodes")
        self.episodes = eps
        per_ep = [np.arange(starts[e], starts[e] + lengths[e] - span + 1) for e in eps if lengths[e] >= span]
        if not per_ep:
            raise DatasetError(f"{path}: no episode in '{split}' has the {span} frames a window of "
                               f"{num_frames} frames at frame-skip {frameskip} needs")
        self.window_starts = np.concatenate(per_ep)  # (W,) global frame index of each window
        # the frame index one past the end of each window's episode, for action padding
        ends = np.concatenate([np.full(lengths[e] - span + 1, starts[e] + lengths[e]) for e in eps if lengths[e] >= span])
        self.episode_ends = ends
        nbytes = ds.num_frames * self.frame_size ** 2 * 3
        self.in_memory = nbytes <= max_memory_mb * 2**20
        self._arrays: dict[str, Any] | None = None
        if self.in_memory:
            self._arrays = {"frames": ds.f["frames"][:], "actions": ds.f["actions"][:]}
            for e in self.extras:
                self._arrays[e] = ds.f["extras"][e][:]
            ds.close()
            self._ds = None
        else:
            self._ds = ds

    def __len__(self) -> int:
        return len(self.window_starts)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_ds"] = None  # h5py handles do not cross processes; reopened lazily
        return state

    def _source(self) -> dict[str, Any]:
        if self._arrays is not None:
            return self._arrays
        if self._ds is None:
            self._ds = Dataset(self.path, **self._split_args)
        f = self._ds.f
        return {"frames": f["frames"], "actions": f["actions"], **{e: f["extras"][e] for e in self.extras}}

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        s = int(self.window_starts[i])
        end = int(self.episode_ends[i])
        src = self._source()
        span = (self.T - 1) * self.k + 1
        out = {"frames": src["frames"][s:s + span][:: self.k]}  # (T, H, W, 3)
        a_end = min(s + self.T * self.k, end)
        acts = np.zeros((self.T * self.k, self.action_dim), np.float32)
        acts[: a_end - s] = src["actions"][s:a_end]
        out["actions"] = acts.reshape(self.T, self.k * self.action_dim)  # (T, k*A)
        for e in self.extras:
            out[e] = src[e][s:s + span][:: self.k]
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A batch of random windows, stacked: frames (B, T, H, W, 3), actions (B, T, k*A), ...

        Vectorised gather when in memory; window by window (in file order) when lazy.
        """
        idx = rng.integers(0, len(self), batch_size)
        if self._arrays is None:
            items = [self[int(i)] for i in np.sort(idx)]
            return {k: np.stack([it[k] for it in items]) for k in items[0]}
        src = self._arrays
        s = self.window_starts[idx]  # (B,)
        fidx = s[:, None] + self.k * np.arange(self.T)[None, :]  # (B, T)
        out = {"frames": src["frames"][fidx]}  # (B, T, H, W, 3)
        aidx = s[:, None] + np.arange(self.T * self.k)[None, :]  # (B, T*k)
        valid = aidx < (self.episode_ends[idx, None] - 1)
        acts = src["actions"][np.minimum(aidx, len(src["actions"]) - 1)] * valid[..., None]  # (B, T*k, A)
        out["actions"] = acts.reshape(batch_size, self.T, self.k * self.action_dim).astype(np.float32)
        for e in self.extras:
            out[e] = src[e][fidx]
        return out
