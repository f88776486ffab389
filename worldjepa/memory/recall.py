"""Recall over a memory: what was seen, when first, in which order, and how many distinct ones.

Questions are asked **by example**: a :class:`Gallery` of example frames, each with a label; a
label ``>= 0`` names something to recall (for instance "the object, in room 3"), ``-1`` is
background (the same world without it). The examples live in one of the two spaces a memory
keeps: ``"embedding"`` (the frames embedded by the memory's world model) or ``"thumbnail"``
(the frames shrunk as the store shrinks them, compared pixel by pixel). Every entry of the
memory takes the label of its nearest example (Euclidean distance in that space); the entries
with a label ``>= 0`` are its **sightings**. Answers read only what the memory holds: the
entries' embeddings or thumbnails, their ``time`` (the first sighting, also of an entry that
later sightings merged into) and their event ids.

Usage::

    from worldjepa.memory import MemoryStore, recall

    with MemoryStore.open("mem.db", readonly=True) as mem:
        gallery = recall.Gallery.of_thumbnails(example_frames, labels, mem.thumb_size)   # or Gallery(z, labels)
        r = recall.Recall(mem, gallery)
        r.first_seen()                      # {label: time of its first sighting}
        r.answer_order(choices, rng)        # which of the (C, n) orderings of labels happened
        r.count()                           # distinct labels sighted: a thing seen again counts once
        r.count_events()                    # distinct events holding a sighting (Cambrian-S's count)

:func:`count_events` counts the events (the store's surprise-peak segments) that hold at
least one of the given entries: a revisit that the store kept as new entries in a new event
counts again, which is why :meth:`Recall.count` counts distinct labels instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import WorldJepaError
from .graph import nearest

__all__ = ["Gallery", "Recall", "count_events", "every_kth_rows", "fifo_rows", "frame_difference", "remember_stream"]


@dataclass(frozen=True)
class Gallery:
    """Examples ``(G, F)`` float32 with their ``labels`` ``(G,)`` int64 (``-1``: background), in
    ``space`` ``"embedding"`` (F = D, the memory's latent) or ``"thumbnail"`` (F = t * t * 3 pixel
    values of t x t thumbnails, 0-255)."""

    examples: np.ndarray
    labels: np.ndarray
    space: str = "embedding"

    def __post_init__(self) -> None:
        x, lab = np.asarray(self.examples, np.float32), np.asarray(self.labels, np.int64)
        if self.space not in ("embedding", "thumbnail"):
            raise WorldJepaError(f"a gallery's space is 'embedding' or 'thumbnail', not {self.space!r}")
        if x.ndim != 2 or lab.shape != (len(x),) or not len(x):
            raise WorldJepaError(f"a gallery needs examples (G, F) and labels (G,), G >= 1; got {x.shape}, {lab.shape}")
        if not np.isfinite(x).all() or (lab < -1).any():
            raise WorldJepaError("gallery examples must be finite and labels >= -1 (-1: background)")
        object.__setattr__(self, "examples", x)
        object.__setattr__(self, "labels", lab)

    @classmethod
    def of_thumbnails(cls, frames: np.ndarray, labels: Any, size: int) -> "Gallery":
        """A thumbnail gallery from example frames ``(G, H, W, 3)`` uint8, shrunk to ``size`` as a
        store with ``thumb_size = size`` shrinks what it remembers."""
        from .schema import thumbnails

        t = thumbnails(np.asarray(frames, np.uint8), int(size))
        return cls(t.reshape(len(t), -1).astype(np.float32), labels, "thumbnail")


def count_events(store: Any, ids: np.ndarray) -> int:
    """The number of distinct events of ``store`` holding at least one of the entries ``ids``."""
    ids = np.asarray(ids, np.int64)
    return int(len(np.unique(store.get(ids)["event"]))) if len(ids) else 0


def frame_difference(frames: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """The plain pixel surprise (T,): mean absolute difference of each uint8 frame ``(T, H, W, 3)`` from
    the one before, in [0, 1] (NaN for the first frame, unless its predecessor ``previous`` is given)."""
    f = np.asarray(frames, np.float32) / 255.0
    out = np.full(len(f), np.nan)
    if len(f) > 1:
        out[1:] = np.abs(f[1:] - f[:-1]).mean(axis=(1, 2, 3))
    if previous is not None and len(f):
        out[0] = float(np.abs(f[0] - np.asarray(previous, np.float32) / 255.0).mean())
    return out


def fifo_rows(length: int, n: int) -> np.ndarray:
    """The frames (<= n,) a first-in-first-out memory of ``n`` entries holds at the end of a stream
    of ``length`` frames: the last ``n``."""
    return np.arange(max(0, length - n), length)


def every_kth_rows(length: int, n: int) -> np.ndarray:
    """The frames (<= n,) a memory of ``n`` entries holds when it keeps every k-th frame of a stream
    of ``length`` frames, ``k = ceil(length / n)`` (uniform subsampling from frame 0)."""
    return np.arange(0, length, -(-length // n))


def remember_stream(store: Any, z: np.ndarray, surprise: np.ndarray, frames: Any, rows: np.ndarray | None = None,
                    *, episode: int = 0, batch: int = 100) -> None:
    """Add frames ``rows`` (default: all) of a stream to ``store`` in time order, ``batch`` per
    transaction, as the stream would arrive: embedding ``z[rows]`` (T, D), step and time = the
    frame index, ``surprise[rows]`` (T,), thumbnails of ``frames(rows)`` -> (n, H, W, 3) uint8
    (a callable; None: no thumbnails)."""
    rows = np.arange(len(z)) if rows is None else np.asarray(rows, np.int64)
    for i in range(0, len(rows), batch):
        r = rows[i:i + batch]
        store.add(z[r], episode=episode, step=r, surprise=surprise[r],
                  thumbnail=None if frames is None or not store.thumb_size else frames(r))


class Recall:
    """The sightings of a gallery's labels in a memory, and the answers they give.

    Args:
        store: a :class:`~worldjepa.memory.store.MemoryStore` (read once, at construction).
        gallery: the examples, in the memory's latent space (same dimension).
    """

    def __init__(self, store: Any, gallery: Gallery) -> None:
        ids, x = store.embeddings()  # (M,), (M, D)
        if gallery.space == "thumbnail":
            if not store.thumb_size:
                raise WorldJepaError(f"{store.path} keeps no thumbnails (thumb_size 0): ask by embedding")
            x = store.get(ids)["thumbnail"].reshape(len(ids), -1).astype(np.float32) if len(ids) else \
                np.zeros((0, store.thumb_size ** 2 * 3), np.float32)
        if gallery.examples.shape[1] != x.shape[1]:
            raise WorldJepaError(f"the gallery's {gallery.space} examples have {gallery.examples.shape[1]} values, "
                                 f"the memory's {x.shape[1]}: make them with the memory's model (or thumbnail size)")
        which = nearest(gallery.examples, x)[0] if len(x) else np.zeros(0, np.int64)
        labels = gallery.labels[which]
        seen = labels >= 0
        self.ids = ids[seen]  # (S,) the sightings
        self.labels = labels[seen]  # (S,)
        rows = store.get(self.ids) if len(self.ids) else {"time": np.zeros(0), "event": np.zeros(0, np.int64)}
        self.times = np.asarray(rows["time"], np.float64)  # (S,) first sighting of each entry
        self.events = np.asarray(rows["event"], np.int64)  # (S,)

    def first_seen(self) -> dict[int, float]:
        """Each sighted label's earliest time."""
        out: dict[int, float] = {}
        for lab, t in zip(self.labels.tolist(), self.times.tolist()):
            out[lab] = min(t, out.get(lab, np.inf))
        return out

    def count(self) -> int:
        """How many distinct labels were sighted (a thing seen again, in any event, counts once)."""
        return int(len(np.unique(self.labels)))

    def count_events(self) -> int:
        """How many distinct events hold a sighting (counts a revisit again when it was stored anew)."""
        return int(len(np.unique(self.events)))

    def answer_order(self, choices: Any, rng: np.random.Generator) -> int:
        """The index of the ordering in ``choices`` ``(C, n)`` (labels, earliest first) that agrees best
        with the first sightings: +1 for each pair of labels both sighted in that order, -1 for each
        pair sighted the other way; equal scores are broken uniformly at random by ``rng`` (so a
        memory that saw nothing answers at chance, 1 / C)."""
        c = np.asarray(choices, np.int64)
        if c.ndim != 2 or not len(c):
            raise WorldJepaError(f"choices must be (C, n) labels with C >= 1, got shape {c.shape}")
        first = self.first_seen()
        t = np.array([[first.get(int(lab), np.nan) for lab in row] for row in c])  # (C, n)
        later = t[:, None, :] > t[:, :, None]  # (C, i, j): j was first seen after i
        earlier = t[:, None, :] < t[:, :, None]
        upper = np.triu(np.ones((c.shape[1], c.shape[1]), bool), 1)  # pairs i < j in the choice's order
        score = ((later & upper).sum((1, 2)) - (earlier & upper).sum((1, 2))).astype(np.float64)
        best = np.flatnonzero(score == score.max())
        return int(best[rng.integers(len(best))])
