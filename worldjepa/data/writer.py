"""Writing datasets: one locked writer, episodes checksummed, the new file verified, then renamed.

The layout is :mod:`worldjepa.data.dataset`'s (and docs/data.md's). A writer holds the
dataset's :class:`~worldjepa.atomic.WriterLock` (a second writer is refused, naming the first
one's pid), writes a copy of the file (``--append``) or a new one through an
:class:`~worldjepa.atomic.AtomicFile` (HDF5 never sees a failed write: a full disk is reported
as such, not as a crash), and publishes it only after reading back the episode index and the
checksums of the episodes it added.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import AtomicFile, check_replaceable
from ..locks import WriterLock
from ..errors import DatasetError, WriteError
from .dataset import FORMAT, FORMAT_VERSION, _checked, _open_h5
from .integrity import ALGORITHM, CHECKSUM_DTYPE, CHECKSUMS, checksum, text_attr, verify_episodes

__all__ = ["DatasetWriter"]
log = logging.getLogger(__name__)
VERIFY_FRAMES = 32  # new episodes whose frames are read back before the file is published


class DatasetWriter:
    """Write (or append) episodes to ``path`` atomically: use as a context manager.

    ``meta`` must hold ``env_id``, ``frame_size`` and ``action_space``; when appending, they
    must match the existing file's. On a normal exit or ``KeyboardInterrupt`` the completed
    episodes are published; on any other error the target is left as it was. ``planned``
    (episodes this writer will add) only sharpens a disk-full message.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any], append: bool = False,
                 compression: str | None = "lzf", chunk_frames: int = 4, planned: int = 0) -> None:
        self.path = Path(path)
        self.meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
        self.append = append
        self.compression = compression
        self.chunk_frames = chunk_frames
        self.planned = planned
        self.f: Any = None
        self.file: AtomicFile | None = None
        self.lock = WriterLock(self.path, f"dataset {self.path}")
        self.added = 0
        self.first_new = 0
        self._base_bytes = 0

    def __enter__(self) -> "DatasetWriter":
        self.lock.acquire()
        try:
            self._open()
        except BaseException:
            self._close_quietly()
            raise
        return self

    def _open(self) -> None:
        import h5py

        check_replaceable(self.path)
        exists = self.path.exists()
        if exists and not self.append:
            raise DatasetError(f"{self.path} exists; pass --append to add episodes or choose another --out")
        old_meta: dict[str, Any] | None = None
        if exists:
            with _open_h5(self.path) as old:
                old_meta = _checked(old, self.path)["meta"]
            for key in ("env_id", "env_kwargs", "frame_size", "action_space"):
                if old_meta.get(key) != self.meta.get(key):
                    raise DatasetError(
                        f"cannot append to {self.path}: its {key} is {old_meta.get(key)!r}, new episodes have {self.meta.get(key)!r}")
        self.file = AtomicFile(self.path).open()
        if old_meta is not None:
            self.file.copy_from(self.path)
            self._base_bytes = self.file.written
            self.meta = {**old_meta, **{k: v for k, v in self.meta.items() if k != "created"},
                         "format_version": FORMAT_VERSION,
                         "appended": old_meta.get("appended", []) + [time.strftime("%Y-%m-%dT%H:%M:%S")]}
        else:
            self.meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S"))
        self.f = h5py.File(self.file.fileobj(), "r+" if old_meta is not None else "w")
        self._check_written()
        self.first_new = self.num_episodes
        if old_meta is not None and CHECKSUMS not in self.f and self.first_new:
            self._checksum_old_episodes()
        self.f.attrs["worldjepa"] = text_attr(json.dumps(self.meta))

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
        """frames (L, H, W, 3) uint8; actions (L - 1, A) float32; extras name -> (L, ...), finite."""
        L = len(frames)
        size = self.meta["frame_size"]
        if frames.dtype != np.uint8 or frames.shape[1:] != (size, size, 3):
            raise DatasetError(f"episode frames {frames.shape} {frames.dtype}, expected (L, {size}, {size}, 3) uint8")
        if L < 2 or actions.ndim != 2 or actions.shape[0] != L - 1:
            raise DatasetError(f"an episode of {L} frames needs {L - 1} actions, got {actions.shape}")
        if not 0 <= int(seed) < 2**63:
            raise DatasetError(f"episode seed {seed} is out of range")
        padded = np.concatenate([actions.astype(np.float32), np.zeros((1, actions.shape[1]), np.float32)])
        items = {"frames": (frames, np.uint8), "actions": (padded, np.float32)}
        known = [k[len("extras/"):] for k in self._extra_names()] if self.num_episodes else list(extras)
        for name in known:
            if name not in extras:
                raise DatasetError(f"episode lacks '{name}', which earlier episodes in the file have")
            arr = np.asarray(extras[name])
            if len(arr) != L:
                raise DatasetError(f"extra '{name}' has {len(arr)} rows, the episode {L} frames")
            items[f"extras/{name}"] = (arr, np.float32 if arr.dtype == np.float32 else np.float64)
        for name, (arr, _) in items.items():
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise DatasetError(f"episode {self.num_episodes}: {name} holds NaN or inf; nothing of it was written")
        start = self.f["frames"].shape[0] if "frames" in self.f else 0
        sums = {}
        for name, (arr, dtype) in items.items():
            ds = self._dataset(name, arr, dtype)
            if ds.shape[0] != start:
                raise DatasetError(f"{self.path}: '{name}' has {ds.shape[0]} rows, expected {start}")
            stored = np.asarray(arr, ds.dtype)
            sums[name] = checksum(stored)
            ds.resize(start + L, axis=0)
            ds[start:] = stored
        self._append_index(start, L, int(seed), sums)
        self.added += 1
        self._check_written()

    def _append_index(self, start: int, length: int, seed: int, sums: dict[str, int]) -> None:
        """The episode's index rows, written after its data (an interrupted episode has none)."""
        columns = self._columns(sums)
        if CHECKSUMS not in self.f:
            self._checksum_table(columns, 0)
        for name, value in (("start", start), ("length", length), ("seed", seed)):
            ds = self._dataset(f"episodes/{name}", np.zeros((1,), np.int64), np.int64)
            ds.resize(ds.shape[0] + 1, axis=0)
            ds[-1] = value
        ds = self.f[CHECKSUMS]
        ds.resize(ds.shape[0] + 1, axis=0)
        ds[-1] = np.array([sums[c] for c in columns], CHECKSUM_DTYPE)

    def _checksum_table(self, columns: list[str], rows: int) -> Any:
        ds = self.f.create_dataset(CHECKSUMS, shape=(rows, len(columns)), maxshape=(None, len(columns)),
                                   dtype=CHECKSUM_DTYPE, chunks=(1024, len(columns)))
        ds.attrs["columns"] = text_attr(json.dumps(columns))
        ds.attrs["algorithm"] = text_attr(ALGORITHM)
        return ds

    def _columns(self, sums: dict[str, Any]) -> list[str]:
        if CHECKSUMS in self.f:
            return json.loads(self.f[CHECKSUMS].attrs["columns"])
        return sorted(sums)

    def _checksum_old_episodes(self) -> None:
        """Appending to a format-1 file (no checksums): checksum its episodes first, as they are now."""
        log.info("%s has no checksums (format 1): computing them for its %d episodes", self.path, self.first_new)
        starts, lengths = self.f["episodes/start"][:], self.f["episodes/length"][:]
        names = ["frames", "actions", *self._extra_names()]
        columns = sorted(names)
        ds = self._checksum_table(columns, len(starts))
        for e, (s, L) in enumerate(zip(starts, lengths)):
            ds[e] = np.array([checksum(self.f[c][int(s):int(s + L)]) for c in columns], CHECKSUM_DTYPE)

    def _extra_names(self) -> list[str]:
        out: list[str] = []
        if "extras" in self.f:
            self.f["extras"].visit(lambda n: out.append(f"extras/{n}") if hasattr(self.f["extras"][n], "shape") else None)
        return out

    def _trim_to_complete(self) -> None:
        """Drop the rows of an episode whose writing was interrupted (its index entry comes last)."""
        if "episodes" not in self.f:
            return
        names = [f"episodes/{k}" for k in ("start", "length", "seed")] + ([CHECKSUMS] if CHECKSUMS in self.f else [])
        n = min(self.f[k].shape[0] for k in names)
        for k in names:
            self.f[k].resize(n, axis=0)
        end = int(self.f["episodes/start"][n - 1] + self.f["episodes/length"][n - 1]) if n else 0
        for name in ["frames", "actions", *self._extra_names()]:
            if self.f[name].shape[0] > end:
                self.f[name].resize(end, axis=0)

    def _check_written(self) -> None:
        """Stop at the first failed write (a full disk): nothing more is worth writing."""
        if self.file is not None and self.file.failure is not None:
            per_episode = (self.file.written - self._base_bytes) / max(1, self.added)
            self.file.need = int(self.file.written + per_episode * max(0, self.planned - self.added))
            raise self.file._error(self.file.failure)

    def _verify(self, file: AtomicFile) -> None:
        """Read the new file back from disk: its structure and episode count, the action and extras
        checksums of every episode this writer added (and of the last one before them), and the
        frame checksums of up to :data:`VERIFY_FRAMES` of them, evenly spaced, the first and last
        included (decompressing every frame again would add a sixth to the collection's time)."""
        import h5py

        expected = self.first_new + self.added
        new = range(max(0, self.first_new - 1), expected)
        sample = np.unique(np.linspace(new.start, new.stop - 1, min(VERIFY_FRAMES, len(new))).astype(int))
        try:
            with h5py.File(file.reader(), "r") as f:
                info = _checked(f, self.path)
                problems = verify_episodes(f, info, new, ("actions", "extras")) + \
                    verify_episodes(f, info, sample.tolist(), ("frames",))
        except DatasetError as e:
            raise WriteError(f"the new {self.path} did not read back ({e}); {self.path} was left as it was") from None
        if len(info["starts"]) != expected or problems:
            what = problems[0] if problems else f"{len(info['starts'])} episodes, expected {expected}"
            raise WriteError(f"the new {self.path} did not read back correctly ({what}); "
                             f"{self.path} was left as it was")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        publish = exc_type is None or (issubclass(exc_type, KeyboardInterrupt) and self.added > 0)
        try:
            if publish:
                self._trim_to_complete()
                self.f.attrs["worldjepa"] = text_attr(json.dumps(self.meta))
            self.f.close()
            self.f = None
            if publish and self.added > 0:
                self._check_written()
                self.file.commit(self._verify)  # type: ignore[union-attr]
        finally:
            self._close_quietly()

    def _close_quietly(self) -> None:
        """Discard whatever was not published and release the lock (after any error)."""
        try:
            if self.f is not None:
                try:
                    self.f.close()
                except Exception:  # the file is discarded anyway
                    pass
                self.f = None
            if self.file is not None:
                self.file.discard()
        finally:
            self.lock.release()
