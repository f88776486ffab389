"""Exact nearest neighbours over a memory's embeddings, held in RAM as one float32 matrix.

:class:`VectorIndex` answers k-nearest-neighbour queries by Euclidean distance exactly, in
about one pass over the matrix: squared distances up to a per-query constant come from one
matrix product, ``||x||^2 - 2 x.q`` with ``||x||^2`` cached; the smallest values are found
through the minima of row groups (a group whose minimum is not among the k smallest holds none
of the k smallest values); the candidates are re-ranked with distances computed directly in
float64; a rounding bound on the float32 expansion certifies that no other row can be closer,
and the few queries it cannot certify (near-ties among rows of large norm) are re-ranked over
every row the bound leaves in play. Results therefore equal a float64 brute force, ties broken
by the lower id.

At 10^5 rows of D = 64 a query reads 25.6 MB, so its time is memory bandwidth. One query
runs on the calling thread only (numpy's einsum loop): numpy's BLAS would use two threads,
twice as fast while both cores are free, but a two-thread BLAS call stalls when another
process holds the second core (its thread waits for its partner: 8 ms instead of 0.5-1.6 ms,
measured on the project's shared 2-core machine, where other jobs run most of the time).
``VectorIndex.use_blas = True`` chooses BLAS on a machine whose cores are free. Batches of
queries (the novelty scan of an insert) use BLAS, whose blocking they need.

From :data:`PRUNE_MIN` rows, once :data:`PRUNE_AFTER` single queries have paid a full pass, the
index groups its rows into balls (:class:`~worldjepa.memory.partition.BallPartition`) and a
single query reads only the balls that can hold an answer (the same exact answers; at 10^5
embeddings of recordings, a few hundred rows instead of all). Rows added later are scanned
directly until there are :data:`TAIL_MAX` of them, rows removed are masked; then the partition
is rebuilt.

:func:`scan_batch` is the insertion-time pass of a store: for each incoming embedding, the
distance to the nearest other entry (the stored ones and the batch's earlier ones) and, with a
merge radius, which entry it duplicates.
"""

from __future__ import annotations

import numpy as np

from .partition import BallPartition, exact_d2, rounding_bound

__all__ = ["VectorIndex", "scan_batch"]

PRUNE_MIN = 16_384  # rows from which one query may go through a BallPartition
PRUNE_AFTER = 256  # single queries answered by a full scan before a partition is built (or rebuilt)
MISSES = 16  # after this many pruned queries in a row gave up, only every MISSES-th one tries
TAIL_MAX = 2_048  # rows added since the partition was built that a query scans directly; more: rebuild
BLOCK = 128  # rows per group of the candidate search: a query first takes one minimum per group
EXTRA = 2  # candidates beyond k re-ranked exactly: one more than k lets the rounding bound certify the k-th
_CHUNK_ELEMS = 2 ** 22  # (queries x rows) per matrix product: 16 MB of float32 scratch


class VectorIndex:
    """The embeddings of a store in id order: ``ids`` (M,) int64 and ``vectors`` (M, D) float32,
    with each entry's ``retention`` (M, 2) float64 inputs (surprise, novelty; NaN: unknown).

    Rows live in a buffer whose length is a multiple of :data:`BLOCK`; rows past ``n`` are zero
    with a squared norm of +inf, so they are never anyone's neighbour.
    """

    use_blas = False  # one query through numpy's (multi-threaded) BLAS instead of one thread
    prune = True  # single queries through a BallPartition once the index is large (False: full scans)

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self._x = np.zeros((0, dim), np.float32)  # (cap, D)
        self._sq = np.zeros(0, np.float32)  # (cap,) ||x||^2, +inf past n
        self._ids = np.zeros(0, np.int64)  # (cap,)
        self._ret = np.zeros((0, 2), np.float64)  # (cap, 2) surprise, novelty
        self._max_sq = 0.0  # an upper bound of ||x||^2 over the rows (for the rounding bound)
        self._part: BallPartition | None = None  # a snapshot of the rows grouped into balls (:meth:`partition`)
        self._scans = 0  # single queries answered by a full scan since the partition went stale

    @property
    def ids(self) -> np.ndarray:
        return self._ids[:self.n]

    @property
    def vectors(self) -> np.ndarray:
        return self._x[:self.n]

    @property
    def retention(self) -> np.ndarray:
        return self._ret[:self.n]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of ``ids`` (all stored)."""
        return np.searchsorted(self._ids[:self.n], ids)

    def append(self, ids: np.ndarray, x: np.ndarray, retention: np.ndarray | None = None) -> None:
        """Add rows ``ids`` (N,) with embeddings ``x`` (N, D) and ``retention`` (N, 2) (default:
        unknown); ids must exceed every stored id."""
        m = len(ids)
        if m == 0:
            return
        need = self.n + m
        if need > len(self._ids):
            cap = max(BLOCK, -(-max(need, 2 * len(self._ids)) // BLOCK) * BLOCK)
            x_new = np.zeros((cap, self.dim), np.float32)
            x_new[:self.n] = self._x[:self.n]
            sq_new = np.full(cap, np.inf, np.float32)
            sq_new[:self.n] = self._sq[:self.n]
            ids_new = np.zeros(cap, np.int64)
            ids_new[:self.n] = self._ids[:self.n]
            ret_new = np.zeros((cap, 2), np.float64)
            ret_new[:self.n] = self._ret[:self.n]
            self._x, self._sq, self._ids, self._ret = x_new, sq_new, ids_new, ret_new
        rows = slice(self.n, need)
        self._ret[rows] = np.nan if retention is None else retention
        self._x[rows] = x
        self._sq[rows] = np.einsum("ij,ij->i", self._x[rows], self._x[rows])
        self._ids[rows] = ids
        self._max_sq = max(self._max_sq, float(self._sq[rows].max()))
        self.n = need

    def remove(self, ids: np.ndarray) -> None:
        """Drop the rows of ``ids`` (any that are absent are ignored); the rest keep their order."""
        if len(ids) == 0 or self.n == 0:
            return
        keep = ~np.isin(self._ids[:self.n], ids)
        m = int(keep.sum())
        if m == self.n:
            return
        # _max_sq stays an upper bound: still valid, and not worth a pass over the rows
        if self._part is not None:
            self._part.kill(self._ids[:self.n][~keep])
        self._x[:m] = self._x[:self.n][keep]
        self._sq[:m] = self._sq[:self.n][keep]
        self._ids[:m] = self._ids[:self.n][keep]
        self._ret[:m] = self._ret[:self.n][keep]
        self._x[m:self.n] = 0
        self._sq[m:self.n] = np.inf
        self.n = m

    def knn(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest rows of each query ``q`` (Q, D) float32: ids (Q, k) int64 and squared
        Euclidean distances (Q, k) float64, nearest first (ties: lower id first). Columns past
        the number of rows hold id -1 and distance +inf."""
        nq = len(q)
        out_ids = np.full((nq, k), -1, np.int64)
        out_d2 = np.full((nq, k), np.inf)
        if self.n == 0 or nq == 0:
            return out_ids, out_d2
        kk = min(k, self.n)
        kx = min(self.n, kk + EXTRA)
        nb = -(-self.n // BLOCK)  # groups; group j holds rows j, j + nb, j + 2 nb, ... (BLOCK of them)
        cols = nb * BLOCK
        x, sq = self._x[:cols], self._sq[:cols]
        q64 = q.astype(np.float64)
        qn = np.einsum("ij,ij->i", q64, q64)  # (Q,)
        bound = self._bound(qn)  # (Q,)
        if nq == 1:  # the latency-critical case, in 1-D operations (fewer and cheaper calls)
            out_ids[0, :kk], out_d2[0, :kk] = self._knn1(q[0], q64[0], float(qn[0]), float(bound[0]), kk, kx, nb)
            return out_ids, out_d2
        step = max(1, _CHUNK_ELEMS // cols)
        for s in range(0, nq, step):
            e = min(nq, s + step)
            a = q[s:e] @ x.T  # (c, cols)
            a *= -2
            a += sq  # ||x||^2 - 2 x.q: the squared distance minus ||q||^2
            if nb > kx:  # the kx smallest values lie in the kx groups of smallest minimum
                mins = a.reshape(e - s, BLOCK, nb).min(1)  # (c, nb)
                groups = np.argpartition(mins, kx - 1, axis=1)[:, :kx]  # (c, kx)
                pool = (groups[:, None, :] + nb * np.arange(BLOCK)[None, :, None]).reshape(e - s, -1)  # (c, BLOCK * kx)
            else:
                pool = np.broadcast_to(np.arange(cols), (e - s, cols))
            vals = np.take_along_axis(a, pool, 1)
            pick = np.argpartition(vals, kx - 1, axis=1)[:, :kx]
            cand = np.take_along_axis(pool, pick, 1)  # (c, kx) the kx smallest approximate values
            cand_approx = np.take_along_axis(vals, pick, 1)
            d2 = self._exact(cand, q64[s:e])  # (c, kx)
            ids = self._ids[cand]
            order = np.lexsort((ids, d2), axis=1)[:, :kk]
            out_ids[s:e, :kk] = np.take_along_axis(ids, order, 1)
            out_d2[s:e, :kk] = np.take_along_axis(d2, order, 1)
            # a row outside the candidates has approx >= max(cand_approx); it may still beat the
            # k-th exact distance only if that is within the rounding bound of the threshold
            limit = out_d2[s:e, kk - 1] - qn[s:e] + bound[s:e]  # (c,) in the approximate scale
            unsure = np.flatnonzero(cand_approx.max(1) <= limit) if kx < self.n else []
            for r in unsure:
                rows = np.flatnonzero(a[r, :self.n] <= limit[r])
                d2r = self._exact(rows[None], q64[s + r:s + r + 1])[0]
                idr = self._ids[rows]
                o = np.lexsort((idr, d2r))[:kk]
                out_ids[s + r, :kk], out_d2[s + r, :kk] = idr[o], d2r[o]
        return out_ids, out_d2

    def partition(self, build: bool = True) -> BallPartition | None:
        """The rows grouped into balls for pruned single queries (:mod:`.partition`), rebuilt when
        more than :data:`TAIL_MAX` rows were added or an eighth of its rows removed since it was
        made; ``None`` under :data:`PRUNE_MIN` rows, or when stale and not ``build``. Queries
        build it by themselves after :data:`PRUNE_AFTER` full scans (0.65 s at 10^5 rows of D = 64, measured)."""
        part = self._part
        if part is not None and (self._tail(part) > TAIL_MAX or part.dead > len(part) // 8):
            part = self._part = None
        if part is None and build and self.n >= PRUNE_MIN:
            part = self._part = BallPartition(self._x[:self.n], self._ids[:self.n])
            self._scans = 0
        return part

    def _tail(self, part: BallPartition) -> int:
        """Rows added since ``part`` was built (the last rows: ids only grow)."""
        return self.n - int(np.searchsorted(self._ids[:self.n], part.max_id, side="right"))

    def _pruned(self, q64: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`_knn1` through the partition (the rows added since it was built scanned
        directly), or ``None`` (no partition yet, or the bounds prune too little)."""
        if self.use_blas or not self.prune or self.n < PRUNE_MIN:
            return None
        part = self.partition(build=self._scans >= PRUNE_AFTER)
        if part is None:
            self._scans += 1
            return None
        if part.misses >= MISSES and part.misses % MISSES:  # it keeps giving up: try again now and then
            part.misses += 1
            return None
        rows = np.arange(self.n - self._tail(part), self.n)
        d2 = self._exact(rows[None], q64[None])[0]
        ids = self._ids[rows]
        order = np.lexsort((ids, d2))[:k]
        return part.knn1(q64.astype(np.float32), q64, k, ids[order], d2[order])

    def _bound(self, qn: np.ndarray) -> np.ndarray:
        """Per query of squared norm ``qn``, a bound on the float32 rounding error of
        ``||x||^2 - 2 x.q`` over the rows (:func:`~worldjepa.memory.partition.rounding_bound`)."""
        return rounding_bound(self.dim, self._max_sq, qn)

    def _knn1(self, q: np.ndarray, q64: np.ndarray, qn: float, bound: float, kk: int, kx: int,
              nb: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`knn` of one query (D,): ids (kk,), squared distances (kk,)."""
        found = self._pruned(q64, kk)
        if found is not None:
            return found
        x = self._x[:nb * BLOCK]
        a = x @ q if self.use_blas else np.einsum("ij,j->i", x, q)  # (cols,)
        a *= -2
        a += self._sq[:nb * BLOCK]
        if nb > kx:
            groups = np.argpartition(a.reshape(BLOCK, nb).min(0), kx - 1)[:kx]
            pool = (groups + nb * np.arange(BLOCK)[:, None]).ravel()  # (BLOCK * kx,)
        else:
            pool = np.arange(self.n)
        vals = a[pool]
        pick = np.argpartition(vals, kx - 1)[:kx]
        cand = pool[pick]
        if kx < self.n:
            d2 = self._exact(cand[None], q64[None])[0]
            ids = self._ids[cand]
            order = np.lexsort((ids, d2))[:kk]
            limit = d2[order[-1]] - qn + bound
            if vals[pick].max() > limit:
                return ids[order], d2[order]
            cand = np.flatnonzero(a[:self.n] <= limit)  # rounding leaves these in play
        d2 = self._exact(cand[None], q64[None])[0]
        ids = self._ids[cand]
        order = np.lexsort((ids, d2))[:kk]
        return ids[order], d2[order]

    def _exact(self, rows: np.ndarray, q64: np.ndarray) -> np.ndarray:
        """Squared distances (c, r) in float64 between rows ``rows`` (c, r) and queries (c, D)."""
        return exact_d2(self._x[rows], q64[:, None, :])


def _min_d2(a: np.ndarray, a_sq: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a`` (n, D) float64, the smallest squared distance to a row of ``b``
    (m, D) and its index (+inf and -1 when ``b`` is empty)."""
    best = np.full(len(a), np.inf)
    arg = np.full(len(a), -1, np.int64)
    step = max(1, _CHUNK_ELEMS // max(1, len(a)))
    for s in range(0, len(b), step):
        d2 = a_sq[:, None] + b_sq[None, s:s + step] - 2 * (a @ b[s:s + step].T)  # (n, m')
        j = d2.argmin(1)
        v = d2[np.arange(len(a)), j]
        better = v < best
        best[better], arg[better] = v[better], j[better] + s
    return np.maximum(best, 0.0), arg


def scan_batch(index: VectorIndex, x: np.ndarray, radius: float,
               chunk: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Novelty and near-duplicates of a batch ``x`` (N, D) float32 against ``index``, as if its
    rows arrived one at a time: row i is compared with the stored rows and with the batch's
    earlier rows that were kept.

    Returns ``into_id`` (N,) int64: the stored id row i merges into, else -1; ``into_row``
    (N,) int64: the earlier batch row it merges into, else -1; ``novelty`` (N,) float64: for
    kept rows, the Euclidean distance to the nearest other entry (+inf when there is none).
    A row merges when its nearest entry is within ``radius`` (``radius`` 0: never).
    """
    n = len(x)
    stored_ids, stored_d2 = index.knn(x, 1)
    best_d2, best_id = stored_d2[:, 0], stored_ids[:, 0]  # (N,)
    best_row = np.full(n, -1, np.int64)
    x64 = x.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    r2 = radius * radius if radius > 0 else -1.0
    into_id = np.full(n, -1, np.int64)
    into_row = np.full(n, -1, np.int64)
    novelty = np.full(n, np.inf)
    kept: list[int] = []
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        if kept:  # the batch's kept rows before this chunk
            prev = np.asarray(kept)
            d2, j = _min_d2(x64[s:e], sq[s:e], x64[prev], sq[prev])
            better = d2 < best_d2[s:e]
            best_d2[s:e][better], best_row[s:e][better] = d2[better], prev[j[better]]
            best_id[s:e][better] = -1
        within = np.maximum(sq[s:e, None] + sq[None, s:e] - 2 * (x64[s:e] @ x64[s:e].T), 0.0)  # (c, c)
        if r2 < 0:  # nothing merges: every earlier row of the chunk counts
            within[~np.tri(e - s, k=-1, dtype=bool)] = np.inf
            novelty[s:e] = np.sqrt(np.minimum(best_d2[s:e], within.min(1)))
            kept.extend(range(s, e))
            continue
        local = np.zeros(e - s, np.int64)  # the chunk's kept rows so far: local[:m]
        m = 0
        for i in range(e - s):
            d2, row, sid = best_d2[s + i], best_row[s + i], best_id[s + i]
            if m:
                w = within[i, local[:m]]
                j = int(w.argmin())
                if w[j] < d2:
                    d2, row, sid = w[j], s + int(local[j]), -1
            if d2 <= r2:
                into_id[s + i], into_row[s + i] = sid, row
            else:
                novelty[s + i] = np.sqrt(d2)
                local[m] = i
                m += 1
        kept.extend((s + local[:m]).tolist())
    return into_id, into_row, novelty
