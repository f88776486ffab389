"""Collection throughput and training-window loading throughput.

    python benchmarks/bench_data.py [--episodes 200] [--steps 100] [--out /tmp/wj-bench]

Prints a markdown table. Target (issue 2): loading is never the bottleneck, i.e. at least
5,000 windows/s of 4 frames at 64x64 from a file on disk.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from worldjepa.data.collect import CollectConfig, collect
from worldjepa.data.windows import WindowDataset


def bench_collect(env: str, out: Path, episodes: int, steps: int, workers: int, **kw) -> tuple[float, float]:
    if out.exists():
        out.unlink()
    t0 = time.perf_counter()
    collect(CollectConfig(env=env, out=str(out), episodes=episodes, steps=steps, workers=workers, **kw), progress=False)
    dt = time.perf_counter() - t0
    n = episodes * steps
    return n / dt, n / dt  # one frame rendered per step


def bench_windows(path: Path, lazy: bool, batched: bool, seconds: float = 3.0) -> float:
    wd = WindowDataset(path, split="train", num_frames=4, frameskip=1, max_memory_mb=0 if lazy else 1e6)
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if batched:
            wd.sample(128, rng)
            n += 128
        else:
            for i in rng.integers(0, len(wd), 256):
                wd[int(i)]
            n += 256
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default="/tmp/wj-bench")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("\n| collection | workers | steps/s | frames/s |\n|---|---:|---:|---:|")
    for env, kw in (("worldjepa/TwoRoom-v0", {}), ("worldjepa/PushT-v1", {}), ("Pendulum-v1", {})):
        for workers in (1, 2):
            n_eps = args.episodes // {"worldjepa/TwoRoom-v0": 1, "worldjepa/PushT-v1": 4}.get(env, 20)  # Pendulum renders with pygame: slow
            sps, fps = bench_collect(env, out / "c.h5", n_eps, args.steps, workers, **kw)
            print(f"| {env} 64x64 | {workers} | {sps:,.0f} | {fps:,.0f} |", flush=True)
    data = out / "tworoom.h5"
    bench_collect("worldjepa/TwoRoom-v0", data, args.episodes, args.steps, 2)
    print(f"\ndataset: {data} ({data.stat().st_size / 2**20:.1f} MB, lzf-compressed frames)")
    print("\n| window loading (4 frames, 64x64) | windows/s |\n|---|---:|")
    for name, lazy, batched in (("lazy from disk, one window at a time", True, False),
                                ("lazy from disk, batches of 128", True, True),
                                ("in memory, batches of 128", False, True)):
        print(f"| {name} | {bench_windows(data, lazy, batched):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
