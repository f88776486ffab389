"""The long-term memory of an agent: what it saw, where and when, in one SQLite file that
survives the process.

Usage::

    from worldjepa.memory import MemoryStore

    with MemoryStore.create("mem.db", dim=64, fingerprint=fp, meta={"env_id": env_id}, capacity=50_000,
                            merge_radius=0.05) as mem:
        ids = mem.add(z, episode=0, step=np.arange(len(z)), surprise=s, thumbnail=frames)
        near_ids, dist = mem.nearest(z_now, k=5)           # (1, 5), (1, 5)
    mem = MemoryStore.open("mem.db", dim=64, fingerprint=fp, readonly=True)   # another process

Every write is one SQLite transaction in WAL mode, so a process killed at any moment leaves
the file with whole batches only, and readers in other processes never block the writer.
``synchronous=NORMAL`` is the default: in WAL mode it keeps every transaction atomic, and a
killed process loses nothing it committed (its writes are in the kernel's cache); only an OS
crash or power cut can undo the last commits, never tear one. ``durable=True`` selects
``synchronous=FULL``, an fsync at every commit, which survives power cuts too.

Nearest-neighbour queries run on an in-RAM copy of the embeddings (:mod:`.index`), kept in
step with the file: a commit by another process is detected through SQLite's
``PRAGMA data_version`` and only the new rows (and evictions) are read. The rules for what is
kept (surprise and novelty), merged (near-duplicates) and where events begin: :mod:`.rules`.
The file format: :mod:`.schema` and docs/memory.md.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time as _time
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import MemoryFileError, MemoryInputError
from . import ingest, schema
from .connection import MemoryFile
from .graph_table import GraphTable
from .index import VectorIndex, scan_batch
from .inputs import array, check_model, check_options, columns_in, embeddings_in
from .rules import EVENT_GAP, EVENT_WINDOW, EVENT_Z, new_stream, segment

__all__ = ["MemoryStore"]

log = logging.getLogger(__name__)
_IN = 500  # ids per "WHERE id IN (...)": far below SQLite's limit on bound parameters
_COLUMNS = ", ".join(schema.COLUMNS)


class MemoryStore(GraphTable, MemoryFile):
    """Entries (an embedding with where and when it was seen) in one SQLite memory file.

    Open one with :meth:`create` or :meth:`open`. Attributes: ``path``, ``dim`` (D),
    ``fingerprint`` (the world model whose embeddings these are), ``meta`` (the caller's),
    ``capacity`` (0: unbounded), ``thumb_size``, ``merge_radius``, ``event_z``,
    ``event_window``, ``event_gap``, ``readonly``. Ids are int64, increasing in insertion order, never reused.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, Any], readonly: bool) -> None:
        super().__init__(path, conn, readonly)
        self.dim = int(meta["dim"])
        self.fingerprint = str(meta["fingerprint"])
        self.meta: dict[str, Any] = meta.get("meta") or {}
        self.capacity = int(meta["capacity"])
        self.thumb_size = int(meta["thumb_size"])
        self.merge_radius = float(meta["merge_radius"])
        self.event_z = float(meta.get("event_z", EVENT_Z))
        self.event_window = int(meta.get("event_window", EVENT_WINDOW))
        self.event_gap = int(meta.get("event_gap", EVENT_GAP))
        self._index: VectorIndex | None = None
        self._seen = (-1, -1, -1)  # (next_id, evicted, merged) of the file the index reflects
        self._data_version = -1

    # ------------------------------------------------------------------ opening

    @classmethod
    def create(cls, path: str | Path, *, dim: int, fingerprint: str, meta: dict[str, Any] | None = None,
               capacity: int = 0, thumb_size: int = 16, merge_radius: float = 0.0, event_z: float = EVENT_Z,
               event_window: int = EVENT_WINDOW, event_gap: int = EVENT_GAP, overwrite: bool = False,
               durable: bool = False) -> "MemoryStore":
        """A new, empty memory file at ``path``, open for writing.

        Args:
            dim: embedding size D.
            fingerprint: identifies the world model whose embeddings these are (the caller computes it).
            meta: JSON-able facts to keep with the memory (env id, frame size, the run it came from).
            capacity: most entries kept (0: unbounded); beyond it the lowest retention scores go.
            thumb_size: side in pixels of the stored thumbnails (0: none are stored).
            merge_radius: an embedding within this Euclidean distance of an entry merges into it (0: never).
            event_z, event_window, event_gap: the surprise-peak rule of event segmentation (z, W, and
                the samples after an event's first before a peak may begin the next).
            overwrite: replace an existing file (its entries are lost); otherwise that is an error.
            durable: fsync at every commit (``synchronous=FULL``) for this connection.
        """
        p = Path(path)
        if p.is_dir():
            raise MemoryFileError(f"{p} is a directory, not a memory file")
        if p.exists() and not overwrite:
            raise MemoryFileError(f"{p} exists; pass overwrite=True to replace it (its entries are lost) "
                                  "or MemoryStore.open it")
        check_options(p, dim, fingerprint, capacity, thumb_size, merge_radius, event_z, event_window, event_gap)
        try:
            info = json.loads(json.dumps(meta or {}, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise MemoryInputError(f"{p}: meta must be JSON-able ({e})") from None
        values = {"format": schema.FORMAT, "format_version": schema.FORMAT_VERSION, "dim": int(dim),
                  "fingerprint": fingerprint, "capacity": int(capacity), "thumb_size": int(thumb_size),
                  "merge_radius": float(merge_radius), "event_z": float(event_z), "event_window": int(event_window),
                  "event_gap": int(event_gap), "created": _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime()),
                  "library_version": __version__,
                  "meta": info, "next_id": 0, "merged": 0, "evicted": 0, "stream": new_stream()}
        p.parent.mkdir(parents=True, exist_ok=True)
        # built under a temporary name and renamed over ``path`` once complete: a crash leaves
        # the old file (or none), never a half-made one
        tmp = p.parent / f".{p.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # the umask applies, as to datasets
        try:
            schema.build(tmp, values)
            for side in ("-wal", "-shm"):  # a replaced file's leftovers would be replayed into the new one
                p.with_name(p.name + side).unlink(missing_ok=True)
            os.replace(tmp, p)
        except sqlite3.Error as e:
            raise MemoryFileError(f"{p}: could not create the memory file ({e})") from None
        finally:
            for name in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
                name.unlink(missing_ok=True)
        log.debug("created memory %s (dim %d, capacity %d)", p, dim, capacity)
        return cls.open(p, durable=durable)

    @classmethod
    def open(cls, path: str | Path, *, dim: int | None = None, fingerprint: str | None = None,
             readonly: bool = False, durable: bool = False) -> "MemoryStore":
        """An existing memory file, after checking it: a worldjepa memory of a readable format
        version, SQLite's ``quick_check``, and (when given) the embedding size and fingerprint.
        A file that fails a check raises :class:`MemoryFileError` and is left byte-for-byte as
        it was (the checks only read)."""
        p = Path(path)
        conn, meta = schema.open_checked(p, readonly, durable, lambda m: check_model(p, m, dim, fingerprint))
        return cls(p, conn, meta, readonly)

    def __enter__(self) -> "MemoryStore":
        return self

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else ("read-only" if self.readonly else "open")
        return f"MemoryStore({str(self.path)!r}, dim={self.dim}, {state})"

    # ------------------------------------------------------------------ writing

    def add(self, embeddings: Any, *, episode: Any, step: Any, time: Any = None, action: Any = None,
            surprise: Any = None, state: Any = None, thumbnail: Any = None) -> np.ndarray:
        """Store a batch of N observations in one transaction; returns their ids (N,) int64.

        Args:
            embeddings: (N, D) float32 (or (D,) for one); NaN or inf refuses the whole batch.
            episode, step: int, or (N,) ints.
            time: (N,) float on the caller's clock (default: ``step``).
            action: (N, A) float32 or None; A is fixed by the first batch that has one.
            surprise: (N,) float, NaN = unknown (default: all unknown).
            state: (N, S) float (stored as float64) or None; S fixed like A.
            thumbnail: (N, h, w, 3) uint8 or None; stored resized to ``thumb_size`` squared.

        A sample within ``merge_radius`` of an entry (stored, or earlier in this batch) is not
        stored again: that entry's ``count`` grows, its surprise becomes the larger of the two
        and its ``last_time`` the later; its id is returned. When ``capacity`` would be exceeded,
        the lowest retention scores among the stored entries and this batch, scored together,
        are evicted; a sample evicted on arrival (or merged into an evicted entry) returns -1.
        """
        x = embeddings_in(embeddings, self.dim, self.path, "embeddings")
        n = len(x)
        cols = columns_in(n, self.path, self.thumb_size, episode, step, time, action, surprise, state, thumbnail)
        if n == 0:
            return np.zeros(0, np.int64)
        with self._writing("add entries") as conn:
            self._sync()
            m = self._meta(("next_id", "merged", "evicted", "stream", "action_dim", "state_dim"))
            for key in ("action", "state"):
                width = cols[key].shape[1] if cols[key] is not None else None
                if width is not None and m[f"{key}_dim"] not in (None, width):
                    raise MemoryInputError(f"{self.path} stores {m[f'{key}_dim']}-d {key}s, got {width}-d")
            index = self._index
            into_id, into_row, novelty = scan_batch(index, x, self.merge_radius)
            kept = (into_id < 0) & (into_row < 0)  # (N,)
            rows = np.flatnonzero(kept)
            new_ids = np.full(n, -1, np.int64)
            new_ids[rows] = m["next_id"] + np.arange(len(rows))
            events, stream = segment(cols["episode"], cols["surprise"], kept, m["stream"], self.event_z,
                                     self.event_window, self.event_gap)
            count, s_new, last = ingest.fold_batch_merges(into_row, cols["surprise"], cols["time"])
            targets, s_max = ingest.merge_into_stored(conn, into_id, cols["surprise"], cols["time"])
            retention = index.retention.copy()  # (M, 2) as the file will hold it once merges are in
            at = index.rows(targets)
            retention[at, 0] = np.fmax(retention[at, 0], s_max)
            pinned = np.array([r[0] for r in conn.execute("SELECT entry FROM graph_nodes")], np.int64)
            evict_stored, evict_new = ingest.choose_evictions(self.capacity, index.ids, retention, pinned,
                                                              new_ids[rows], s_new[rows], novelty[rows])
            write = rows[~np.isin(new_ids[rows], evict_new)]
            conn.executemany(f"INSERT INTO entries ({_COLUMNS}) VALUES ({', '.join('?' * len(schema.COLUMNS))})",
                             ingest.records(write, new_ids, cols, x, last, s_new, novelty, count, events, self.thumb_size))
            for s in range(0, len(evict_stored), _IN):
                part = evict_stored[s:s + _IN].tolist()
                conn.execute(f"DELETE FROM entries WHERE id IN ({', '.join('?' * len(part))})", part)
            n_evicted = len(evict_stored) + len(evict_new)
            self._set_meta(conn, {"next_id": m["next_id"] + len(rows), "merged": m["merged"] + (n - len(rows)),
                                  "evicted": m["evicted"] + n_evicted, "stream": stream,
                                  "action_dim": m["action_dim"] if cols["action"] is None else cols["action"].shape[1],
                                  "state_dim": m["state_dim"] if cols["state"] is None else cols["state"].shape[1]})
        # committed: the in-RAM index follows the file
        index.retention[at, 0] = retention[at, 0]
        index.remove(evict_stored)
        index.append(new_ids[write], x[write], np.stack([s_new[write], np.where(np.isinf(novelty[write]), np.nan,
                                                                                 novelty[write])], 1))
        self._seen = (m["next_id"] + len(rows), m["evicted"] + n_evicted, m["merged"] + (n - len(rows)))
        out = np.where(kept, new_ids, np.where(into_id >= 0, into_id, new_ids[np.maximum(into_row, 0)]))
        gone = np.concatenate([evict_stored, evict_new])
        out[np.isin(out, gone)] = -1
        if len(targets) or n_evicted:
            log.debug("%s: %d merged, %d evicted", self.path, n - len(rows), n_evicted)
        return out

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        if self._index is not None:
            self._sync()
            return self._index.n
        return int(self._live().execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def embeddings(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids (M,) int64, embeddings (M, D) float32) of every entry, in id order (copies)."""
        self._sync()
        return self._index.ids.copy(), self._index.vectors.copy()

    def nearest(self, query: Any, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` entries nearest each query by Euclidean distance, exactly.

        Args:
            query: (Q, D) float32, or (D,) for one query (answered as Q = 1).
            k: neighbours per query.
        Returns:
            ids (Q, k) int64 and distances (Q, k) float32, nearest first (equal distances: lower
            id first); past the number of entries, id -1 and distance +inf.
        """
        q = embeddings_in(query, self.dim, self.path, "query")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise MemoryInputError(f"{self.path}: k must be a positive integer, got {k!r}")
        self._sync()
        ids, d2 = self._index.knn(q, int(k))
        return ids, np.sqrt(d2).astype(np.float32)

    def has(self, ids: Any) -> np.ndarray:
        """(N,) bool: which of ``ids`` are stored (not evicted, not never-assigned)."""
        self._sync()
        return np.isin(array(ids, np.int64).reshape(-1), self._index.ids)

    def get(self, ids: Any) -> dict[str, np.ndarray]:
        """The entries ``ids`` (N,), in that order (repeats allowed).

        Returns ``id`` (N,) int64, ``embedding`` (N, D) float32, ``episode``, ``step``, ``count``,
        ``event`` (N,) int64, ``time``, ``last_time`` (N,) float64 (first and latest sighting),
        ``surprise`` (N,) float64 (NaN: unknown; the max over merged sightings), ``novelty`` (N,)
        float64 (distance to the nearest other entry when stored; NaN for the first entry), and,
        when any of them has one, ``action`` (N, A) float32 and ``state`` (N, S) float64 (NaN
        rows for entries without) and ``thumbnail`` (N, t, t, 3) uint8 (zeros for entries without).
        An id that is not stored raises :class:`MemoryInputError`.
        """
        want = array(ids, np.int64).reshape(-1)
        uniq = np.unique(want)
        found: dict[int, tuple] = {}
        with self._reading() as conn:
            m = self._meta(("action_dim", "state_dim"))
            for s in range(0, len(uniq), _IN):
                part = uniq[s:s + _IN].tolist()
                for r in conn.execute(f"SELECT {_COLUMNS} FROM entries WHERE id IN ({', '.join('?' * len(part))})", part):
                    found[r[0]] = r
        missing = [int(i) for i in uniq if int(i) not in found]
        if missing:
            raise MemoryInputError(f"{self.path} holds no entry {', '.join(map(str, missing[:5]))}"
                                   f"{f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''}: evicted or never stored")
        return schema.decode_entries([found[int(i)] for i in want], self.dim, self.thumb_size, m["action_dim"],
                                     m["state_dim"])

    def events(self) -> list[dict[str, Any]]:
        """The events that still hold entries, in order: ``event``, ``episode``, ``first_id``,
        ``last_id``, ``start_step``, ``end_step``, ``start_time``, ``end_time``, ``entries``."""
        keys = ("event", "episode", "first_id", "last_id", "start_step", "end_step", "start_time", "end_time", "entries")
        with self._reading() as conn:
            rows = conn.execute("SELECT event, MIN(episode), MIN(id), MAX(id), MIN(step), MAX(step), MIN(time), "
                                "MAX(time), COUNT(*) FROM entries GROUP BY event ORDER BY event").fetchall()
        return [dict(zip(keys, r)) for r in rows]

    def stats(self) -> dict[str, Any]:
        """A JSON-ready summary: entries, events, episodes, the model (dim, fingerprint), the
        rules (capacity, thumb_size, merge_radius, event_z, event_window, event_gap), what was merged and
        evicted so far, the map's size and the bytes on disk (main file + WAL)."""
        with self._reading() as conn:
            n, events, episodes = conn.execute("SELECT COUNT(*), COUNT(DISTINCT event), COUNT(DISTINCT episode) "
                                               "FROM entries").fetchone()
            m = self._meta(("merged", "evicted", "next_id", "created", "library_version", "graph"))
            nodes = conn.execute("SELECT COUNT(*) FROM graph_nodes").fetchone()[0]
            edges = conn.execute("SELECT COUNT(*) FROM graph_edges").fetchone()[0]
        wal = self.path.with_name(self.path.name + "-wal")
        main = self.path.stat().st_size
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        return {"path": str(self.path), "entries": int(n), "events": int(events), "episodes": int(episodes),
                "dim": self.dim, "fingerprint": self.fingerprint, "capacity": self.capacity,
                "thumb_size": self.thumb_size, "merge_radius": self.merge_radius, "event_z": self.event_z,
                "event_window": self.event_window, "event_gap": self.event_gap, "added": int(m["next_id"]) + int(m["merged"]),
                "merged": int(m["merged"]), "evicted": int(m["evicted"]), "graph_nodes": int(nodes) if m["graph"] else 0,
                "graph_edges": int(edges) if m["graph"] else 0, "file_bytes": main + wal_bytes, "wal_bytes": wal_bytes,
                "bytes_per_entry": (main + wal_bytes) / n if n else None, "created": m["created"],
                "library_version": m["library_version"], "meta": self.meta}

    # ------------------------------------------------------------------ plumbing

    def _sync(self) -> None:
        """Bring the in-RAM index in step with the file (new rows and evictions of any process)."""
        conn = self._live()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._index is not None and version == self._data_version:
            return
        with self._reading() as conn:
            m = self._meta(("next_id", "evicted", "merged"))
            if self._index is None:
                self._index, self._seen = VectorIndex(self.dim), (0, -1, -1)
            seen_next, seen_evicted, seen_merged = self._seen
            index = self._index
            if m["evicted"] != seen_evicted and index.n:
                present = np.array([r[0] for r in conn.execute("SELECT id FROM entries")], np.int64)
                index.remove(np.setdiff1d(index.ids, present))
            if m["merged"] != seen_merged and index.n:  # another process raised some surprises
                rows = conn.execute("SELECT id, surprise FROM entries WHERE id < ? ORDER BY id", (seen_next,)).fetchall()
                index.retention[index.rows(np.array([r[0] for r in rows], np.int64)), 0] = [
                    np.nan if r[1] is None else r[1] for r in rows]
            if m["next_id"] != seen_next:
                rows = conn.execute("SELECT id, surprise, novelty, embedding FROM entries WHERE id >= ? ORDER BY id",
                                    (seen_next,)).fetchall()
                index.append(np.array([r[0] for r in rows], np.int64),
                             schema.decode_embeddings([r[3] for r in rows], self.dim, self.path),
                             np.array([r[1:3] for r in rows], np.float64).reshape(-1, 2))  # NULL -> NaN
        self._seen, self._data_version = (m["next_id"], m["evicted"], m["merged"]), version
