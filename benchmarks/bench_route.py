"""Route search on a map of remembered places: milliseconds per search at 10^3 .. 10^5 nodes.

    PYTHONPATH=. python benchmarks/bench_route.py [--repeats 50]

The maps are random geometric graphs like those `worldjepa memory build` makes: landmarks
spread in a 2-D plane (as a navigation env's places are), each joined to its ~10 nearest
neighbours by directed edges weighted by their distance. One search = `MemoryMap.route(src,
dst)` between two random landmarks (scipy's Dijkstra from `src`, then the path walked back),
the graph matrix already built; also `localize` (the nearest landmark to an embedding, D = 64).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import datetime, timezone

import numpy as np


def main() -> None:
    from worldjepa.memory import MemoryMap

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{platform.machine()}; {now}; {args.repeats} searches per size\n")
    print("| nodes | edges | route search, ms median (p90) | localize (D = 64), ms median |")
    print("| ---: | ---: | ---: | ---: |")
    rng = np.random.default_rng(0)
    for n in (1_000, 10_000, 100_000):
        pos = rng.uniform(0, np.sqrt(n), (n, 2))
        cell = np.floor(pos).astype(int)  # neighbours from a grid of unit cells: ~10 per node
        buckets: dict[tuple[int, int], list[int]] = {}
        for i, c in enumerate(map(tuple, cell)):
            buckets.setdefault(c, []).append(i)
        edges = []
        for i, (cx, cy) in enumerate(cell):
            near = [j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in buckets.get((cx + dx, cy + dy), []) if j != i]
            d = np.linalg.norm(pos[near] - pos[i], axis=1)
            edges += [(i, near[j]) for j in np.argsort(d)[:10]]
        edges = np.asarray(edges)
        weights = np.linalg.norm(pos[edges[:, 0]] - pos[edges[:, 1]], axis=1)
        z = np.concatenate([pos, rng.standard_normal((n, 62)) * 0.01], 1).astype(np.float32)
        m = MemoryMap(z, edges, weights, radius=1.0)
        m.graph()
        times, loc = [], []
        for _ in range(args.repeats):
            a, b = rng.integers(n, size=2)
            t0 = time.perf_counter()
            m.route(int(a), int(b))
            times.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            m.localize(z[a] + 0.001)
            loc.append(1000 * (time.perf_counter() - t0))
        print(f"| {n:,} | {len(edges):,} | {statistics.median(times):.2f} ({np.percentile(times, 90):.2f}) | "
              f"{statistics.median(loc):.2f} |")


if __name__ == "__main__":
    main()
