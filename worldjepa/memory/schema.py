"""The memory file: one SQLite database in WAL mode, its tables, the checks that open one, and
the codecs of its BLOB columns. Every table and column: docs/memory.md.

All arrays are stored little-endian: embeddings and actions as float32, states as float64,
thumbnails as raw uint8 RGB rows (``thumb_size * thumb_size * 3`` bytes, row-major), so any
SQLite reader with numpy can decode them (``np.frombuffer(blob, "<f4")``).
"""

from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import numpy as np

from ..errors import MemoryFileError

FORMAT = "worldjepa-memory"
FORMAT_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0  # a writer waits this long for another process's write transaction

# models learned from the entries; files written before this table get it at the first model stored
MODELS_TABLE = "CREATE TABLE IF NOT EXISTS models (name TEXT PRIMARY KEY, config TEXT NOT NULL, weights BLOB NOT NULL)"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    episode INTEGER NOT NULL,
    step INTEGER NOT NULL,
    time REAL NOT NULL,
    last_time REAL NOT NULL,
    surprise REAL,
    novelty REAL,
    count INTEGER NOT NULL,
    event INTEGER NOT NULL,
    embedding BLOB NOT NULL,
    action BLOB,
    state BLOB,
    thumbnail BLOB
);
CREATE TABLE graph_nodes (idx INTEGER PRIMARY KEY, entry INTEGER NOT NULL);
CREATE TABLE graph_edges (idx INTEGER PRIMARY KEY, src INTEGER NOT NULL, dst INTEGER NOT NULL, weight REAL NOT NULL);
CREATE INDEX graph_edges_pair ON graph_edges (src, dst);
""" + MODELS_TABLE + ";\n"
COLUMNS = ("id", "episode", "step", "time", "last_time", "surprise", "novelty", "count", "event", "embedding",
           "action", "state", "thumbnail")


def connect(path: Path, mode: str, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit); ``mode``: ro, rw or rwc."""
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout)


def build(path: Path, meta: dict[str, Any]) -> None:
    """Write the tables and ``meta`` (JSON values) into the new, empty file ``path``, in WAL
    mode, fsynced, with the WAL folded back in."""
    conn = connect(path, "rwc")
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("BEGIN")
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def check_header(path: Path) -> None:
    """Refuse, without opening it with SQLite, a file that is empty, not SQLite, or shorter than
    its own header says (a truncated copy)."""
    size = path.stat().st_size
    if size == 0:
        raise MemoryFileError(f"{path} is empty (0 bytes), not a worldjepa memory file")
    with open(path, "rb") as f:
        head = f.read(100)
    if head[:16] != SQLITE_MAGIC:
        raise MemoryFileError(f"{path} is not a worldjepa memory file (not an SQLite database)")
    if len(head) < 100:
        raise MemoryFileError(f"{path} is truncated: {size} bytes, shorter than an SQLite header")
    (page,) = struct.unpack(">H", head[16:18])
    page = 65536 if page == 1 else page
    (pages,) = struct.unpack(">I", head[28:32])
    # the page count is valid when the "version-valid-for" number equals the change counter;
    # with a non-empty -wal the main file may legitimately lag behind it until a checkpoint
    wal = path.with_name(path.name + "-wal")
    wal_empty = not wal.exists() or wal.stat().st_size == 0
    if head[92:96] == head[24:28] and wal_empty and size < pages * page:
        raise MemoryFileError(f"{path} is truncated: its header counts {pages * page:,} bytes, the file holds "
                              f"{size:,}; restore it from a copy (worldjepa never resets a memory silently)")


def open_checked(path: Path, readonly: bool, durable: bool,
                 check: Callable[[dict[str, Any]], None]) -> tuple[sqlite3.Connection, dict[str, Any]]:
    """A connection to the memory file ``path`` and its meta, once ``path`` passed every check:
    a file, SQLite, not truncated, a worldjepa memory of a readable version, ``check(meta)``
    (the caller's: the world model), ``quick_check``. A writer's connection is in WAL mode with
    ``synchronous`` FULL (``durable``) or NORMAL."""
    if not path.exists():
        raise MemoryFileError(f"memory file not found: {path}")
    if path.is_dir():
        raise MemoryFileError(f"{path} is a directory, not a memory file")
    check_header(path)
    # The checks only read. They run on a read-write connection when nothing else has the file
    # open (no -wal, -shm or -journal next to it): closing that connection then removes the
    # -wal and -shm that reading in WAL mode creates (a read-only one leaves them behind), and
    # there is no WAL to fold back into the file. Otherwise they run read-only, so that a
    # refused file is never written to.
    quiet = not any(path.with_name(path.name + side).exists() for side in ("-wal", "-shm", "-journal"))
    conn = None
    try:
        conn = connect(path, "rw" if quiet else "ro")
        meta = read_meta(conn, path)
        check(meta)
        check_integrity(conn, path)
        if readonly and quiet:
            conn.close()
            conn = connect(path, "ro")
        elif not readonly:
            if not quiet:
                conn.close()
                conn = connect(path, "rw")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise MemoryFileError(f"{path}: SQLite cannot use WAL mode here (journal mode {mode}); "
                                      "keep memory files on a local file system")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    except sqlite3.DatabaseError as e:
        if conn is not None:
            conn.close()
        if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
            raise MemoryFileError(f"{path} is locked by another process ({e}); try again") from None
        raise MemoryFileError(f"{path} is corrupt or truncated (SQLite: {e}); restore it from a copy "
                              "(worldjepa never resets a memory silently)") from None
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn, meta


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """The ``meta`` table as a dict of JSON values, checked to be a worldjepa memory we can read."""
    try:
        rows = conn.execute("SELECT key, value FROM meta").fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            raise MemoryFileError(f"{path} is an SQLite database but not a worldjepa memory file (no meta table)") from None
        raise
    try:
        meta = {k: json.loads(v) for k, v in rows}
    except (TypeError, ValueError):
        raise MemoryFileError(f"{path}: its meta table holds a value that is not JSON (not a worldjepa memory file)") from None
    if meta.get("format") != FORMAT:
        raise MemoryFileError(f"{path} is an SQLite database but not a worldjepa memory file "
                              f"(format {meta.get('format')!r})")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise MemoryFileError(f"{path} was written by a newer worldjepa (memory format "
                              f"{meta.get('format_version')}; this one reads {FORMAT_VERSION})")
    missing = [k for k in ("dim", "fingerprint", "capacity", "thumb_size", "merge_radius", "next_id") if k not in meta]
    if missing:
        raise MemoryFileError(f"{path} is an incomplete memory file: meta lacks {', '.join(missing)}")
    return meta


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """SQLite's ``quick_check`` (every page and record well-formed; not the index contents)."""
    problems = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise MemoryFileError(f"{path} is corrupt ({problems[0]}{f'; {len(problems) - 1} more problems' if len(problems) > 1 else ''}); "
                              "restore it from a copy (worldjepa never resets a memory silently)")


def short(fingerprint: str) -> str:
    return fingerprint if len(fingerprint) <= 16 else fingerprint[:12] + "..."


def f32_blobs(x: np.ndarray) -> list[bytes]:
    """Rows of ``x`` (N, ...) as little-endian float32 BLOBs."""
    x = np.ascontiguousarray(x, "<f4").reshape(len(x), int(np.prod(x.shape[1:])))
    return [r.tobytes() for r in x]


def f64_blobs(x: np.ndarray) -> list[bytes]:
    x = np.ascontiguousarray(x, "<f8").reshape(len(x), int(np.prod(x.shape[1:])))
    return [r.tobytes() for r in x]


def decode_rows(blobs: list[bytes | None], dtype: str, width: int, fill: float) -> np.ndarray:
    """BLOBs of ``width`` values each -> (N, width) array; ``None`` rows are ``fill``."""
    out = np.full((len(blobs), width), fill, dtype)
    for i, b in enumerate(blobs):
        if b is not None:
            out[i] = np.frombuffer(b, dtype)
    return out


def decode_embeddings(blobs: list[bytes], dim: int, path: Path) -> np.ndarray:
    """Embedding BLOBs -> (N, D) float32 (read-only view of one buffer)."""
    raw = b"".join(blobs)
    if len(raw) != 4 * dim * len(blobs):
        raise MemoryFileError(f"{path} is corrupt: an embedding BLOB is not {dim} float32 values")
    return np.frombuffer(raw, "<f4").reshape(len(blobs), dim)


def decode_entries(rows: list[tuple], dim: int, thumb_size: int, action_dim: int | None,
                   state_dim: int | None) -> dict[str, np.ndarray]:
    """``entries`` rows (all :data:`COLUMNS`) -> the arrays of ``MemoryStore.get``."""
    col = list(zip(*rows)) if rows else [()] * len(COLUMNS)
    nan = lambda values: np.array([np.nan if v is None else v for v in values], np.float64)  # noqa: E731
    out = {"id": np.array(col[0], np.int64), "episode": np.array(col[1], np.int64), "step": np.array(col[2], np.int64),
           "time": np.array(col[3], np.float64), "last_time": np.array(col[4], np.float64), "surprise": nan(col[5]),
           "novelty": nan(col[6]), "count": np.array(col[7], np.int64), "event": np.array(col[8], np.int64),
           "embedding": decode_rows(list(col[9]), "<f4", dim, np.nan)}
    for key, i, dtype, width in (("action", 10, "<f4", action_dim), ("state", 11, "<f8", state_dim)):
        if any(b is not None for b in col[i]):
            out[key] = decode_rows(list(col[i]), dtype, int(width), np.nan)
    if any(b is not None for b in col[12]):
        out["thumbnail"] = decode_rows(list(col[12]), "u1", thumb_size * thumb_size * 3, 0).reshape(
            -1, thumb_size, thumb_size, 3)
    return out


def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of area resampling: output pixel i averages the input it covers."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    j = np.arange(n_in)
    w = np.clip(np.minimum(edges[1:, None], j + 1) - np.maximum(edges[:-1, None], j), 0, None)
    return (w / w.sum(1, keepdims=True)).astype(np.float32)


def thumbnails(frames: np.ndarray, size: int) -> np.ndarray:
    """Frames (N, h, w, 3) uint8 -> (N, size, size, 3) uint8 by area averaging (each thumbnail
    pixel is the mean of the frame pixels it covers; upscaling repeats pixels)."""
    h, w = frames.shape[1:3]
    if (h, w) == (size, size):
        return np.ascontiguousarray(frames)
    rh, rw = _area_matrix(h, size), _area_matrix(w, size)
    x = frames.astype(np.float32).transpose(0, 3, 1, 2)  # (N, 3, h, w)
    y = rh @ x @ rw.T  # (N, 3, size, size)
    return np.clip(np.rint(y), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()
