"""What a memory keeps and where its events begin: the retention score and the event rule.

**Retention.** Over the entries competing for a place (all stored ones and the batch being
added, scored together), each gets

    score = max(rank(surprise), rank(novelty)) + 2 * pinned

where ``rank`` is the percentile rank among the candidates (0 the lowest, 1 the highest, ties
share their average rank), a NaN surprise (unknown) or an unknown novelty (the first entry
of a memory has nothing to be far from) counts as the candidates' median, and ``pinned`` is 1
for the entries a persisted map uses as nodes. The lowest scores are evicted first, the older
(lower id) first among equal scores. Taking the maximum of the two ranks keeps an entry that
is extreme in either respect: the most surprising moments even when they happened in familiar
places, and the most novel places even when nothing surprising happened there. Ranks make the
two comparable whatever their units.

**Events.** Every sample of the stream (stored or merged into an existing entry) enters a
window of the last :data:`EVENT_WINDOW` surprises of its episode. A new event starts

* at the first entry of an episode (when the episode differs from the previous sample's),
* at a stored entry whose surprise ``s`` is a peak: ``s > mean + z * std`` of the non-NaN
  surprises in the window (population std), once the window holds at least half of W
  (rounded up) of them: fewer give no trustworthy spread (three uniform draws often sit
  within 0.1 of each other); and at least ``gap`` samples of the episode after the sample
  that began the current event (``gap = 0``: no such pause). A surprise that stays high for
  a few samples (a world model predicting ``k`` env steps ahead is surprised at each of the
  ``k`` frames after a change) is then one event, not one per frame.

A NaN surprise never starts an event and is left out of the mean and std.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

__all__ = ["EVENT_GAP", "EVENT_WINDOW", "EVENT_Z", "lowest", "new_stream", "percentile_rank", "retention_scores", "segment"]

EVENT_Z = 3.0  # default z of the peak rule (create(event_z=...))
EVENT_WINDOW = 20  # default W: samples of the same episode a peak is measured against (create(event_window=...))
EVENT_GAP = 0  # default: samples after an event's first before a peak may begin the next (create(event_gap=...))


def percentile_rank(v: np.ndarray) -> np.ndarray:
    """Rank of each value of ``v`` (M,) among all of them, scaled to [0, 1]; ties get their
    average rank; NaN counts as the median of the others (all NaN: every rank is 0.5)."""
    v = np.asarray(v, np.float64).copy()
    nan = np.isnan(v)
    if nan.all() or len(v) == 1:
        return np.full(len(v), 0.5)
    v[nan] = np.median(v[~nan])
    order = np.argsort(v)
    s = v[order]
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # where each run of equal values starts
    last = np.r_[first[1:], len(v)] - 1
    ranks = np.empty(len(v))
    ranks[order] = np.repeat((first + last) / 2.0, last - first + 1)
    return ranks / (len(v) - 1)


def retention_scores(surprise: np.ndarray, novelty: np.ndarray, pinned: np.ndarray | None = None) -> np.ndarray:
    """The retention score (M,) of candidates with ``surprise`` (M,) and ``novelty`` (M,)
    (NaN: unknown) and ``pinned`` (M,) bool (map nodes); the higher, the longer kept."""
    score = np.maximum(percentile_rank(surprise), percentile_rank(novelty))
    if pinned is not None:
        score = score + 2.0 * np.asarray(pinned, np.float64)
    return score


def lowest(score: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` candidates to evict: lowest ``score`` first, lower id first among equals."""
    if n <= 0:
        return np.zeros(0, np.int64)
    if n < len(score):  # only scores up to the n-th smallest can be among them
        pool = np.flatnonzero(score <= np.partition(score, n - 1)[n - 1])
    else:
        pool = np.arange(len(score))
    return pool[np.lexsort((ids[pool], score[pool]))[:n]]


def new_stream() -> dict[str, Any]:
    """The state of the event rule before any sample: no episode, no event yet."""
    return {"episode": None, "event": -1, "pending": False, "window": [], "since": None}


def segment(episodes: np.ndarray, surprise: np.ndarray, stored: np.ndarray, stream: dict[str, Any],
            z: float = EVENT_Z, window: int = EVENT_WINDOW, gap: int = EVENT_GAP) -> tuple[np.ndarray, dict[str, Any]]:
    """Event ids of a batch of samples, continuing ``stream`` (from :func:`new_stream` or a
    previous call; JSON-able).

    Args:
        episodes: (N,) int episode of each sample.
        surprise: (N,) float, NaN where unknown.
        stored: (N,) bool: the sample becomes an entry (False: it merged into an existing one).
        stream: the state after the previous sample; not modified.
    Returns:
        events (N,) int64 (-1 for samples not stored) and the state after the last sample.
    """
    episode, event, pending = stream["episode"], int(stream["event"]), bool(stream["pending"])
    since = math.inf if stream.get("since") is None else int(stream["since"])  # samples since the event began
    win: deque[float] = deque((math.nan if v is None else float(v) for v in stream["window"]), maxlen=window)
    events = np.full(len(episodes), -1, np.int64)
    need = max(2, -(-window // 2))  # non-NaN surprises in the window before a peak can count
    for i, (ep, s, keep) in enumerate(zip(episodes.tolist(), surprise.tolist(), stored.tolist())):
        if ep != episode:
            episode, pending = ep, True
            win.clear()
        elif keep and not math.isnan(s) and since >= gap:
            vals = [v for v in win if not math.isnan(v)]
            if len(vals) >= need:
                mean = sum(vals) / len(vals)
                std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
                pending = pending or s > mean + z * std
        if keep:
            if pending:
                event, pending, since = event + 1, False, 0
            events[i] = event
        since += 1
        win.append(s)
    state = {"episode": episode, "event": event, "pending": pending,
             "window": [None if math.isnan(v) else v for v in win], "since": None if math.isinf(since) else since}
    return events, state
