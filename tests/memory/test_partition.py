"""The ball partition behind single nearest-neighbour queries: exact (the same answers as a
float64 brute force, ties to the lower id), reading few rows where the data are clustered, giving
up (and the index scanning every row) where they are not, and kept in step with added and
removed rows."""

from __future__ import annotations

import numpy as np
import pytest

from worldjepa.memory import index as index_mod
from worldjepa.memory.index import VectorIndex
from worldjepa.memory.partition import BallPartition


def clustered(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Rows near a 2-D sheet folded into ``dim`` dimensions, as a trajectory's embeddings are."""
    rng = np.random.default_rng(seed)
    uv = rng.uniform(-1, 1, (n, 2))
    lift = rng.standard_normal((6, dim))
    feats = np.concatenate([uv, np.sin(3 * uv), np.cos(2 * uv)], 1)
    return (feats @ lift + 0.01 * rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((x.astype(np.float64) - q.astype(np.float64)) ** 2).sum(1)
    order = np.lexsort((ids, d2))[:k]
    return ids[order], d2[order]


def index_of(x: np.ndarray, ids: np.ndarray | None = None) -> VectorIndex:
    index = VectorIndex(x.shape[1])
    index.append(np.arange(len(x), dtype=np.int64) if ids is None else ids, x)
    return index


@pytest.fixture
def prune_small(monkeypatch):
    """Partitions from 500 rows on, built at the first query."""
    monkeypatch.setattr(index_mod, "PRUNE_MIN", 500)
    monkeypatch.setattr(index_mod, "PRUNE_AFTER", 0)
    monkeypatch.setattr(index_mod, "TAIL_MAX", 100)


def check_queries(index: VectorIndex, x: np.ndarray, ids: np.ndarray, qs: np.ndarray, ks=(1, 5)) -> None:
    for k in ks:
        for q in qs:
            got_ids, got_d2 = index.knn(q[None], k)
            want_ids, want_d2 = brute_force(x, ids, q, k)
            np.testing.assert_array_equal(got_ids[0], want_ids)
            np.testing.assert_allclose(got_d2[0], want_d2, rtol=1e-12, atol=0)


def test_pruned_queries_are_exact_and_read_few_rows(prune_small):
    x = clustered(6000)
    x[100:110] = x[4000]  # exact ties: the lower id wins
    ids = np.arange(len(x), dtype=np.int64)
    index = index_of(x)
    rng = np.random.default_rng(1)
    qs = np.concatenate([x[rng.integers(0, len(x), 20)] + 0.003 * rng.standard_normal((20, 16)), x[[4000, 7]]])
    check_queries(index, x, ids, qs.astype(np.float32), ks=(1, 5, 12))
    part = index.partition(build=False)
    assert isinstance(part, BallPartition) and len(part) == 6000
    reads = []
    for q in qs[:20]:
        index.knn(q[None].astype(np.float32), 5)
        reads.append(part.reads)
    assert np.median(reads) < 0.1 * len(x)  # the bounds prune: a full scan reads all 6,000
    assert index.knn(x[4000][None], 3)[0].tolist() == [[100, 101, 102]]


def test_unstructured_rows_fall_back_to_the_full_scan(prune_small):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 32)).astype(np.float32)  # an isotropic cloud: nothing to prune
    index = index_of(x)
    part = index.partition()
    assert part is not None
    q = rng.standard_normal(32)
    assert part.knn1(q.astype(np.float32), q, 5, np.zeros(0, np.int64), np.zeros(0)) is None  # gives up
    check_queries(index, x, np.arange(3000), rng.standard_normal((20, 32)).astype(np.float32))
    assert part.misses > 16  # it stopped trying at every query, and the answers stayed exact


def test_removed_and_added_rows(prune_small):
    x = clustered(3000, seed=3)
    more = clustered(400, seed=4)
    index = index_of(x)
    first = index.partition()
    at = int(np.flatnonzero(first.ids == 1234)[0])
    j = int(np.searchsorted(first.off, at, side="right")) - 1
    ball = first.ids[first.off[j]:first.off[j + 1]]  # row 1234's ball: all but two of it removed
    gone = np.union1d(np.arange(0, 3000, 20), ball[ball != 1234][1:])  # under an eighth: the partition stays
    index.remove(gone)  # masked in the partition: never an answer
    assert index.partition(build=False) is first and first.dead == len(gone)
    live = np.setdiff1d(np.arange(3000), gone)
    rng = np.random.default_rng(5)
    qs = (np.concatenate([x[rng.choice(live, 10)], x[gone[:5]], more[:5], x[[1234]]]) + 0.002).astype(np.float32)
    check_queries(index, x[live], live, qs, ks=(1, 5, 12))
    index.append(np.arange(3000, 3060), more[:60])  # a tail the query scans directly
    assert index.partition(build=False) is first
    live = np.concatenate([live, np.arange(3000, 3060)])
    all_x = np.concatenate([x, more])
    check_queries(index, all_x[live], live, qs, ks=(1, 5, 12))
    index.append(np.arange(3060, 3400), more[60:])  # past TAIL_MAX: rebuilt at the next query
    assert index.partition(build=False) is None
    live = np.concatenate([live, np.arange(3060, 3400)])
    check_queries(index, all_x[live], live, qs)
    assert len(index.partition(build=False)) == len(live)


def test_queries_build_the_partition_after_enough_scans(monkeypatch):
    monkeypatch.setattr(index_mod, "PRUNE_MIN", 500)
    monkeypatch.setattr(index_mod, "PRUNE_AFTER", 3)
    x = clustered(1000, seed=6)
    index = index_of(x)
    for _ in range(3):
        index.knn(x[:1], 1)
        assert index.partition(build=False) is None  # a few one-off queries pay no build
    index.knn(x[:1], 1)
    assert index.partition(build=False) is not None
    index.knn(x[:4], 1)  # batches never use it
    small = index_of(x[:400])
    assert small.partition() is None  # under PRUNE_MIN: always the full scan


def test_rounding_is_certified_far_from_the_origin(prune_small):
    """Rows 300 away from the origin with a spread of 1e-3: float32's ||x||^2 - 2 x.q is useless
    there, and every answer must still be exact."""
    x = (300 + 1e-3 * clustered(2000, seed=7)).astype(np.float32)
    index = index_of(x)
    rng = np.random.default_rng(8)
    qs = (x[rng.integers(0, 2000, 8)] + 1e-5 * rng.standard_normal((8, 16))).astype(np.float32)
    check_queries(index, x, np.arange(2000), qs)


def test_a_store_answers_the_same_with_and_without_the_partition(prune_small, tmp_path):
    """Through MemoryStore: inserts, evictions at capacity and a second connection's refreshes
    (the index's tail of new rows and its masked removals) leave pruned single queries equal to
    full scans."""
    from worldjepa.memory import MemoryStore

    x = clustered(2600, seed=9)
    rng = np.random.default_rng(10)
    qs = (x[rng.integers(0, len(x), 12)] + 0.002).astype(np.float32)

    def same_answers(mem):
        for q in qs:
            for k in (1, 6):
                got = mem.nearest(q, k)
                VectorIndex.prune = False
                try:
                    want = mem.nearest(q, k)
                finally:
                    VectorIndex.prune = True
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])

    with MemoryStore.create(tmp_path / "m.db", dim=16, fingerprint="f" * 16, capacity=1500) as writer, \
            MemoryStore.open(tmp_path / "m.db", readonly=True) as reader:
        writer.add(x[:1500], episode=0, step=np.arange(1500), surprise=rng.random(1500))
        same_answers(writer)
        first = writer._index.partition(build=False)
        for s in range(1500, len(x), 50):  # each add evicts 50: a tail, masked rows, now and then a rebuild
            writer.add(x[s:s + 50], episode=1 + s // 50, step=np.arange(50), surprise=rng.random(50))
            same_answers(writer)
            same_answers(reader)
        part = writer._index.partition(build=False)
        assert len(writer) == 1500 and part is not None and (part is not first or part.dead > 0)
