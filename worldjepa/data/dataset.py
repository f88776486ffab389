"""The dataset format: many episodes in one HDF5 file, and a lazy reader of training windows.

Layout of a file (all arrays concatenated over episodes; ``N`` frames in total)::

    frames            (N, H, W, 3) uint8, chunked and compressed
    actions           (N, A) float32; actions[t] is applied at frame t, so the last row of
                      every episode is zero padding (an episode of L frames has L - 1 actions)
    extras/<name>     (N, ...) whatever state the env exposes: "state" (info["state"]),
                      "obs" (the observation vector), "info/<key>" (numeric info entries)
    episodes/start    (E,) int64   first frame of each episode
    episodes/length   (E,) int64   frames in each episode
    episodes/seed     (E,) int64   reset seed (replaying the actions from it gives the frames)
    attrs["worldjepa"] JSON metadata: format version, env id, frame size, action space,
                      policy, library version, the collect config

Writes (:class:`~worldjepa.data.writer.DatasetWriter`) go to a hidden temporary file next to
the target and are renamed over it only when complete, so a killed process leaves the
previous file (or none), never a corrupt one. Every field: docs/data.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import DatasetError
from .integrity import FORMAT, FORMAT_VERSION  # noqa: F401 (the format is defined beside its checks)

SPLITS = ("train", "val", "test")


def _open_h5(path: str | Path, mode: str = "r", **kw: Any) -> Any:
    import h5py

    p = Path(path)
    if mode == "r" and not p.exists():
        raise DatasetError(f"dataset not found: {p}")
    if mode == "r" and p.is_dir():
        raise DatasetError(f"{p} is a directory, not a dataset file")
    try:
        return h5py.File(p, mode, **kw)
    except (OSError, RuntimeError, ValueError) as e:
        msg = str(e)
        why = "truncated" if "truncated" in msg else "not an HDF5 file or is corrupt"
        raise DatasetError(f"{p} is {why} ({msg.splitlines()[0]})") from None


def read_meta(f: Any, path: str | Path = "") -> dict[str, Any]:
    """The checked ``worldjepa`` metadata of an open file."""
    from .integrity import parse_meta

    return parse_meta(f.attrs.get("worldjepa"), path)


def _checked(f: Any, path: Path) -> dict[str, Any]:
    """:func:`~worldjepa.data.integrity.check_structure`, with HDF5's own errors on a damaged file
    turned into a :class:`DatasetError`."""
    from .integrity import check_structure

    try:
        return check_structure(f, path)
    except DatasetError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"{path} is damaged: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def split_assignment(num_episodes: int, val: float = 0.1, test: float = 0.1, seed: int = 0) -> np.ndarray:
    """Split of each episode (0 train, 1 val, 2 test), fixed by ``seed`` and stable under appends.

    Episodes are taken in blocks of 10; each block is shuffled by ``(seed, block)`` and its
    first ``round(10 * test)`` members go to test, the next ``round(10 * val)`` to validation.
    An episode's split therefore never changes when more episodes are appended.
    """
    n_test, n_val = round(10 * test), round(10 * val)
    if n_test + n_val > 10 or min(val, test) < 0:
        raise DatasetError(f"split fractions val={val}, test={test} are invalid")
    out = np.zeros(num_episodes, np.int64)
    for b in range(0, num_episodes, 10):
        perm = np.random.default_rng([seed, b // 10]).permutation(10)
        labels = np.zeros(10, np.int64)
        labels[perm[:n_test]] = 2
        labels[perm[n_test:n_test + n_val]] = 1
        out[b:b + 10] = labels[: min(10, num_episodes - b)]
    return out


class Dataset:
    """Read-only view of a dataset file: metadata, episodes, splits and the arrays (lazy: nothing
    is loaded until asked for).

    Rows are global frame indices (``0 .. num_frames - 1``, episodes stored one after the
    other); :meth:`rows` gives an episode's or a split's. Readers: :meth:`read_frames`,
    :meth:`read_actions`, :meth:`read_extra`, :meth:`episode`; shapes per frame:
    :attr:`shapes`; identity of the content: :meth:`fingerprint`.
    """

    def __init__(self, path: str | Path, val: float = 0.1, test: float = 0.1, split_seed: int = 0) -> None:
        self.path = Path(path)
        self._f = _open_h5(self.path, rdcc_nbytes=64 * 2**20)
        try:
            info = _checked(self._f, self.path)
        except BaseException:
            self._f.close()
            raise
        self._info = info
        self.meta, self.extras = info["meta"], info["extras"]
        self.starts, self.lengths, self.seeds = info["starts"], info["lengths"], info["seeds"]
        self.splits = split_assignment(len(self.starts), val, test, split_seed)

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._f.close()

    @property
    def has_checksums(self) -> bool:
        """Whether the file records per-episode checksums (format 2; files of format 1 do not)."""
        return self._info["checksums"] is not None

    def verify(self, episodes: Any = None, columns: Any = None) -> list[str]:
        """Recompute the checksums of ``episodes`` (default: all) for ``columns`` (``"frames"``,
        ``"actions"``, ``"extras"`` or ``"extras/<name>"``; default: all), and look for NaN or
        inf in actions and extras. Returns one line per problem; empty when all is well."""
        from .integrity import nonfinite, verify_episodes

        names = ["actions", *(f"extras/{k}" for k in self.extras)]
        names = [n for n in names if columns is None or n in columns or n.split("/")[0] in columns]
        try:
            return verify_episodes(self._f, self._info, episodes, columns) + nonfinite(self._f, names, self.starts)
        except (OSError, RuntimeError) as e:
            raise DatasetError(f"{self.path} cannot be read, the file is damaged ({str(e).splitlines()[0]})") from None

    def check(self, frame_episodes: int = 32) -> None:
        """What ``train`` and ``pretrain`` check before their first step, in about the time it takes
        to read the actions: every episode's action and extras checksums, the frame checksums of up
        to ``frame_episodes`` evenly spaced episodes, no NaN or inf in actions and extras. Raises
        :class:`DatasetError` naming the first problem (``worldjepa info --verify`` lists all)."""
        problems = self.verify(columns=("actions", "extras"))
        sample = np.unique(np.linspace(0, self.num_episodes - 1, min(frame_episodes, self.num_episodes)).astype(int))
        problems += self.verify(sample, columns=("frames",)) if self.num_episodes else []
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DatasetError(f"{self.path} fails its integrity check: {problems[0]}{more}; "
                               f"`worldjepa info --verify {self.path}` lists every problem")

    @property
    def env_id(self) -> str:
        return self.meta["env_id"]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """The env's keyword arguments at collection (``collect --env-kwargs``), ``{}`` if none."""
        return dict(self.meta.get("env_kwargs") or {})

    @property
    def frame_size(self) -> int:
        return int(self.meta["frame_size"])

    @property
    def action_dim(self) -> int:
        return int(self.meta["action_space"]["dim"])

    @property
    def num_episodes(self) -> int:
        return len(self.starts)

    @property
    def num_frames(self) -> int:
        return int(self._f["frames"].shape[0])

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of one frame's entry per array: ``{"frames": (H, W, 3), "actions": (A,),
        "<extra>": (...), ...}`` (the arrays hold ``num_frames`` of them)."""
        out = {"frames": tuple(self._f["frames"].shape[1:]), "actions": tuple(self._f["actions"].shape[1:])}
        out.update({k: tuple(self._f["extras"][k].shape[1:]) for k in self.extras})
        return out

    def rows(self, episodes: Any = None) -> np.ndarray:
        """The global frame rows of ``episodes`` (ids, in the given order; default: all), increasing within each."""
        ids = np.arange(self.num_episodes) if episodes is None else np.asarray(episodes, np.int64).reshape(-1)
        if len(ids) == 0:
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(self.starts[e], self.starts[e] + self.lengths[e]) for e in ids])

    def read_frames(self, rows: Any = None) -> np.ndarray:
        """Frames ``(N, H, W, 3)`` uint8 at ``rows`` (a slice, or increasing indices; default: all)."""
        return self._read(self._f["frames"], rows)

    def read_actions(self, rows: Any = None) -> np.ndarray:
        """Actions ``(N, A)`` float32 at ``rows`` (the last row of every episode is zero padding)."""
        return self._read(self._f["actions"], rows)

    def read_extra(self, name: str, rows: Any = None) -> np.ndarray:
        """Extra ``name`` (e.g. ``"state"``) at ``rows``: ``(N, ...)``."""
        if name not in self.extras:
            raise DatasetError(f"{self.path} has no extra {name!r}; it has {', '.join(self.extras) or 'none'}")
        return self._read(self._f["extras"][name], rows)

    def _read(self, array: Any, rows: Any) -> np.ndarray:
        try:
            return self._read_rows(array, rows)
        except (OSError, RuntimeError) as e:  # a damaged chunk
            raise DatasetError(f"{self.path}: {array.name.lstrip('/')} cannot be read, the file is damaged "
                               f"({str(e).splitlines()[0]})") from None

    def _read_rows(self, array: Any, rows: Any) -> np.ndarray:
        if rows is None:
            return array[:]
        if isinstance(rows, slice):
            return array[rows]
        rows = np.asarray(rows, np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= array.shape[0]):
            raise DatasetError(f"rows out of range: {self.path} holds {array.shape[0]} frames")
        if rows.size > 1 and np.any(np.diff(rows) <= 0):  # HDF5 reads increasing indices: sort, then undo
            uniq, inverse = np.unique(rows, return_inverse=True)
            return array[uniq][inverse]
        return array[rows]

    def episode_info(self, i: int) -> dict[str, Any]:
        """Episode ``i``'s first row, length, reset seed and split."""
        if not 0 <= i < self.num_episodes:
            raise DatasetError(f"episode {i} out of range: {self.path} has {self.num_episodes}")
        return {"episode": int(i), "start": int(self.starts[i]), "length": int(self.lengths[i]),
                "seed": int(self.seeds[i]), "split": SPLITS[int(self.splits[i])]}

    def fingerprint(self) -> dict[str, Any]:
        """Path, episodes, frames and a SHA-256 of the episode table, all actions and up to 64
        evenly spaced frames: changes whenever the data a model saw changes, in about a second."""
        import hashlib

        f = self._f
        h = hashlib.sha256()
        for name in ("episodes/start", "episodes/length", "episodes/seed", "actions"):
            h.update(np.ascontiguousarray(f[name][:]).tobytes())
        for i in np.linspace(0, self.num_frames - 1, min(64, self.num_frames)).astype(int):
            h.update(np.ascontiguousarray(f["frames"][int(i)]).tobytes())
        return {"path": str(self.path.resolve()), "episodes": self.num_episodes, "frames": self.num_frames,
                "sha256": h.hexdigest()[:16]}

    def episode_ids(self, split: str | None = None) -> np.ndarray:
        if split is None:
            return np.arange(self.num_episodes)
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return np.flatnonzero(self.splits == SPLITS.index(split))

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i``: frames (L, H, W, 3), actions (L - 1, A), seed, and every extra (L, ...)."""
        if not 0 <= i < self.num_episodes:
            raise DatasetError(f"episode {i} out of range: {self.path} has {self.num_episodes}")
        s, L = int(self.starts[i]), int(self.lengths[i])
        rows = slice(s, s + L)
        out = {"frames": self.read_frames(rows), "actions": self.read_actions(slice(s, s + L - 1)),
               "seed": np.int64(self.seeds[i])}
        for k in self.extras:
            out[k] = self.read_extra(k, rows)
        return out

    def iter_episodes(self, split: str | None = None) -> Iterator[dict[str, np.ndarray]]:
        for i in self.episode_ids(split):
            yield self.episode(int(i))


def summarize(path: str | Path) -> dict[str, Any]:
    """A JSON-ready summary: episodes, steps, shapes, sizes, splits and metadata."""
    with Dataset(path) as ds:
        f = ds._f
        stored = sum(f[k].id.get_storage_size() for k in ("frames", "actions"))
        shapes = {"frames": list(f["frames"].shape), "actions": list(f["actions"].shape)}
        shapes.update({f"extras/{k}": list(f["extras"][k].shape) for k in ds.extras})
        splits = {s: int((ds.splits == i).sum()) for i, s in enumerate(SPLITS)}
        return {
            "path": str(path),
            "env_id": ds.env_id,
            "episodes": ds.num_episodes,
            "frames": ds.num_frames,
            "steps": int(ds.lengths.sum() - ds.num_episodes),
            "episode_length": {"min": int(ds.lengths.min()), "mean": float(ds.lengths.mean()), "max": int(ds.lengths.max())}
            if ds.num_episodes else {},
            "frame_size": ds.frame_size,
            "action_space": ds.meta["action_space"],
            "shapes": shapes,
            "extras": ds.extras,
            "checksums": ds.has_checksums,
            "splits": splits,
            "file_bytes": Path(path).stat().st_size,
            "frames_raw_bytes": int(np.prod(f["frames"].shape)),
            "stored_bytes": int(stored),
            "meta": {k: v for k, v in ds.meta.items() if k not in ("action_space",)},
        }

