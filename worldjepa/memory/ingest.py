"""The steps of ``MemoryStore.add`` inside its transaction, after the batch was scanned for
novelty and near-duplicates (:func:`~worldjepa.memory.index.scan_batch`): folding merges into
entries, choosing what to evict, and the rows to insert."""

from __future__ import annotations

import math
import sqlite3
from typing import Any, Iterator

import numpy as np

from . import schema
from .rules import lowest, retention_scores


def fold_batch_merges(into_row: np.ndarray, surprise: np.ndarray, when: np.ndarray) -> tuple[np.ndarray, ...]:
    """Count (N,) int64, surprise (N,) (the max, NaN = unknown) and last time (N,) of each batch
    row once the batch's later samples that merged into it are folded in."""
    count = np.ones(len(into_row), np.int64)
    s, last = surprise.copy(), when.copy()
    for i in np.flatnonzero(into_row >= 0):
        j = into_row[i]
        count[j] += 1
        s[j] = np.fmax(s[j], s[i])
        last[j] = max(last[j], last[i])
    return count, s, last


def merge_into_stored(conn: sqlite3.Connection, into_id: np.ndarray, surprise: np.ndarray,
                      when: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add to the count, raise the surprise (the max) and the last time of the stored entries
    that samples merged into; returns those entries' ids (T,) and the max surprise (T,) merged
    into each (NaN: none known)."""
    hit = np.flatnonzero(into_id >= 0)
    if len(hit) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    targets, inverse = np.unique(into_id[hit], return_inverse=True)
    add = np.bincount(inverse, minlength=len(targets))
    s_max = np.full(len(targets), np.nan)
    t_max = np.full(len(targets), -np.inf)
    np.fmax.at(s_max, inverse, surprise[hit])
    np.maximum.at(t_max, inverse, when[hit])
    conn.executemany(
        "UPDATE entries SET count = count + ?, last_time = max(last_time, ?), surprise = CASE WHEN ?3 IS NULL "
        "THEN surprise WHEN surprise IS NULL THEN ?3 ELSE max(surprise, ?3) END WHERE id = ?4",
        [(int(c), float(t), None if math.isnan(s) else float(s), int(i)) for c, t, s, i in zip(add, t_max, s_max, targets)])
    return targets, s_max


def choose_evictions(capacity: int, stored_ids: np.ndarray, stored: np.ndarray, pinned: np.ndarray,
                     ids: np.ndarray, surprise: np.ndarray, novelty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(stored ids, new ids) to evict so that at most ``capacity`` entries remain, scoring the
    stored entries ``stored_ids`` (M,) with their (surprise, novelty) ``stored`` (M, 2) (merges
    of this batch included) and the new ones ``ids`` (N,) with ``surprise``, ``novelty`` (N,)
    together (:mod:`.rules`); NaN or +inf novelty is unknown; ``pinned``: the map's node ids."""
    over = len(stored_ids) + len(ids) - capacity
    if not capacity or over <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    all_ids = np.concatenate([stored_ids, ids])
    score = retention_scores(np.concatenate([stored[:, 0], surprise]),
                             np.concatenate([stored[:, 1], np.where(np.isinf(novelty), np.nan, novelty)]),
                             np.isin(all_ids, pinned))
    gone = all_ids[lowest(score, all_ids, over)]
    is_new = np.isin(gone, ids)
    return np.sort(gone[~is_new]), np.sort(gone[is_new])


def records(rows: np.ndarray, ids: np.ndarray, cols: dict[str, Any], x: np.ndarray, last: np.ndarray,
            surprise: np.ndarray, novelty: np.ndarray, count: np.ndarray, events: np.ndarray,
            thumb_size: int) -> Iterator[tuple]:
    """The ``entries`` rows (in :data:`~worldjepa.memory.schema.COLUMNS` order) of batch rows ``rows``."""
    none = [None] * len(rows)
    emb = schema.f32_blobs(x[rows])
    act = schema.f32_blobs(cols["action"][rows]) if cols["action"] is not None else none
    st = schema.f64_blobs(cols["state"][rows]) if cols["state"] is not None else none
    th = ([t.tobytes() for t in schema.thumbnails(cols["thumbnail"][rows], thumb_size)]
          if cols["thumbnail"] is not None else none)
    ep, stp, tm = cols["episode"][rows].tolist(), cols["step"][rows].tolist(), cols["time"][rows].tolist()
    for j, r in enumerate(rows.tolist()):
        s, v = float(surprise[r]), float(novelty[r])
        yield (int(ids[r]), ep[j], stp[j], tm[j], float(last[r]), None if math.isnan(s) else s,
               None if math.isinf(v) else v, int(count[r]), int(events[r]), emb[j], act[j], st[j], th[j])
