"""Training windows: T frames at a stride (frame-skip) from one episode, never across two.

A window starting at frame ``s`` holds frames ``s, s + k, ..., s + (T - 1) k`` (``k`` the
frame-skip), and for each of its T steps the ``k`` actions applied between that frame and the
next, concatenated into one "macro" action of ``k * A`` values (zeros past the episode's
end, only for the last step, whose action no loss uses). Extras (e.g. ``state``) are taken at
the window's frames.

Frames are read lazily (HDF5 chunks through a 256 MB decompressed-chunk cache) unless they
fit in ``max_memory_mb``, in which case they are loaded once, which is what small CPU runs
want; actions and extras, a thousand times smaller, are always loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

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
                 val: float = 0.1, test: float = 0.1, stride: int = 1) -> None:
        if num_frames < 1 or frameskip < 1 or stride < 1:
            raise DatasetError(f"num_frames ({num_frames}), frameskip ({frameskip}) and stride ({stride}) "
                               f"must be >= 1")
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
        self._split_rows = np.concatenate([np.arange(starts[e], starts[e] + lengths[e]) for e in eps])
        # window starts every `stride` frames of an episode (its first frame included)
        long_enough = [e for e in eps if lengths[e] >= span]
        per_ep = [np.arange(starts[e], starts[e] + lengths[e] - span + 1, stride) for e in long_enough]
        if not per_ep:
            raise DatasetError(f"{path}: no episode in '{split}' has the {span} frames a window of "
                               f"{num_frames} frames at frame-skip {frameskip} needs")
        self.window_starts = np.concatenate(per_ep)  # (W,) global frame index of each window
        # the frame index one past the end of each window's episode, for action padding
        self.episode_ends = np.concatenate([np.full(len(p), starts[e] + lengths[e]) for p, e in zip(per_ep, long_enough)])
        nbytes = ds.num_frames * self.frame_size ** 2 * 3
        self.in_memory = nbytes <= max_memory_mb * 2**20
        # actions and extras are ~1000x smaller than frames: always in memory
        self._small = {"actions": ds.read_actions(), **{e: ds.read_extra(e) for e in self.extras}}
        self._frames: Any = ds.read_frames() if self.in_memory else None
        ds.close()
        self._reader: Any = None
        self._features: np.ndarray | None = None

    def cache_features(self, fn: Callable[[np.ndarray], np.ndarray], batch_size: int = 512) -> None:
        """Replace frames by ``fn(frames)`` (``(N, H, W, 3)`` uint8 -> ``(N, E)``) for every frame
        a window of this split holds, computed once: batches then carry ``features (B, T, E)``
        instead of ``frames``. For a frozen encoder, whose output never changes during training.
        With ``stride == frameskip`` that is one frame in ``frameskip``."""
        rows = self.window_rows  # increasing: h5py reads them in one pass when lazy
        ds = None if self._frames is not None else Dataset(self.path, **self._split_args)
        feats: np.ndarray | None = None
        try:
            for i in range(0, len(rows), batch_size):
                r = rows[i:i + batch_size]
                out = np.asarray(fn(self._frames[r] if ds is None else ds.read_frames(r)), np.float32)  # (n, E)
                if feats is None:
                    feats = np.zeros((len(self._small["actions"]), out.shape[-1]), np.float32)
                feats[r] = out
        finally:
            if ds is not None:
                ds.close()
        self._features = feats

    def __len__(self) -> int:
        return len(self.window_starts)

    @property
    def window_rows(self) -> np.ndarray:
        """The global frame indices some window holds, increasing."""
        return np.unique(self.window_starts[:, None] + self.k * np.arange(self.T)[None, :])

    @property
    def num_split_frames(self) -> int:
        """Frames in this split's episodes."""
        return len(self._split_rows)

    def extras_arrays(self) -> dict[str, np.ndarray]:
        """Every frame's loaded extras in this split's episodes: ``{name: (N, ...)}``."""
        return {e: self._small[e][self._split_rows] for e in self.extras}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_reader"] = None  # h5py handles do not cross processes; reopened lazily
        return state

    def _read_frames(self, s: int) -> np.ndarray:
        """Frames s, s + k, ... (T of them) as (T, H, W, 3) uint8, from memory or the file."""
        if self._frames is not None:
            return self._frames[s:s + (self.T - 1) * self.k + 1:self.k]
        if self._reader is None:
            self._reader = _FrameReader(self.path, self.T, self.k, self.frame_size)
        return self._reader.read(s)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        s = int(self.window_starts[i])
        end = int(self.episode_ends[i])
        span = (self.T - 1) * self.k + 1
        out = {"frames": self._read_frames(s)}  # (T, H, W, 3)
        a_end = min(s + self.T * self.k, end)
        acts = np.zeros((self.T * self.k, self.action_dim), np.float32)
        acts[: a_end - s] = self._small["actions"][s:a_end]
        out["actions"] = acts.reshape(self.T, self.k * self.action_dim)  # (T, k*A)
        for e in self.extras:
            out[e] = self._small[e][s:s + span:self.k]
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A batch of random windows, stacked: frames (B, T, H, W, 3), actions (B, T, k*A), ...
        (:meth:`gather` of :meth:`draw`)."""
        return self.gather(self.draw(batch_size, rng))

    def draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """``(B,)`` indices of random windows (uniform, with replacement)."""
        return rng.integers(0, len(self), batch_size)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The windows ``idx`` ``(B,)``, stacked: frames (B, T, H, W, 3), actions (B, T, k*A), ...

        Vectorised gather when in memory; window by window (in file order) when lazy.
        """
        batch_size = len(idx)
        s = self.window_starts[idx]  # (B,)
        fidx = s[:, None] + self.k * np.arange(self.T)[None, :]  # (B, T)
        out: dict[str, np.ndarray]
        if self._features is not None:
            out = {"features": self._features[fidx]}  # (B, T, E)
        elif self._frames is not None:
            out = {"frames": self._frames[fidx]}  # (B, T, H, W, 3)
        else:
            order = np.argsort(s)  # file order: neighbouring windows share cached chunks
            frames = np.empty((batch_size, self.T, self.frame_size, self.frame_size, 3), np.uint8)
            for b in order:
                frames[b] = self._read_frames(int(s[b]))
            out = {"frames": frames}
        aidx = s[:, None] + np.arange(self.T * self.k)[None, :]  # (B, T*k)
        valid = aidx < (self.episode_ends[idx, None] - 1)
        acts = self._small["actions"][np.minimum(aidx, len(self._small["actions"]) - 1)] * valid[..., None]  # (B, T*k, A)
        out["actions"] = acts.reshape(batch_size, self.T, self.k * self.action_dim).astype(np.float32)
        for e in self.extras:
            out[e] = self._small[e][fidx]
        return out


class _FrameReader:
    """Reads one window's frames with a reused HDF5 hyperslab (no per-call h5py overhead)."""

    def __init__(self, path: Path, T: int, k: int, size: int) -> None:
        import h5py

        self.f = h5py.File(path, "r", rdcc_nbytes=256 * 2**20, rdcc_nslots=100_003)
        self.dsid = self.f["frames"].id
        self.fspace = self.dsid.get_space()
        self.mspace = h5py.h5s.create_simple((T, size, size, 3))
        self.count, self.stride = (T, size, size, 3), (k, 1, 1, 1)

    def read(self, s: int) -> np.ndarray:
        out = np.empty(self.count, np.uint8)
        self.fspace.select_hyperslab((s, 0, 0, 0), self.count, self.stride)
        self.dsid.read(self.mspace, self.fspace, out)
        return out
