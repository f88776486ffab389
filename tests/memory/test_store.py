"""The memory store: whole batches after a SIGKILL, readers in other processes, exact retrieval,
retention under capacity, merging revisits, event boundaries, bad files and inputs, the map."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT
from worldjepa.errors import MemoryFileError, MemoryInputError, WorldJepaError
from worldjepa.memory import MemoryStore
from worldjepa.memory.rules import lowest, new_stream, percentile_rank, retention_scores, segment

FP = "wm-fingerprint-0123456789abcdef"
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

# appends batches until killed; every entry's embedding holds (its batch number, its row in the batch)
WRITER = f"""
import sys
import numpy as np
from worldjepa.memory import MemoryStore
mem = MemoryStore.open(sys.argv[1], dim=16, fingerprint={FP!r})
batch, rng = int(sys.argv[2]), np.random.default_rng(int(sys.argv[3]))
b = len(mem) // batch
print("ready", flush=True)
while True:
    x = rng.standard_normal((batch, 16)).astype(np.float32)
    x[:, 0], x[:, 1] = b, np.arange(batch)
    mem.add(x, episode=b, step=np.arange(batch), state=rng.standard_normal((batch, 4)),
            thumbnail=rng.integers(0, 256, (batch, 16, 16, 3), dtype=np.uint8))
    b += 1
"""

# answers "seed k" lines with the nearest entries of 7 seeded queries
READER = f"""
import json, sys
import numpy as np
from worldjepa.memory import MemoryStore
mem = MemoryStore.open(sys.argv[1], dim=16, fingerprint={FP!r}, readonly=True)
for line in sys.stdin:
    seed, k = map(int, line.split())
    ids, d = mem.nearest(np.random.default_rng(seed).standard_normal((7, 16)).astype(np.float32), k)
    print(json.dumps({{"n": len(mem), "ids": ids.tolist(), "d": d.tobytes().hex()}}), flush=True)
"""


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quick_check(path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        conn.close()


def whole_batches(path, batch: int) -> int:
    """The number of batches in the file; fails unless every batch is complete and decodes."""
    with MemoryStore.open(path, dim=16, fingerprint=FP, readonly=True) as mem:
        ids, x = mem.embeddings()
        got = mem.get(ids)
    assert len(x) % batch == 0, f"{len(x)} entries: a torn batch"
    b = x[:, 0].reshape(-1, batch)
    np.testing.assert_array_equal(b, np.repeat(np.arange(len(b))[:, None], batch, 1))
    np.testing.assert_array_equal(x[:, 1].reshape(-1, batch), np.tile(np.arange(batch), (len(b), 1)))
    assert got["state"].shape == (len(x), 4) and np.isfinite(got["state"]).all()
    assert got["thumbnail"].shape == (len(x), 16, 16, 3)
    assert quick_check(path) == "ok"
    return len(b)


def test_whole_batches_check_catches_a_torn_batch(tmp_path):
    path = tmp_path / "torn.db"
    with MemoryStore.create(path, dim=16, fingerprint=FP) as mem:
        x = np.zeros((75, 16), np.float32)
        x[:, 0], x[:, 1] = np.arange(75) // 50, np.arange(75) % 50
        mem.add(x, episode=0, step=np.arange(75), state=np.zeros((75, 4)),
                thumbnail=np.zeros((75, 16, 16, 3), np.uint8))
    with pytest.raises(AssertionError, match="torn"):
        whole_batches(path, 50)


def test_sigkill_mid_write_leaves_only_whole_batches(tmp_path):
    """kill -9 a writer at random moments, four times; meanwhile this process reads."""
    path = tmp_path / "mem.db"
    MemoryStore.create(path, dim=16, fingerprint=FP).close()
    rng = np.random.default_rng(0)
    reader = MemoryStore.open(path, dim=16, fingerprint=FP, readonly=True)
    batches = 0
    for kill in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "50", str(kill)], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
            end = time.monotonic() + rng.uniform(0.3, 0.7)
            deadline = end + 120  # on a loaded machine the writer may need longer than the window to commit
            while time.monotonic() < end or (len(reader) // 50 <= batches and time.monotonic() < deadline):
                assert len(reader) % 50 == 0  # a reader never sees part of a batch
                reader.nearest(np.zeros(16, np.float32), k=3)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        now = whole_batches(path, 50)
        assert now > batches, "the writer made no progress after reopening the file"
        batches = now
    ids, x = reader.embeddings()  # the reader's incrementally refreshed copy equals the file
    with MemoryStore.open(path, dim=16, fingerprint=FP) as fresh:
        ids2, x2 = fresh.embeddings()
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(x, x2)
    reader.close()


def test_second_process_reads_identical_results_while_the_first_appends(tmp_path):
    path = tmp_path / "mem.db"
    rng = np.random.default_rng(1)
    mem = MemoryStore.create(path, dim=16, fingerprint=FP, capacity=2500)
    for _ in range(4):
        mem.add(rng.standard_normal((500, 16)).astype(np.float32), episode=0, step=0, surprise=rng.random(500))
    proc = subprocess.Popen([sys.executable, "-c", READER, str(path)], env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def same_answer(seed: int, k: int) -> np.ndarray:
        proc.stdin.write(f"{seed} {k}\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        theirs = json.loads(line)
        ids, d = mem.nearest(np.random.default_rng(seed).standard_normal((7, 16)).astype(np.float32), k)
        assert theirs["n"] == len(mem)
        np.testing.assert_array_equal(np.array(theirs["ids"]), ids)
        assert theirs["d"] == d.tobytes().hex()  # bit for bit
        return ids

    try:
        before = same_answer(7, 5)
        q = np.random.default_rng(7).standard_normal((7, 16)).astype(np.float32)
        new = mem.add(q + 1e-3 * rng.standard_normal((7, 16)).astype(np.float32), episode=1, step=0, surprise=1.0)
        mem.add(rng.standard_normal((393, 16)).astype(np.float32), episode=1, step=0, surprise=rng.random(393))
        after = same_answer(7, 5)  # the reader saw the new entries
        np.testing.assert_array_equal(after[:, 0], new)
        assert not np.array_equal(before, after)
        mem.add(rng.standard_normal((600, 16)).astype(np.float32), episode=2, step=0, surprise=rng.random(600))
        assert len(mem) == 2500 and mem.stats()["evicted"] == 500
        same_answer(7, 1)  # ... and the evictions
        same_answer(8, 5)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        mem.close()


def brute_force(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(((x.astype(np.float64)[None] - q.astype(np.float64)[:, None]) ** 2).sum(-1))  # (Q, M)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, 1)


@pytest.mark.parametrize("n,offset", [(300, 0.0), (5000, 0.0), (2000, 300.0)])
def test_nearest_is_exact(tmp_path, n, offset):
    """Against a float64 brute force, k = 1 and 5, 9 queries; offset 300 with a spread of 1e-3
    makes float32's ||x||^2 - 2 x.q useless, so the exact fallback must answer."""
    rng = np.random.default_rng(n)
    scale = 1e-3 if offset else 1.0
    x = (offset + scale * rng.standard_normal((n, 16)) * rng.uniform(0.5, 2, (n, 1))).astype(np.float32)
    q = (offset + scale * rng.standard_normal((9, 16))).astype(np.float32)
    q[0] = x[17]
    with MemoryStore.create(tmp_path / "m.db", dim=16, fingerprint=FP) as mem:
        for part in np.array_split(np.arange(n), 3):
            mem.add(x[part], episode=0, step=part)
        for k in (1, 5):
            ids, d = mem.nearest(q, k)
            want_ids, want_d = brute_force(x, q, k)
            assert ids.shape == d.shape == (9, k) and d.dtype == np.float32
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_allclose(d, want_d, rtol=1e-6, atol=1e-9)
            for i in range(len(q)):  # one query at a time takes another code path: the same answers
                one_ids, one_d = mem.nearest(q[i], k)
                np.testing.assert_array_equal(one_ids[0], ids[i])
                np.testing.assert_allclose(one_d[0], d[i], rtol=1e-6, atol=1e-9)
        assert mem.nearest(q[0], 1)[0].tolist() == [[17]]  # a (D,) query is one row


def test_nearest_pads_past_the_entries(tmp_path):
    with MemoryStore.create(tmp_path / "m.db", dim=4, fingerprint=FP) as mem:
        ids, d = mem.nearest(np.zeros((2, 4)), k=3)
        assert (ids == -1).all() and np.isinf(d).all()
        mem.add(np.eye(4, dtype=np.float32)[:2], episode=0, step=[0, 1])
        ids, d = mem.nearest(np.array([1, 0, 0, 0], np.float32), k=3)
        assert ids.tolist() == [[0, 1, -1]] and d[0, 0] == 0 and np.isinf(d[0, 2])


def test_retention_score_is_the_documented_one():
    s = np.array([1.0, np.nan, 3.0, 2.0])
    np.testing.assert_allclose(percentile_rank(s), [0.0, 0.5, 1.0, 0.5])  # NaN = the median (2.0)
    score = retention_scores(s, np.array([0.0, 0.0, 0.0, 9.0]), np.array([True, False, False, False]))
    np.testing.assert_allclose(score, [2 + 1 / 3, 0.5, 1.0, 1.0])  # pinned: + 2; novelty ties rank 1/3
    assert lowest(score, np.array([10, 11, 12, 13]), 2).tolist() == [1, 2]  # equal scores: the older first


def clustered_with_specials(rng, n_ordinary: int = 190):
    """Ordinary entries in 3 tight clusters with surprise in [0, 1), 5 surprising ones inside the
    clusters, 5 novel ones far from everything; shuffled. Returns x, surprise, kind."""
    centres = np.zeros((3, 8))
    centres[:, 0] = [0, 10, 20]
    which = rng.integers(0, 3, n_ordinary + 5)
    inside = centres[which] + 0.05 * rng.standard_normal((n_ordinary + 5, 8))
    far = np.zeros((5, 8))
    far[:, 1] = 1000 * np.arange(1, 6)
    x = np.concatenate([inside, far]).astype(np.float32)
    surprise = np.concatenate([rng.random(n_ordinary), np.full(5, 50.0), np.full(5, 0.5)])
    kind = np.array(["ordinary"] * n_ordinary + ["surprising"] * 5 + ["novel"] * 5)
    perm = rng.permutation(len(x))
    return x[perm], surprise[perm], kind[perm]


@pytest.mark.parametrize("batch", [25, 200])
def test_capacity_keeps_the_surprising_and_the_novel(tmp_path, batch):
    rng = np.random.default_rng(batch)
    x, surprise, kind = clustered_with_specials(rng)
    with MemoryStore.create(tmp_path / "m.db", dim=8, fingerprint=FP, capacity=40) as mem:
        ids = np.concatenate([mem.add(x[s:s + batch], episode=0, step=np.arange(s, s + min(batch, 200 - s)),
                                      surprise=surprise[s:s + batch]) for s in range(0, 200, batch)])
        assert len(mem) == 40 and mem.stats()["evicted"] == 160
        kept = mem.has(ids)
        assert kept[kind != "ordinary"].all(), "a surprising or novel entry was evicted"
        if batch == 200:  # one batch: the 160 lowest scores were evicted on arrival, never written
            assert (ids == -1).sum() == 160 and (ids[kept] >= 0).all()
        got = mem.get(ids[kept])
        np.testing.assert_array_equal(got["surprise"], surprise[kept])
        assert (got["novelty"][kind[kept] == "novel"] > 500).all()


def test_merging_revisits_grows_memory_sublinearly(tmp_path):
    rng = np.random.default_rng(3)
    path = np.cumsum(rng.standard_normal((100, 8)), 0)
    path = (path / np.linalg.norm(np.diff(path, axis=0), axis=1).min()).astype(np.float32)  # steps >= 1
    with MemoryStore.create(tmp_path / "m.db", dim=8, fingerprint=FP, merge_radius=0.3) as mem:
        first = mem.add(path, episode=0, step=np.arange(100), surprise=0.5)
        sizes = []
        for lap in range(1, 6):
            s = np.full(100, 0.5)
            s[10] = 2.0 * lap
            again = mem.add(path + 0.01 * rng.standard_normal(path.shape).astype(np.float32), episode=lap,
                            step=np.arange(100), time=100.0 * lap + np.arange(100), surprise=s)
            np.testing.assert_array_equal(again, first)
            sizes.append(len(mem))
        assert sizes == [100] * 5, "revisits were stored again"
        got = mem.get(first)
        assert (got["count"] == 6).all()
        assert got["surprise"][10] == 10.0 and got["surprise"][11] == 0.5  # the max of all sightings
        assert got["last_time"][5] == 505.0 and got["time"][5] == 5.0
        new = mem.add(path + 50, episode=6, step=np.arange(100))  # new places are stored
        assert len(mem) == 200 and len(set(new.tolist())) == 100
        assert mem.stats()["merged"] == 500
        dup = mem.add(np.stack([path[0] + 100, path[0] + 100.01, path[0] - 100]), episode=7, step=[0, 1, 2])
        assert dup[0] == dup[1] != dup[2] and mem.get(dup[:1])["count"][0] == 2  # within one batch too


def surprise_series():
    """Two episodes (60 and 40 steps) of calm surprise with peaks at 25 and 45 (episode 0) and
    at 30 (episode 1), a NaN at 35, and an early spike at step 3 of episode 1 (too little history)."""
    t = np.arange(100)
    s = 1.0 + 0.05 * np.sin(t)
    s[[25, 45, 60 + 30, 60 + 3]] = 5.0
    s[35] = np.nan
    return np.r_[np.zeros(60), np.ones(40)].astype(np.int64), np.r_[np.arange(60), np.arange(40)], s


def test_events_start_at_episodes_and_surprise_peaks(tmp_path):
    episode, step, s = surprise_series()
    x = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    with MemoryStore.create(tmp_path / "m.db", dim=8, fingerprint=FP) as mem:
        for a in range(0, 100, 7):  # streamed in batches that cut across the boundaries
            mem.add(x[a:a + 7], episode=episode[a:a + 7], step=step[a:a + 7], surprise=s[a:a + 7])
        ev = mem.events()
        assert mem.stats()["events"] == 5
    assert [e["first_id"] for e in ev] == [0, 25, 45, 60, 90]
    assert [e["episode"] for e in ev] == [0, 0, 0, 1, 1]
    assert [(e["start_step"], e["end_step"], e["entries"]) for e in ev] == [
        (0, 24, 25), (25, 44, 20), (45, 59, 15), (0, 29, 30), (30, 39, 10)]
    whole, _ = segment(episode, s, np.ones(100, bool), new_stream())  # one batch: the same events
    np.testing.assert_array_equal(np.unique(whole, return_index=True)[1], [0, 25, 45, 60, 90])


def test_an_event_gap_makes_a_plateau_of_surprise_one_event(tmp_path):
    """A surprise that climbs for a few samples after a change (a model predicting k steps ahead)
    starts one event per plateau with a gap, one per climbing sample without; the gap survives
    batches and reopening, and a later peak still starts its own event."""
    s = 1.0 + 0.05 * np.sin(np.arange(120))
    s[30:35] = [3.0, 6.0, 12.0, 24.0, 48.0]  # each above mean + 3 std of the window before it
    s[80] = 40.0
    x = np.random.default_rng(1).standard_normal((120, 8)).astype(np.float32)
    firsts = {}
    for gap in (0, 10):
        with MemoryStore.create(tmp_path / f"g{gap}.db", dim=8, fingerprint=FP, event_gap=gap) as mem:
            mem.add(x[:32], episode=0, step=np.arange(32), surprise=s[:32])  # the batch ends inside the plateau
        with MemoryStore.open(tmp_path / f"g{gap}.db") as mem:
            assert mem.event_gap == gap and mem.stats()["event_gap"] == gap
            mem.add(x[32:], episode=0, step=np.arange(32, 120), surprise=s[32:])
            firsts[gap] = [e["first_id"] for e in mem.events()]
        whole, _ = segment(np.zeros(120, np.int64), s, np.ones(120, bool), new_stream(), gap=gap)
        np.testing.assert_array_equal(np.unique(whole, return_index=True)[1], firsts[gap])
    assert firsts[0] == [0, 30, 31, 32, 33, 34, 80]
    assert firsts[10] == [0, 30, 80]
    with pytest.raises(MemoryInputError, match="event_gap must be an integer >= 0"):
        MemoryStore.create(tmp_path / "bad.db", dim=8, fingerprint=FP, event_gap=-1)


def test_refuses_a_memory_of_another_model_and_leaves_it_untouched(tmp_path):
    path = tmp_path / "mem.db"
    with MemoryStore.create(path, dim=64, fingerprint="ab12" * 8) as mem:
        mem.add(np.ones((3, 64), np.float32), episode=0, step=[0, 1, 2])
    before, listing = sha(path), sorted(os.listdir(tmp_path))
    with pytest.raises(MemoryFileError, match=r"mem.db was built with a model of embedding size 64 "
                                              r"\(fingerprint ab12ab12ab12\.\.\.\), not 32 \(cd34cd34cd34\.\.\.\)"):
        MemoryStore.open(path, dim=32, fingerprint="cd34" * 8)
    with pytest.raises(MemoryFileError, match=r"mem.db was built with other weights than this model's \(fingerprint "
                                              r"ab12ab12ab12\.\.\.; this model: cd34cd34cd34\.\.\.\).*--overwrite"):
        MemoryStore.open(path, fingerprint="cd34" * 8)
    with pytest.raises(MemoryFileError, match="not 32"):
        MemoryStore.open(path, dim=32, readonly=True)
    assert sha(path) == before and sorted(os.listdir(tmp_path)) == listing
    with MemoryStore.open(path, dim=64, fingerprint="ab12" * 8) as mem:
        assert len(mem) == 3


def test_bad_files_get_a_clear_error_and_stay_as_they_were(tmp_path):
    good = tmp_path / "good.db"
    rng = np.random.default_rng(0)
    with MemoryStore.create(good, dim=16, fingerprint=FP) as mem:
        mem.add(rng.standard_normal((500, 16)).astype(np.float32), episode=0, step=np.arange(500),
                thumbnail=rng.integers(0, 256, (500, 16, 16, 3), dtype=np.uint8))
    data = good.read_bytes()
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    corrupt = bytearray(data)
    corrupt[len(data) // 2:len(data) // 2 + 8192] = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
    cases = {"truncated.db": (data[:len(data) // 2], "truncated"), "random.db": (rng.bytes(100_000), "not an SQLite"),
             "empty.db": (b"", "empty"), "corrupt.db": (bytes(corrupt), "corrupt"),
             "foreign.db": (None, "not a worldjepa memory")}
    for name, (content, why) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        before = sha(path)
        for readonly in (False, True):
            with pytest.raises(MemoryFileError, match=why) as err:
                MemoryStore.open(path, readonly=readonly)
            assert str(path) in str(err.value) and "\n" not in str(err.value)
        assert sha(path) == before, f"{name} was modified"
    with pytest.raises(MemoryFileError, match="not found"):
        MemoryStore.open(tmp_path / "missing.db")
    with pytest.raises(MemoryFileError, match="directory"):
        MemoryStore.open(tmp_path)


def test_bad_entries_are_refused_and_nothing_is_written(tmp_path):
    with MemoryStore.create(tmp_path / "m.db", dim=8, fingerprint=FP) as mem:
        mem.add(np.ones((2, 8), np.float32), episode=0, step=[0, 1], action=np.zeros((2, 3)))
        before = mem.stats()
        x = np.zeros((4, 8), np.float32)
        x[2, 5] = np.nan
        bad = [dict(embeddings=x), dict(embeddings=np.full((4, 8), np.inf, np.float32)),
               dict(embeddings=np.zeros((4, 7), np.float32)), dict(embeddings=np.full((4, 8), 1e30, np.float32)),
               dict(step=[0, 1]), dict(step=0.5), dict(surprise=np.full(4, np.inf)),
               dict(action=np.zeros((4, 2))), dict(action=np.full((4, 3), np.nan)),
               dict(thumbnail=np.zeros((4, 8, 8, 3), np.float32)), dict(time=np.full(4, np.nan))]
        for kw in bad:
            args = {"embeddings": np.zeros((4, 8), np.float32), "episode": 1, "step": np.arange(4), **kw}
            with pytest.raises(MemoryInputError) as err:
                mem.add(**args)
            assert isinstance(err.value, ValueError) and isinstance(err.value, WorldJepaError)
            assert str(mem.path) in str(err.value)
        assert mem.stats() == before and len(mem) == 2
        with pytest.raises(MemoryInputError, match="no entry 7"):
            mem.get([0, 7])


def test_create_refuses_an_existing_file_unless_overwrite(tmp_path):
    path = tmp_path / "sub" / "m.db"
    with MemoryStore.create(path, dim=4, fingerprint=FP, meta={"env_id": "toy"}) as mem:
        mem.add(np.ones((1, 4), np.float32), episode=0, step=0)
    with pytest.raises(MemoryFileError, match="exists; pass overwrite=True"):
        MemoryStore.create(path, dim=4, fingerprint=FP)
    with MemoryStore.open(path, dim=4, fingerprint=FP) as mem:
        assert len(mem) == 1 and mem.meta == {"env_id": "toy"}
    with MemoryStore.create(path, dim=8, fingerprint="other", overwrite=True) as mem:
        assert len(mem) == 0 and mem.dim == 8
    with pytest.raises(MemoryFileError, match="directory"):
        MemoryStore.create(tmp_path, dim=4, fingerprint=FP, overwrite=True)
    with pytest.raises(MemoryInputError, match="capacity"):
        MemoryStore.create(tmp_path / "x.db", dim=4, fingerprint=FP, capacity=-1)
    with pytest.raises(MemoryInputError, match="JSON"):
        MemoryStore.create(tmp_path / "x.db", dim=4, fingerprint=FP, meta={"f": object()})
    assert sorted(os.listdir(tmp_path)) == ["sub"]  # nothing left behind
    with MemoryStore.open(path, readonly=True) as mem, pytest.raises(MemoryFileError, match="read-only"):
        mem.add(np.ones((1, 8), np.float32), episode=0, step=0)


def test_payloads_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.repeat(rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8), 2, 1), 2, 2)  # (3, 32, 32, 3)
    with MemoryStore.create(tmp_path / "m.db", dim=4, fingerprint=FP) as mem:
        a = mem.add(rng.standard_normal((3, 4)), episode=2, step=[5, 6, 7], action=rng.standard_normal((3, 2)),
                    state=rng.standard_normal((3, 5)), thumbnail=frames, surprise=[0.1, np.nan, 0.3])
        b = mem.add(rng.standard_normal((1, 4)), episode=2, step=8)
        got = mem.get([b[0], a[1]])
    np.testing.assert_array_equal(got["thumbnail"][1], frames[1, ::2, ::2])  # 2x2 blocks average to themselves
    assert (got["thumbnail"][0] == 0).all() and np.isnan(got["action"][0]).all() and np.isnan(got["state"][0]).all()
    assert got["step"].tolist() == [8, 6] and got["time"].tolist() == [8.0, 6.0] and np.isnan(got["surprise"]).all()


def test_graph_round_trips_and_reweights(tmp_path):
    path = tmp_path / "m.db"
    with MemoryStore.create(path, dim=4, fingerprint=FP, capacity=6) as mem:
        ids = mem.add(np.eye(4, dtype=np.float32).repeat(2, 0) * np.arange(1, 9)[:, None], episode=0, step=np.arange(8))
        assert len(mem) == 6
        assert mem.graph() is None
        nodes = mem.embeddings()[0][[0, 2, 4]]
        edges = np.array([[0, 1], [1, 2], [2, 0]])
        mem.set_graph(nodes, edges, np.array([3.0, 4.0, 5.0]), {"built_by": "test"})
        with pytest.raises(MemoryInputError, match="index nodes"):
            mem.set_graph(nodes, np.array([[0, 3]]), np.array([1.0]))
        with pytest.raises(MemoryInputError, match="not stored"):
            mem.set_graph(np.array([999]), np.zeros((0, 2), int), np.zeros(0))
        mem.set_edge_weights(np.array([2]), np.array([50.0]))
        mem.set_edge_weights(np.array([[0, 1]]), np.array([np.inf]))
        with pytest.raises(MemoryInputError, match="no edge"):
            mem.set_edge_weights(np.array([[1, 0]]), np.array([1.0]))
        # map nodes are evicted last: six far, surprising newcomers push out every other entry
        mem.add(100 + np.eye(4, dtype=np.float32).repeat(2, 0)[:6] * 50 * np.arange(1, 7)[:, None], episode=1,
                step=np.arange(6), surprise=10.0)
        assert mem.has(nodes).all() and len(mem) == 6 and not mem.has(ids[:2]).all()
    with MemoryStore.open(path, readonly=True) as mem:
        n, e, w, info = mem.graph()
    np.testing.assert_array_equal(n, nodes)
    np.testing.assert_array_equal(e, edges)
    np.testing.assert_array_equal(w, [np.inf, 4.0, 50.0])
    assert info == {"built_by": "test"}
    with MemoryStore.open(path) as mem:
        mem.set_graph(nodes[:2], np.array([[1, 0]]), np.array([7.0]))  # replaces the previous map
        assert mem.graph()[2].tolist() == [7.0] and mem.stats()["graph_edges"] == 1


def test_the_file_reads_with_sqlite3_and_numpy_alone(tmp_path):
    """docs/memory.md's file format: meta as JSON, little-endian BLOBs, raw RGB thumbnails."""
    path = tmp_path / "m.db"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8)).astype(np.float32)
    frames = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    with MemoryStore.create(path, dim=8, fingerprint=FP, meta={"env_id": "toy"}) as mem:
        mem.add(x, episode=0, step=[0, 1, 2], surprise=[0.5, np.nan, 2.0], state=np.ones((3, 2)), thumbnail=frames)
    conn = sqlite3.connect(path)
    meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    assert (meta["format"], meta["format_version"], meta["dim"], meta["meta"]) == ("worldjepa-memory", 1, 8, {"env_id": "toy"})
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = conn.execute("SELECT id, surprise, embedding, state, thumbnail FROM entries ORDER BY id").fetchall()
    conn.close()
    assert [r[0] for r in rows] == [0, 1, 2] and rows[1][1] is None
    np.testing.assert_array_equal(np.stack([np.frombuffer(r[2], "<f4") for r in rows]), x)
    np.testing.assert_array_equal(np.frombuffer(rows[2][3], "<f8"), [1.0, 1.0])
    np.testing.assert_array_equal(np.frombuffer(rows[0][4], np.uint8).reshape(16, 16, 3), frames[0])


def test_a_long_lived_store_decides_as_a_freshly_opened_one(tmp_path):
    """What a store keeps in RAM between calls (embeddings, surprise, novelty) never changes
    what an add does: the same adds through one open store, through a store reopened before
    every add, and through two stores taking turns on the file (each must pick up the other's
    entries, merges and evictions) leave the same entries, merges and evictions."""
    rng = np.random.default_rng(4)
    places = rng.standard_normal((60, 8)).astype(np.float32) * 3
    batches = []
    for b in range(12):
        pick = rng.integers(0, 60, 25)
        batches.append((places[pick] + 0.01 * rng.standard_normal((25, 8)).astype(np.float32),
                        np.where(rng.random(25) < 0.2, np.nan, rng.random(25) * (1 + b))))
    results = []
    for how in ("one", "reopened", "two"):
        path = tmp_path / f"{how}.db"
        MemoryStore.create(path, dim=8, fingerprint=FP, capacity=40, merge_radius=0.2).close()
        mem, other = MemoryStore.open(path), MemoryStore.open(path)
        out = []
        for b, (x, s) in enumerate(batches):
            if how == "reopened":
                mem.close()
                mem = MemoryStore.open(path)
            writer = other if how == "two" and b % 2 else mem
            out.append(writer.add(x, episode=b // 4, step=np.arange(25) + 25 * b, surprise=s))
        ids = mem.embeddings()[0]
        results.append((np.concatenate(out), mem.get(ids), mem.stats()))
        mem.close()
        other.close()
    ids_a, got_a, st_a = results[0]
    assert st_a["merged"] > 0 and st_a["evicted"] > 0
    for ids_b, got_b, st_b in results[1:]:
        np.testing.assert_array_equal(ids_a, ids_b)
        assert got_a.keys() == got_b.keys() and (st_a["merged"], st_a["evicted"]) == (st_b["merged"], st_b["evicted"])
        for key in got_a:
            np.testing.assert_array_equal(got_a[key], got_b[key])


def test_a_new_memory_file_gets_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        MemoryStore.create(tmp_path / "m.db", dim=4, fingerprint="f").close()
    finally:
        os.umask(mask)
    assert (tmp_path / "m.db").stat().st_mode & 0o777 == 0o644  # like datasets and runs, not mkstemp's 0600
