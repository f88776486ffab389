"""Exact nearest-neighbour search that reads a few percent of the rows: a partition into balls.

A single query over 10^5 embeddings is memory-bound: one pass reads the whole matrix (25.6 MB at
D = 64, about 1.4 ms on one thread). Embeddings of recordings are far from uniform in their space:
they lie near the low-dimensional set of states the env can be in, so most rows are far from any
given query. :class:`BallPartition` groups the rows into ``sqrt(n)`` clusters (a few rounds of
k-means on a sample), each stored contiguously with its centre ``c`` and radius ``r`` (the
largest distance of a member to ``c``). By the triangle inequality no member of a cluster is
nearer to a query ``q`` than ``||q - c|| - r``; clusters are visited in the order of that bound
and the search stops at the first cluster whose bound exceeds the k-th nearest distance found.
The result is exact: distances are computed directly in float64 (as
:meth:`~worldjepa.memory.index.VectorIndex.knn` re-ranks), ties broken by the lower id, and a
cluster is skipped only when its bound exceeds the k-th distance by more than any rounding.

Where the data have no such structure (an isotropic Gaussian cloud) the bounds prune nothing;
:meth:`BallPartition.knn1` then gives up after reading the first clusters (``None``) and the
caller scans every row as before. The partition is a snapshot: rows removed later are masked
(:meth:`kill`), rows added later are the caller's to scan (see :class:`VectorIndex`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BallPartition", "exact_d2", "rounding_bound"]

SAMPLE = 20_000  # rows k-means is fitted on
ROUNDS = 4  # k-means rounds
SLACK = 1e-9  # relative margin on the bounds: float64 rounding is ~1e-15
_U = 2.0 ** -24  # unit roundoff of float32
BUDGET = 0.25  # the fraction of the rows past which a query gives up (the caller scans all)


class BallPartition:
    """Rows ``x`` ``(n, D)`` float32 with ids ``ids`` ``(n,)`` (ascending), grouped into balls."""

    def __init__(self, x: np.ndarray, ids: np.ndarray, seed: int = 0) -> None:
        n = len(x)
        count = max(1, int(np.sqrt(n)))
        centres = _kmeans(x, count, np.random.default_rng(seed))
        label = np.empty(n, np.int64)
        c_sq = np.einsum("ij,ij->i", centres, centres)
        for s in range(0, n, 8192):
            label[s:s + 8192] = (c_sq[None] - 2 * (x[s:s + 8192] @ centres.T)).argmin(1)
        order = np.argsort(label, kind="stable")
        self.x = np.ascontiguousarray(x[order])  # (n, D) members of cluster j at off[j]:off[j + 1]
        self.ids = ids[order]
        self.sq = np.einsum("ij,ij->i", self.x, self.x)  # (n,) float32 ||x||^2
        self.max_sq = float(self.sq.max()) if n else 0.0
        self.reads = 0  # rows the last query read
        self.misses = 0  # queries in a row that gave up (the bounds pruned too little)
        self.off = np.searchsorted(label[order], np.arange(count + 1))
        self.centres = centres.astype(np.float64)
        d = self.x.astype(np.float64) - self.centres[label[order]]
        self.radius = np.zeros(count)
        np.maximum.at(self.radius, label[order], np.sqrt(np.einsum("ij,ij->i", d, d)))
        self.empty = self.off[1:] == self.off[:-1]  # clusters never visited
        self.sorted_ids = np.sort(ids)
        self._pos = np.argsort(self.ids)  # the position of sorted_ids[i] in ids
        self.max_id = int(ids.max()) if n else -1
        self.dead = 0

    def __len__(self) -> int:
        return len(self.ids)

    def kill(self, ids: np.ndarray) -> None:
        """Mask the rows of ``ids`` (removed from the index; ids not in the partition are ignored)."""
        at = np.searchsorted(self.sorted_ids, ids)
        ok = at < len(self.sorted_ids)
        ok[ok] = self.sorted_ids[at[ok]] == ids[ok]
        pos = self._pos[at[ok]]
        self.dead += int(np.isfinite(self.sq[pos]).sum())
        self.sq[pos] = np.inf  # never a candidate

    def knn1(self, q: np.ndarray, q64: np.ndarray, k: int, best_ids: np.ndarray, best_d2: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``k`` nearest of the query ``q`` ``(D,)`` (float32; ``q64`` the same in float64)
        among the live rows and the candidates ``best_ids``, ``best_d2`` (rows the partition does
        not hold, with their exact squared distances): ids ``(<= k,)`` and squared distances,
        nearest first; ``None`` when the bounds would leave more than :data:`BUDGET` of the rows
        to read. Within a cluster, ``||x||^2 - 2 x.q`` in float32 picks the rows whose exact
        distance can be among the ``k`` smallest (their rounding error bounded as in
        :meth:`VectorIndex.knn <worldjepa.memory.index.VectorIndex.knn>`)."""
        diff = self.centres - q64
        lower = np.sqrt(np.einsum("ij,ij->i", diff, diff)) - self.radius  # no member is nearer
        lower[self.empty] = np.inf
        order = np.argsort(lower)
        lower = lower[order]
        reads = np.cumsum(self.off[order + 1] - self.off[order])  # rows read once clusters order[:i + 1] are
        qn = float(q64 @ q64)
        bound = rounding_bound(len(q), self.max_sq, qn)
        self.reads = i = 0
        batch = 1
        while i < len(order):
            kth = best_d2[k - 1] if len(best_d2) >= k else np.inf
            end = int(np.searchsorted(lower, np.sqrt(kth) * (1 + SLACK) + 1e-300, side="right"))
            if i >= end:
                break
            if np.isfinite(kth) and reads[end - 1] > BUDGET * len(self.ids):
                self.reads += len(self.ids)  # the caller's full scan
                self.misses += 1
                return None
            spans = [(self.off[j], self.off[j + 1]) for j in order[i:min(end, i + batch)]]
            # the squared distance minus ||q||^2 (+inf for removed rows), on views of the clusters
            approx = np.concatenate([self.sq[a:b] - 2 * np.einsum("ij,j->i", self.x[a:b], q) for a, b in spans])
            rows = np.concatenate([np.arange(a, b) for a, b in spans])
            self.reads += len(rows)
            if len(best_d2) < k:  # a first k-th distance, from the k smallest approximations
                pick = np.argpartition(approx, min(k, len(approx)) - 1)[:k]
                pick = rows[pick[np.isfinite(approx[pick])]]
                if len(best_d2) + len(pick) >= k:
                    kth = np.sort(np.concatenate([best_d2, exact_d2(self.x[pick], q64)]))[k - 1]
            rows = rows[np.isfinite(approx) & (approx <= kth - qn + bound)]  # the rest are farther than the k-th
            cand_d2 = np.concatenate([best_d2, exact_d2(self.x[rows], q64)])
            cand_ids = np.concatenate([best_ids, self.ids[rows]])
            keep = np.lexsort((cand_ids, cand_d2))[:k]
            best_ids, best_d2 = cand_ids[keep], cand_d2[keep]
            i, batch = min(end, i + batch), batch * 2
        self.misses = 0
        return best_ids, best_d2


def rounding_bound(dim: int, max_sq: float, qn: np.ndarray | float) -> np.ndarray | float:
    """A bound on the float32 rounding error of ``||x||^2 - 2 x.q`` over rows of squared norm at
    most ``max_sq``, for queries of squared norm ``qn``: gamma_(D+2) (||x||^2 + 2 ||x|| ||q||) holds
    for any summation order (Higham, Accuracy and Stability of Numerical Algorithms, 3.1);
    doubled for margin."""
    gamma = (dim + 2) * _U / (1 - (dim + 2) * _U)
    return 2 * gamma * (max_sq + 2 * np.sqrt(max_sq) * np.sqrt(qn)) + 1e-30


def exact_d2(x: np.ndarray, q64: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances in float64 between float32 rows ``x`` ``(..., D)`` and
    ``q64`` (broadcast against them): the one formula every exact distance of the memory uses,
    so that equal distances compare equal whichever path computed them."""
    diff = x.astype(np.float64) - q64
    return np.einsum("...d,...d->...", diff, diff)


def _kmeans(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` centres ``(count, D)`` float32 of ``x``: a few Lloyd rounds on a sample (the
    search is exact whatever the centres; good ones only make it read less)."""
    sample = x[rng.choice(len(x), min(SAMPLE, len(x)), replace=False)] if len(x) > SAMPLE else x
    centres = sample[rng.choice(len(sample), min(count, len(sample)), replace=False)].copy()
    for _ in range(ROUNDS):
        c_sq = np.einsum("ij,ij->i", centres, centres)
        label = (c_sq[None] - 2 * (sample @ centres.T)).argmin(1)
        sums = np.zeros(centres.shape, np.float64)
        np.add.at(sums, label, sample)
        counts = np.bincount(label, minlength=len(centres))
        filled = counts > 0
        centres[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return centres
