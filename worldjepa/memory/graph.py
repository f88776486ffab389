"""A map from memory: remembered places (landmarks) joined by the moves seen between them.

Built from embeddings of recorded frames and where they were seen (episode, step), with no
knowledge of the env: nothing here reads a state layout.

* **Landmarks** sparsify the memory: an entry becomes a landmark when it lies farther than
  ``radius`` (latent Euclidean distance) from every landmark chosen before it (a greedy cover;
  entries visited in a seeded random order). Every entry is then assigned to its nearest
  landmark.
* **Edges** come from temporal adjacency in the recordings: when an episode passes from the
  place of landmark ``u`` to that of ``v`` within ``max_gap`` env steps, ``u -> v`` is an edge
  weighted by the fewest env steps seen between them (directed: a move seen one way only is
  not assumed to reverse). What the recordings never did, the map never proposes. Only entries
  in a landmark's core (within ``core * radius`` of it) count as being at that place: an entry
  at the edge of a cell may lie on the far side of a thin wall from the landmark, and would
  otherwise join the two sides.
* :func:`calibrate` reads the typical latent distance of frames a few env steps apart from
  the recordings themselves, which sets the landmark radius (and how close counts as reached).
* :class:`MemoryMap` localises an embedding (its nearest landmark), searches routes (Dijkstra,
  :mod:`scipy.sparse.csgraph`), down-weights an edge that failed in execution, and grows while
  the agent acts (:meth:`MemoryMap.add_landmark`, :meth:`MemoryMap.link`: the same two rules
  applied to what the agent sees, by :class:`~worldjepa.memory.reasoning.Router`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["MemoryMap", "build_map", "calibrate", "greedy_landmarks", "temporal_edges"]


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(N, M)`` between rows of ``a`` ``(N, D)`` and ``b`` ``(M, D)``."""
    d = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0)


def nearest(points: np.ndarray, queries: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest row of ``points`` ``(M, D)`` for each query ``(N, D)``, and its distance."""
    idx, dist = np.empty(len(queries), np.int64), np.empty(len(queries))
    for i in range(0, len(queries), chunk):
        d = _sq_dists(queries[i:i + chunk], points)  # (n, M)
        j = d.argmin(1)
        idx[i:i + chunk], dist[i:i + chunk] = j, np.sqrt(d[np.arange(len(j)), j])
    return idx, dist


def calibrate(z: np.ndarray, episodes: np.ndarray, steps: np.ndarray, gap: int) -> float:
    """Median latent distance between entries ``gap`` env steps apart in the same episode."""
    order = np.lexsort((steps, episodes))
    z, episodes, steps = z[order], episodes[order], steps[order]
    key = {(int(e), int(s)): i for i, (e, s) in enumerate(zip(episodes, steps))}
    pairs = [(i, key[(int(e), int(s) + gap)]) for i, (e, s) in enumerate(zip(episodes, steps))
             if (int(e), int(s) + gap) in key]
    if not pairs:
        from ..errors import WorldJepaError

        raise WorldJepaError(f"no two remembered frames {gap} env steps apart in one episode to calibrate the "
                             "landmark radius: record longer episodes, or pass --radius")
    a, b = np.asarray(pairs).T
    return float(np.median(np.linalg.norm(z[a] - z[b], axis=1)))


def greedy_landmarks(z: np.ndarray, radius: float, seed: int = 0, chunk: int = 1024) -> np.ndarray:
    """Indices of a greedy ``radius``-cover of the rows of ``z`` ``(N, D)``: every row lies within
    ``radius`` of some landmark, and landmarks are more than ``radius`` apart."""
    order = np.random.default_rng(seed).permutation(len(z))
    chosen: list[int] = []
    marks = np.zeros((0, z.shape[1]), z.dtype)
    r2 = radius * radius
    for start in range(0, len(order), chunk):
        block = order[start:start + chunk]
        far = _sq_dists(z[block], marks).min(1) > r2 if len(marks) else np.ones(len(block), bool)
        new: list[int] = []
        for i in block[far]:  # the few candidates: check them against this chunk's new landmarks too
            if not new or ((z[new] - z[i]) ** 2).sum(1).min() > r2:
                new.append(int(i))
        chosen += new
        marks = z[chosen]
    return np.asarray(chosen, np.int64)


def temporal_edges(assign: np.ndarray, episodes: np.ndarray, steps: np.ndarray,
                   max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges ``(E, 2)`` between landmarks an episode passed from one to the other within
    ``max_gap`` env steps, weighted ``(E,)`` by the fewest steps seen for each."""
    order = np.lexsort((steps, episodes))
    a, e, s = assign[order], episodes[order], steps[order]
    src, dst, gap = [], [], []
    for lag in range(1, max_gap + 1):  # steps are distinct within an episode: a gap <= max_gap spans <= max_gap rows
        ok = (e[lag:] == e[:-lag]) & (s[lag:] - s[:-lag] <= max_gap) & (a[lag:] != a[:-lag])
        src.append(a[:-lag][ok])
        dst.append(a[lag:][ok])
        gap.append((s[lag:] - s[:-lag])[ok])
    src, dst, gap = np.concatenate(src), np.concatenate(dst), np.concatenate(gap)
    if not len(src):
        return np.zeros((0, 2), np.int64), np.zeros(0)
    pairs, inverse = np.unique(np.stack([src, dst], 1), axis=0, return_inverse=True)
    best = np.full(len(pairs), np.iinfo(np.int64).max)
    np.minimum.at(best, inverse.reshape(-1), gap)  # the fewest steps seen for each pair
    return pairs.astype(np.int64), best.astype(np.float64)


def build_map(z: np.ndarray, episodes: np.ndarray, steps: np.ndarray, *, radius: float, max_gap: int,
              core: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Landmarks ``(K,)`` (indices into ``z``), edges ``(E, 2)`` (indices into the landmarks),
    their weights ``(E,)`` in env steps, and every entry's landmark ``(N,)``."""
    z = np.asarray(z, np.float32)
    episodes, steps = np.asarray(episodes), np.asarray(steps)
    marks = greedy_landmarks(z, radius, seed)
    assign, dist = nearest(z[marks], z)
    inner = dist <= core * radius  # entries at a place for sure
    edges, weights = temporal_edges(assign[inner], episodes[inner], steps[inner], max_gap)
    return marks, edges, weights, assign


def connectivity(k: int, edges: np.ndarray) -> dict[str, Any]:
    """How well a map of ``k`` landmarks joins its places: its strongly connected parts, the
    largest one's share of the landmarks, and the share of ordered landmark pairs joined both
    ways (1.0: a route from any place to any other and back)."""
    if k == 0:
        return {"components": 0, "largest_component": 0.0, "two_way_pairs": 0.0}
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.asarray(edges, np.int64).reshape(-1, 2)
    g = csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(k, k))
    n, labels = connected_components(g, directed=True, connection="strong")
    sizes = np.bincount(labels).astype(np.float64)
    return {"components": int(n), "largest_component": float(sizes.max() / k),
            "two_way_pairs": float((sizes ** 2).sum() / k ** 2)}


@dataclass
class MemoryMap:
    """Landmark embeddings ``(K, D)`` and a weighted directed graph over them.

    Args:
        z: ``(K, D)`` the landmarks' embeddings.
        edges: ``(E, 2)`` landmark index pairs ``u -> v``.
        weights: ``(E,)`` expected env steps along each edge.
        radius: the landmark radius (latent distance) the map was built with.
    """

    z: np.ndarray
    edges: np.ndarray
    weights: np.ndarray
    radius: float
    info: dict[str, Any] = field(default_factory=dict)
    thumbs: np.ndarray | None = None  # (K, h, w, 3) uint8 small frames of the landmarks, when remembered
    subgoals: Any = None  # a SubgoalModel learned from the same memory (:mod:`.subgoals`), when it holds one

    def __post_init__(self) -> None:
        self.z = np.asarray(self.z, np.float32)
        self.edges = np.asarray(self.edges, np.int64).reshape(-1, 2)
        self.weights = np.asarray(self.weights, np.float64).reshape(-1)
        self._csr: Any = None
        self._csr_t: Any = None  # the reversed graph, for searches backward from a goal
        self._norms: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.z)

    def localize(self, z: np.ndarray) -> tuple[int, float]:
        """The landmark nearest to embedding ``z`` ``(D,)`` and its distance."""
        i, d = self.nearby(z, k=1)
        return int(i[0]), float(d[0])

    def nearby(self, z: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` landmarks nearest to embedding ``z`` ``(D,)``, nearest first, and their distances."""
        if self._norms is None:
            self._norms = (self.z.astype(np.float64) ** 2).sum(1)  # (K,) once
        q = np.asarray(z, np.float32).reshape(-1)
        d = self._norms - 2.0 * (self.z @ q)  # (K,) squared distances, less the query's own norm
        k = min(k, self.size)
        idx = np.argpartition(d, k - 1)[:k] if k < self.size else np.arange(self.size)
        idx = idx[np.argsort(d[idx], kind="stable")]
        return idx, np.linalg.norm(self.z[idx] - q, axis=1)

    def graph(self) -> Any:
        """The graph as a scipy CSR matrix (built once; penalising an edge rebuilds it)."""
        if self._csr is None:
            from scipy.sparse import csr_matrix

            k = self.size
            self._csr = csr_matrix((self.weights, (self.edges[:, 0], self.edges[:, 1])), shape=(k, k))
        return self._csr

    def route(self, src: int | Sequence[int], dst: int | Sequence[int]) -> tuple[list[int], float] | None:
        """The cheapest route ``[src, ..., dst]`` (landmark indices) and its cost in env steps;
        ``None`` when ``dst`` cannot be reached from ``src``. Each of ``src`` and ``dst`` may be
        several candidates in order of preference: the route joins the first goal candidate
        that any start candidate reaches, from the first of those (a place the agent has just
        added has edges in and none out yet; the first place of an episode, edges out and none in)."""
        from scipy.sparse.csgraph import dijkstra

        srcs = [int(src)] if np.ndim(src) == 0 else [int(s) for s in src]
        if self._csr_t is None:
            self._csr_t = self.graph().T.tocsr()
        for goal in [int(dst)] if np.ndim(dst) == 0 else [int(d) for d in dst]:
            # one search backward from the goal: the cost from every place to it, and the next place on the way
            to_goal, nxt = dijkstra(self._csr_t, directed=True, indices=goal, return_predecessors=True)
            for s in srcs:
                if np.isfinite(to_goal[s]):
                    path = [s]
                    while path[-1] != goal:
                        path.append(int(nxt[path[-1]]))
                    return path, float(to_goal[s])
        return None

    def edge_weight(self, u: int, v: int) -> float:
        hit = np.flatnonzero((self.edges[:, 0] == u) & (self.edges[:, 1] == v))
        return float(self.weights[hit[0]]) if len(hit) else float("inf")

    # ------------------------------------------------------------------ online updates
    def add_landmark(self, z: np.ndarray) -> int:
        """A new landmark at embedding ``z`` ``(D,)`` (a place first seen while acting); its index."""
        self.z = np.concatenate([self.z, np.asarray(z, np.float32).reshape(1, -1)])
        if self.thumbs is not None:  # no picture of a place learned online
            self.thumbs = np.concatenate([self.thumbs, np.zeros_like(self.thumbs[:1])])
        self._norms, self._csr, self._csr_t = None, None, None
        return self.size - 1

    def link(self, u: int, v: int, steps: float) -> bool:
        """Record a move ``u -> v`` seen to take ``steps`` env steps: a new edge, or a cheaper
        weight for an existing one (also one penalised earlier: the move did succeed). True
        when the map changed."""
        hit = np.flatnonzero((self.edges[:, 0] == u) & (self.edges[:, 1] == v))
        if len(hit):
            if self.weights[hit].min() <= steps:
                return False
            self.weights[hit] = steps
        else:
            self.edges = np.concatenate([self.edges, np.array([[u, v]], np.int64)])
            self.weights = np.concatenate([self.weights, [float(steps)]])
        self._csr = self._csr_t = None
        return True

    def penalize(self, u: int, v: int, factor: float = 4.0) -> None:
        """Make edge ``u -> v`` ``factor`` times dearer (an edge that failed in execution)."""
        hit = (self.edges[:, 0] == u) & (self.edges[:, 1] == v)
        self.weights[hit] *= factor
        self._csr = self._csr_t = None
