"""The Agent's replan, this checkout against another version of worldjepa, side by side.

    git worktree add /tmp/wj-before 13312e0        # the code before a change
    PYTHONPATH=. python benchmarks/bench_agent_latency.py --baseline /tmp/wj-before --run RUN \
        [--repeats 5] [--replans 8] [--threads 1]

One ``Agent.act`` at a macro-step boundary is what an episode pays per model step: encode the
observation (and, since the Agent was split, its surprise), build the latent cost, run CEM
(300 samples x 30 iterations x horizon 5 by default) and imagine the plan. Each version runs
in its own process (two versions of a package cannot share one), on the same checkpoint, the
same frames and one thread; the processes alternate ``--repeats`` times, so the machine's
load falls on both alike. Each process times ``--replans`` boundary calls after one warm-up;
the table gives the median per version and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
import worldjepa
from worldjepa.envs.adapter import make_env
run, replans = sys.argv[1], int(sys.argv[2])
agent = worldjepa.Agent.load(run, planner="cem", device="cpu")
meta = agent.meta
env = make_env(meta["env_id"], int(meta["frame_size"]))
goal, _ = env.reset(seed=1)
frame, extras = env.reset(seed=0)
agent.reset(goal)
times = []
for i in range(replans + 1):
    t0 = time.perf_counter()
    action = agent.act(frame)  # a boundary: observe + plan
    if i:
        times.append(time.perf_counter() - t0)
    for _ in range(agent.k - 1):  # the macro-step's other sub-actions: no planning
        frame, extras, _ = env.step(action)
        action = agent.act(frame)
    frame, extras, _ = env.step(action)
print(json.dumps({"ms": [1000 * t for t in times], "version": worldjepa.__file__}))
"""


def measure(checkout: Path, run: str, replans: int, threads: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", CHILD, run, str(replans), str(threads)], capture_output=True,
                          text=True, env=env, cwd=checkout, timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"{checkout}: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["version"].startswith(str(checkout)):
        sys.exit(f"{checkout}: imported worldjepa from {out['version']}")
    return out["ms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="a checkout of the other version (git worktree)")
    ap.add_argument("--run", required=True, help="a world-model run both versions can load")
    ap.add_argument("--repeats", type=int, default=5, help="alternations of the two processes")
    ap.add_argument("--replans", type=int, default=8, help="timed boundary calls per process")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    versions = {"this checkout": ROOT, "baseline": Path(args.baseline).resolve()}
    times: dict[str, list[float]] = {k: [] for k in versions}
    for r in range(args.repeats):
        for name, path in (versions.items() if r % 2 == 0 else reversed(versions.items())):
            times[name] += measure(path, str(Path(args.run).resolve()), args.replans, args.threads)
    med = {k: statistics.median(v) for k, v in times.items()}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} thread(s); {now}; run {args.run}; "
          f"{args.repeats} alternations x {args.replans} replans per version")
    print("| version | median ms / replan | min ms | replans |")
    print("| --- | ---: | ---: | ---: |")
    for name, v in times.items():
        print(f"| {name} ({versions[name]}) | {med[name]:.1f} | {min(v):.1f} | {len(v)} |")
    print(f"baseline / this checkout = {med['baseline'] / med['this checkout']:.3f} (>= 1: this checkout is no slower)")


if __name__ == "__main__":
    main()
