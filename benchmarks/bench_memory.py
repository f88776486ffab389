"""Memory store: batched inserts/s, exact nearest-neighbour latency, bytes per entry; and
whether an approximate index (faiss IVF) or sqlite-vec would pay, side by side.

    PYTHONPATH=. python benchmarks/bench_memory.py [--threads 2] [--dim 64] [--repeats 300] [--out /tmp/wj-bench-mem]
        [--peer-python /work/peer-faiss-venv/bin/python] [--peer-sizes 10000,100000,1000000] [--peer-threads 1]
        [--no-peer]

``--threads`` sets numpy's BLAS (OpenBLAS) threads (the script restarts itself with
``OPENBLAS_NUM_THREADS``): they serve batches of queries (an insert's novelty scan) and the
``use_blas`` column; one query runs on one thread by default (``VectorIndex.use_blas``). On a
2-core machine shared with other work, 2 BLAS threads are the fastest while the other core is
free and far slower when it is not (a BLAS call waits for its descheduled second thread).

Targets (the memory-store issue): >= 10,000 inserts/s in batches at 10^4 entries, and a single
query under 1 ms at 10^5 entries of D = 64. Latencies are the median (and 90th percentile) of
one call each, every call with a different query (a stored embedding plus noise).

The peers live in their own virtual environment, never a project dependency:
``python -m venv /work/peer-faiss-venv && /work/peer-faiss-venv/bin/pip install faiss-cpu
sqlite-vec pysqlite3-binary numpy`` (pysqlite3: this Python's sqlite3 module cannot load
extensions). The comparison runs in a subprocess with that python, on the same synthetic
embeddings, alternating ours (the store's in-RAM :class:`VectorIndex`, which needs only numpy)
and the peer at every repeat, so load on the machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def embeddings(n: int, dim: int, seed: int = 0, spread: float = 0.3) -> np.ndarray:
    """(n, dim) float32 from a mixture of 256 Gaussian clusters (``spread`` around unit-variance
    centres): neighbours are meaningful, as in a trajectory's embeddings, and IVF has structure
    to use. ``spread=inf``: one isotropic Gaussian (no structure: IVF's hard case)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((256, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        noise = rng.standard_normal((m, dim)).astype(np.float32)
        out[s:s + m] = noise if np.isinf(spread) else centres[rng.integers(0, 256, m)] + spread * noise
    return out


def queries(x: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (x[rng.integers(0, len(x), count)] + 0.05 * rng.standard_normal((count, x.shape[1]))).astype(np.float32)


def latency(fns: list, qs: np.ndarray) -> list[tuple[float, float]]:
    """(median, p90) milliseconds per call of each ``fn(q)``, calls alternating between them."""
    for fn in fns:
        for q in qs[:20]:
            fn(q)
    times = [[] for _ in fns]
    for q in qs:
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn(q)
            times[i].append(time.perf_counter() - t0)
    return [(1e3 * float(np.median(t)), 1e3 * float(np.percentile(t, 90))) for t in times]


def fill(path: Path, x: np.ndarray, batch: int, extra=None, **create) -> tuple[float, int]:
    """Seconds to add ``x`` to a new store at ``path`` in batches of ``batch``, and its entries.
    ``extra(rng, n)``: more columns of a batch (thumbnails, ...)."""
    from worldjepa.memory import MemoryStore

    with MemoryStore.create(path, dim=x.shape[1], fingerprint="bench", overwrite=True, **create) as mem:
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for s in range(0, len(x), batch):
            e = min(len(x), s + batch)
            more = extra(rng, e - s) if extra else {}
            mem.add(x[s:e], episode=s // 1000, step=np.arange(s, e) % 1000, surprise=rng.random(e - s), **more)
        sec = time.perf_counter() - t0
        return sec, len(mem)  # closing folds the WAL into the file


def bench_inserts(out: Path, dim: int) -> None:
    x = embeddings(10_000, dim)
    print("\n| inserts into a new store, up to 10^4 entries, D = %d | batch | entries/s | bytes/entry |" % dim)
    print("|---|---:|---:|---:|")
    frames = lambda rng, n: {"thumbnail": rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8),  # noqa: E731
                             "state": rng.standard_normal((n, 4)), "action": rng.standard_normal((n, 2))}
    dup = np.concatenate([x[:5000], x[:5000] + 1e-3 * np.random.default_rng(2).standard_normal((5000, dim))])
    cases = [("embedding + episode/step/surprise", x, 1, {}), ("", x, 10, {}), ("", x, 100, {}), ("", x, 1000, {}),
             ("+ 64x64 frame -> 16x16 thumbnail, state, action", x, 100, {"extra": frames}),
             ("durable=True (fsync every commit)", x, 100, {"durable": True}),
             ("capacity 5,000 (the second half evicts)", x, 100, {"capacity": 5000}),
             ("merge_radius 0.01, every entry seen twice", dup, 100, {"merge_radius": 0.01})]
    for name, data, batch, kw in cases:
        path = out / "ins.db"
        sec, n = fill(path, data, batch, **kw)
        per = path.stat().st_size / n
        print(f"| {name} | {batch:,} | {len(data) / sec:,.0f} | {per:,.0f} |", flush=True)
    # a bounded memory lives at its capacity: every add scores all entries and evicts
    from worldjepa.memory import MemoryStore

    big = embeddings(102_000, dim, seed=4)
    fill(out / "ins.db", big[:100_000], 1000, capacity=100_000)
    rng = np.random.default_rng(1)
    with MemoryStore.open(out / "ins.db") as mem:
        mem.nearest(big[0])  # loads the matrix outside the timing
        t0 = time.perf_counter()
        for s in range(100_000, 102_000, 100):
            mem.add(big[s:s + 100], episode=500, step=np.arange(100), surprise=rng.random(100))
        sec = time.perf_counter() - t0
    print(f"| at capacity 10^5 (every add scores 10^5 entries and evicts) | 100 | {2000 / sec:,.0f} | - |")


def switched(fn, **attrs):
    """``fn`` run with the given :class:`VectorIndex` class attributes (``use_blas``, ``prune``)."""
    from worldjepa.memory.index import VectorIndex

    def run(q):
        before = {a: getattr(VectorIndex, a) for a in attrs}
        for a, v in attrs.items():
            setattr(VectorIndex, a, v)
        try:
            return fn(q)
        finally:
            for a, v in before.items():
                setattr(VectorIndex, a, v)
    return run


def query_row(mem, name: str, qs: np.ndarray, first: float) -> str:
    """One row of the query table: full scans and pruned queries alternating, on the same queries."""
    t0 = time.perf_counter()
    part = mem._index.partition()  # what PRUNE_AFTER full scans would trigger, timed apart
    build = time.perf_counter() - t0
    fns = [switched(lambda q: mem.nearest(q, 1), prune=False), lambda q: mem.nearest(q, 1),
           switched(lambda q: mem.nearest(q, 10), prune=False), lambda q: mem.nearest(q, 10),
           switched(lambda q: mem.nearest(q, 10), use_blas=True)]
    (f1, fp1), (m1, p1), (f10, fp10), (m10, p10), (mb, pb) = latency(fns, qs)
    reads = []
    for q in qs[:50]:
        mem.nearest(q, 10)
        reads.append(part.reads if part is not None else len(mem))
    t0 = time.perf_counter()
    for _ in range(5):
        mem.nearest(qs[:100], 10)
    many = (time.perf_counter() - t0) / 5
    return (f"| {name} | {len(mem):,} | {f1:.3f} ({fp1:.3f}) | **{m1:.3f}** ({p1:.3f}) | {f10:.3f} ({fp10:.3f}) "
            f"| **{m10:.3f}** ({p10:.3f}) | {np.median(reads):,.0f} | {build * 1e3:,.0f} | {mb:.3f} ({pb:.3f}) "
            f"| {1e3 * many:.1f} | {first * 1e3:,.0f} |")


def bench_queries(out: Path, dim: int, repeats: int, memory_file: str | None = None) -> None:
    from worldjepa.memory import MemoryStore

    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print("\n| nearest neighbours, one query (MemoryStore.nearest), ms: median (p90) | entries | k = 1, full scan "
          "| k = 1 | k = 10, full scan | k = 10 | rows read (k = 10, pruned) | partition build, ms "
          f"| k = 10, use_blas ({blas} BLAS threads) | 100 queries at once, ms | open + first query, ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases = [(f"256 clusters, D = {dim}", n, 0.3) for n in (1_000, 10_000, 100_000)]
    cases.append((f"isotropic Gaussian, D = {dim}", 100_000, np.inf))
    for name, n, spread in cases:
        x = embeddings(n, dim, spread=spread)
        path = out / f"q{n}-{spread}.db"
        fill(path, x, 1000)
        with MemoryStore.open(path, dim=dim, readonly=True) as mem:
            t0 = time.perf_counter()
            mem.nearest(x[0])
            first = time.perf_counter() - t0
            print(query_row(mem, name, queries(x, repeats), first), flush=True)
    if memory_file:
        with MemoryStore.open(memory_file, readonly=True) as mem:
            t0 = time.perf_counter()
            ids, z = mem.embeddings()
            first = time.perf_counter() - t0
            print(query_row(mem, f"{Path(memory_file).name}, D = {mem.dim}", queries(z, repeats), first), flush=True)
    # a reader's refresh after another process appended: only the new rows are read
    refresh, path, q = [], out / "q100000-0.3.db", np.zeros(dim, np.float32)
    with MemoryStore.open(path, dim=dim, readonly=True) as reader, MemoryStore.open(path, dim=dim) as writer:
        reader.nearest(q)
        for seed in (9, 10):
            writer.add(embeddings(1000, dim, seed=seed), episode=999, step=np.arange(1000))
            t0 = time.perf_counter()
            reader.nearest(q)
            refresh.append(time.perf_counter() - t0)
    print(f"\nA reader's first query after another process appended 1,000 entries to the 10^5 store: "
          f"{refresh[0] * 1e3:.1f} ms the first time (the RAM matrix doubles), {refresh[1] * 1e3:.1f} ms the "
          "next (reads only the new rows).")


def peer_worker(sizes: list[int], dim: int, repeats: int) -> dict:
    """Runs under the peer python: ours (VectorIndex) vs faiss flat / IVF vs sqlite-vec, interleaved."""
    sys.path.insert(0, str(HERE.parent))
    from worldjepa.memory.index import VectorIndex

    res: dict = {"rows": [], "threads": int(os.environ.get("OMP_NUM_THREADS", "1"))}
    try:
        import faiss

        res["faiss"] = faiss.__version__
        faiss.omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    except ImportError as e:
        faiss, res["faiss_error"] = None, str(e)
    try:
        import pysqlite3
        import sqlite_vec

        res["sqlite_vec"] = sqlite_vec.__version__ if hasattr(sqlite_vec, "__version__") else "?"
    except ImportError as e:
        sqlite_vec, res["sqlite_vec_error"] = None, str(e)
    k = 10
    for n in sizes:
        x = embeddings(n, dim)
        qs = queries(x, repeats)
        exact = VectorIndex(dim)
        exact.append(np.arange(n, dtype=np.int64), x)
        truth = exact.knn(qs, k)[0]  # (R, k)
        exact.partition()  # built before the timing (single queries would build it after PRUNE_AFTER)
        row = {"n": n}
        fns, names = [lambda q: exact.knn(q[None], k)], ["ours"]
        if faiss is not None:
            flat = faiss.IndexFlatL2(dim)
            flat.add(x)
            fns.append(lambda q: flat.search(q[None], k))
            names.append("faiss_flat")
            nlist = int(round(np.sqrt(n)))
            t0 = time.perf_counter()
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
            ivf.train(x[np.random.default_rng(3).permutation(n)[:min(n, 64 * nlist)]])
            ivf.add(x)
            row["ivf_build_s"], row["nlist"] = time.perf_counter() - t0, nlist
            # recall on this (clustered) data and on an isotropic Gaussian of the same size
            xg = embeddings(n, dim, seed=5, spread=np.inf)
            qg = queries(xg, 100)
            hard = VectorIndex(dim)
            hard.append(np.arange(n, dtype=np.int64), xg)
            truth_g = hard.knn(qg, k)[0]
            ivf_g = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
            ivf_g.train(xg[:min(n, 64 * nlist)])
            ivf_g.add(xg)
            del hard
            for nprobe in (4, 16):
                ivf.nprobe = ivf_g.nprobe = nprobe
                for key, index, qq, tt in (("", ivf, qs, truth), ("_gauss", ivf_g, qg, truth_g)):
                    got = index.search(qq, k)[1]
                    row[f"ivf{nprobe}_recall{key}"] = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, tt)]))
            del ivf_g, xg
            ivf4 = lambda q: (setattr(ivf, "nprobe", 4), ivf.search(q[None], k))  # noqa: E731
            ivf16 = lambda q: (setattr(ivf, "nprobe", 16), ivf.search(q[None], k))  # noqa: E731
            fns += [ivf4, ivf16]
            names += ["ivf4", "ivf16"]
        if sqlite_vec is not None and n <= 100_000:
            conn = pysqlite3.connect(":memory:")
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}])")
            t0 = time.perf_counter()
            for s in range(0, n, 1000):
                conn.executemany("INSERT INTO v(rowid, embedding) VALUES (?, ?)",
                                 [(int(i), x[i].tobytes()) for i in range(s, min(n, s + 1000))])
            row["vec_insert_per_s"] = n / (time.perf_counter() - t0)
            sql = "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ?"
            got = [[r[0] for r in conn.execute(sql, (q.tobytes(), k))] for q in qs[:50]]
            row["vec_recall"] = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, truth)]))
            fns.append(lambda q: conn.execute(sql, (q.tobytes(), k)).fetchall())
            names.append("sqlite_vec")
        for name, (med, p90) in zip(names, latency(fns, qs)):
            row[name] = [med, p90]
        res["rows"].append(row)
    return res


def print_peer(res: dict) -> None:
    print(f"\nSide by side in one process, {res['threads']} thread(s) each (faiss {res.get('faiss', res.get('faiss_error'))}, "
          f"sqlite-vec {res.get('sqlite_vec', res.get('sqlite_vec_error'))}), k = 10, one query per call, ms median "
          "(p90); IVF: nlist = sqrt(N), trained on 64 x nlist vectors; recall@10 against the exact answer on these "
          "clustered embeddings / on an isotropic Gaussian:")
    print("\n| entries | ours (exact) | faiss IndexFlatL2 (exact) | faiss IVF nprobe 4 | IVF nprobe 16 | "
          "IVF build s | sqlite-vec vec0 (exact) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in res["rows"]:
        f = lambda key: f"{r[key][0]:.3f} ({r[key][1]:.3f})" if key in r else "-"  # noqa: E731
        ivf = lambda p: (f"{f(f'ivf{p}')}, recall {r[f'ivf{p}_recall']:.2f} / {r[f'ivf{p}_recall_gauss']:.2f}"  # noqa: E731
                         if f"ivf{p}" in r else "-")
        vec = f"{f('sqlite_vec')} ({r['vec_insert_per_s']:,.0f} inserts/s)" if "sqlite_vec" in r else "-"
        build = f"{r['ivf_build_s']:.1f}" if "ivf_build_s" in r else "-"
        print(f"| {r['n']:,} | {f('ours')} | {f('faiss_flat')} | {ivf(4)} | {ivf(16)} | {build} | {vec} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="OPENBLAS_NUM_THREADS for our tables (0: as set)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--out", default="/tmp/wj-bench-mem")
    ap.add_argument("--peer-python", default="/work/peer-faiss-venv/bin/python")
    ap.add_argument("--peer-sizes", default="10000,100000,1000000")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--memory-file", help="also time queries on this memory file's embeddings (worldjepa memory build)")
    ap.add_argument("--peer-threads", type=int, default=1, help="BLAS / OpenMP threads of ours and the peers "
                    "in the side-by-side run (two runtimes' spinning thread pools on 2 shared cores distort both)")
    ap.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(s) for s in args.peer_sizes.split(",")]
    if args.threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.threads):  # numpy reads it at import
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OPENBLAS_NUM_THREADS": str(args.threads)})
    if args.peer_worker:
        print(json.dumps(peer_worker(sizes, args.dim, args.repeats)))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import sqlite3

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores (shared), python {platform.python_version()}, "
          f"numpy {np.__version__} (OpenBLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}), "
          f"SQLite {sqlite3.sqlite_version}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        bench_inserts(out, args.dim)
        bench_queries(out, args.dim, args.repeats, args.memory_file)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if args.no_peer:
        return
    if not Path(args.peer_python).exists():
        print(f"\n(no peer: {args.peer_python} is missing; see the docstring to install faiss-cpu and sqlite-vec)")
        return
    proc = subprocess.run([args.peer_python, __file__, "--peer-worker", "--dim", str(args.dim), "--repeats",
                           str(min(args.repeats, 200)), "--peer-sizes", args.peer_sizes],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(HERE.parent), "OMP_NUM_THREADS": str(args.peer_threads),
                               "OPENBLAS_NUM_THREADS": str(args.peer_threads), "OMP_WAIT_POLICY": "PASSIVE"})
    if proc.returncode != 0:
        print(f"\n(peer run failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode})")
        return
    print_peer(json.loads(proc.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
