"""What makes a dataset file trustworthy: its structure checked on every open, and per-episode checksums.

:func:`check_structure` validates, from the metadata and the episode table alone (no frame is
read), everything a reader relies on: the metadata's fields and their types, every array's
kind, shape and dtype, and an episode index that tiles the rows exactly. Anything else is a
:class:`~worldjepa.errors.DatasetError` naming the problem, never an internal error.

Checksums (format 2): ``episodes/checksum`` ``(E, C)`` uint32 holds, for every episode and
column (``frames``, ``actions``, ``extras/<name>``, in the order listed by the array's
``columns`` attribute), the CRC-32 (:func:`checksum`, zlib's) of the episode's rows of that
array as stored (C order, little-endian). A CRC catches changed bytes (a damaged disk, a bad
copy, a stray write), at 2 GB/s on one core; it is no defence against someone who rewrites the
file on purpose, who can recompute it. :func:`verify_episodes` recomputes them.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Iterable

import numpy as np

from ..errors import DatasetError

FORMAT = "worldjepa-dataset"
FORMAT_VERSION = 2  # 2: per-episode checksums (episodes/checksum); 1 is still read
CHECKSUMS = "episodes/checksum"
ALGORITHM = "crc32"
CHECKSUM_DTYPE = np.uint32
INDEX = ("episodes/start", "episodes/length", "episodes/seed")
MAX_FRAME_SIZE = 4096
MAX_ACTION_DIM = 2**16


def checksum(arr: np.ndarray) -> int:
    """CRC-32 (zlib's) of an array's bytes (C order, little-endian), an unsigned 32-bit integer."""
    a = np.ascontiguousarray(arr)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return zlib.crc32(a.view(np.uint8).reshape(-1).data)


def text_attr(text: str) -> Any:
    """An attribute value for ``text``: fixed-length bytes, kept inline in the object's header.
    (h5py stores a ``str`` as a variable-length string in HDF5's global heap, and a damaged
    heap reference makes HDF5 itself loop forever: found by the fuzz of a format-2 file.)"""
    data = text.encode()
    return np.bytes_(data) if len(data) < 32768 else text  # larger than an object header holds


def parse_meta(raw: Any, path: Any) -> dict[str, Any]:
    """The ``worldjepa`` attribute of a file as a checked dict."""
    if raw is None:
        raise DatasetError(f"{path} is an HDF5 file but not a worldjepa dataset (no 'worldjepa' metadata)")
    if isinstance(raw, (bytes, np.bytes_)):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str):
        raise DatasetError(f"{path}: its 'worldjepa' metadata is not a JSON string")
    try:
        meta = json.loads(raw)
    except ValueError as e:
        raise DatasetError(f"{path}: its 'worldjepa' metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{path}: its 'worldjepa' metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise DatasetError(f"{path}: unknown format {meta.get('format')!r}")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise DatasetError(f"{path}: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise DatasetError(f"{path}: written by a newer worldjepa (format {version})")
    if not isinstance(meta.get("env_id"), str) or not meta["env_id"]:
        raise DatasetError(f"{path}: its metadata has no env_id")
    size = meta.get("frame_size")
    if not _int_in(size, 1, MAX_FRAME_SIZE):
        raise DatasetError(f"{path}: frame_size {size!r} is not an integer in [1, {MAX_FRAME_SIZE}]")
    space = meta.get("action_space")
    dim = space.get("dim") if isinstance(space, dict) else None
    if not _int_in(dim, 1, MAX_ACTION_DIM):
        raise DatasetError(f"{path}: its action_space {space!r} has no dimension in [1, {MAX_ACTION_DIM}]")
    shape = space.get("shape")
    if space.get("kind") not in ("box", "discrete") or not isinstance(shape, list) \
            or not all(_int_in(v, 0, MAX_ACTION_DIM) for v in shape):
        raise DatasetError(f"{path}: its action_space {space!r} is neither a box nor a discrete space")
    for key in ("low", "high"):
        bound = space.get(key)
        if not (isinstance(bound, list) and len(bound) == dim and all(_is_number(v) for v in bound)):
            raise DatasetError(f"{path}: action_space.{key} must be a list of {dim} numbers")
    if not isinstance(meta.get("env_kwargs") or {}, dict):
        raise DatasetError(f"{path}: env_kwargs must be a mapping")
    return meta


def check_structure(f: Any, path: Any) -> dict[str, Any]:
    """Check an open file's metadata, arrays and episode index; returns ``meta``, ``starts``,
    ``lengths``, ``seeds``, ``extras`` (names) and ``checksums`` (``(E, C)`` or None) with
    ``columns``."""
    import h5py

    meta = parse_meta(f.attrs.get("worldjepa"), path)
    for name in ("frames", "actions", *INDEX):
        if name not in f:
            raise DatasetError(f"{path} is incomplete: '{name}' is missing")
        if not isinstance(f[name], h5py.Dataset):
            raise DatasetError(f"{path}: '{name}' is not an array")
    frames, actions = f["frames"], f["actions"]
    size, dim = meta["frame_size"], meta["action_space"]["dim"]
    if frames.dtype != np.uint8 or frames.shape[1:] != (size, size, 3):
        raise DatasetError(f"{path}: frames are {frames.shape} {frames.dtype}, expected (N, {size}, {size}, 3) uint8")
    if actions.dtype.kind != "f" or actions.ndim != 2 or actions.shape[1] != dim:
        raise DatasetError(f"{path}: actions are {actions.shape} {actions.dtype}, expected (N, {dim}) float")
    index = []
    for name in INDEX:
        ds = f[name]
        if ds.ndim != 1 or ds.dtype.kind not in "iu":
            raise DatasetError(f"{path}: '{name}' is {ds.shape} {ds.dtype}, expected a vector of integers")
        _stored(ds, path)
        index.append(ds[:].astype(np.int64))
    starts, lengths, seeds = index
    n, e = int(frames.shape[0]), len(starts)
    if not len(lengths) == len(seeds) == e:
        raise DatasetError(f"{path}: the episode table is torn ({e} starts, {len(lengths)} lengths, {len(seeds)} seeds)")
    if e and lengths.min() < 2:
        raise DatasetError(f"{path}: episode {int(np.argmin(lengths))} has {int(lengths.min())} frames (at least 2)")
    expected = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if e else starts
    if e and (starts != expected).any():
        bad = int(np.flatnonzero(starts != expected)[0])
        raise DatasetError(f"{path}: episode {bad} starts at row {int(starts[bad])}, expected {int(expected[bad])} "
                           "(episodes are stored one after the other)")
    end = int(starts[-1] + lengths[-1]) if e else 0
    if end != n or actions.shape[0] != n:
        raise DatasetError(f"{path} is truncated: episodes cover {end} frames, the file holds {n} frames and "
                           f"{actions.shape[0]} actions")
    if e and seeds.min() < 0:
        raise DatasetError(f"{path}: episode {int(np.argmin(seeds))} has a negative seed")
    extras: list[str] = []
    if "extras" in f:
        if not isinstance(f["extras"], h5py.Group):
            raise DatasetError(f"{path}: 'extras' is not a group")
        f["extras"].visit(lambda k: extras.append(k) if isinstance(f["extras"][k], h5py.Dataset) else None)
    _stored(actions, path)
    for k in extras:
        ds = f["extras"][k]
        if ds.ndim < 1 or ds.shape[0] != n or ds.dtype.kind not in "fiub":
            raise DatasetError(f"{path}: extras/{k} is {ds.shape} {ds.dtype}, expected {n} rows of numbers")
        _stored(ds, path)
    sums, columns = _checksums(f, path, e, extras)
    return {"meta": meta, "starts": starts, "lengths": lengths, "seeds": seeds, "extras": extras,
            "checksums": sums, "columns": columns}


def _checksums(f: Any, path: Any, e: int, extras: list[str]) -> tuple[np.ndarray | None, list[str]]:
    import h5py

    if CHECKSUMS not in f:
        return None, []
    ds = f[CHECKSUMS]
    try:
        columns = json.loads(ds.attrs.get("columns", "[]"))
        algorithm = ds.attrs.get("algorithm")
        algorithm = bytes(algorithm).decode() if isinstance(algorithm, (bytes, np.bytes_)) else algorithm
    except (TypeError, ValueError):
        columns = algorithm = None
    want = sorted(["frames", "actions", *(f"extras/{k}" for k in extras)])
    if not isinstance(ds, h5py.Dataset) or not isinstance(columns, list) or sorted(columns) != want \
            or ds.dtype != CHECKSUM_DTYPE or ds.shape != (e, len(want)) or algorithm != ALGORITHM:
        raise DatasetError(f"{path}: its checksum table does not match its arrays (expected {e} x {want})")
    _stored(ds, path)
    return ds[:], columns


def _stored(ds: Any, path: Any) -> None:
    """Refuse an array whose shape claims far more than the file stores (a forged or damaged
    header would otherwise make a reader allocate terabytes)."""
    claimed = int(np.prod(ds.shape, dtype=np.float64) * ds.dtype.itemsize)
    stored = int(ds.id.get_storage_size())
    if claimed > 1024 * stored + 2**20:
        raise DatasetError(f"{path}: '{ds.name.lstrip('/')}' claims {ds.shape} ({claimed} bytes) but the file "
                           f"stores {stored} bytes of it; the file is damaged")


def verify_episodes(f: Any, info: dict[str, Any], episodes: Iterable[int] | None = None,
                    columns: Iterable[str] | None = None) -> list[str]:
    """Recompute the checksums of ``episodes`` (default: all) for ``columns`` (default: all);
    returns one line per mismatch or unreadable block (empty: all good)."""
    sums, cols = info["checksums"], info["columns"]
    if sums is None:
        return []
    which = [c for c in cols if columns is None or c in columns or c.split("/")[0] in columns]
    ids = range(len(info["starts"])) if episodes is None else episodes
    problems = []
    arrays = {c: (f[c] if c in ("frames", "actions") else f[c]) for c in which}
    for e in ids:
        s, L = int(info["starts"][e]), int(info["lengths"][e])
        for c in which:
            try:
                got = checksum(arrays[c][s:s + L])
            except (OSError, RuntimeError, ValueError) as err:  # a damaged chunk
                problems.append(f"episode {e}: {c} unreadable ({str(err).splitlines()[0]})")
                continue
            if got != int(sums[e, cols.index(c)]):
                problems.append(f"episode {e}: {c} do not match their checksum")
    return problems


def nonfinite(f: Any, names: Iterable[str], starts: np.ndarray) -> list[str]:
    """One line per array among ``names`` (``actions``, ``extras/<k>``) holding NaN or inf."""
    out = []
    for name in names:
        arr = f[name][:]
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            row = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(1))[0])
            ep = int(np.searchsorted(starts, row, side="right") - 1)
            out.append(f"{name} holds NaN or inf (first at row {row}, episode {ep})")
    return out


def _int_in(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
