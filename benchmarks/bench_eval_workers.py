"""`worldjepa eval --workers N`: the same records, in less time.

    python benchmarks/bench_eval_workers.py [--episodes 50] [--workers 1 2] [--far] [--out /tmp/wj-workers]

Collects the `make demo` dataset (TwoRoom, 300 episodes of 100 steps, seed 0), trains the
`--small` world model for 300 steps, then evaluates random, oracle and the run (CEM, 300
samples x 30 iterations, --threads 1 per process) on the same pairs with each number of
workers, timing each whole `worldjepa eval` command (process start and model loading in the
workers included; one pool of workers serves every policy). `--far`: far goals (budget 200),
longer episodes. Prints a markdown table and whether every record equals the first setting's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default="/tmp/wj-workers")
    ap.add_argument("--policies", default="random,oracle,RUN", help="comma-separated; RUN = the trained run")
    ap.add_argument("--far", action="store_true", help="far goals (eval --far): longer episodes")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    wj = [sys.executable, "-m", "worldjepa"]
    data, run = out / "tworoom.h5", out / "run"
    if not data.exists():
        subprocess.run([*wj, "collect", "--env", "worldjepa/TwoRoom-v0", "--episodes", "300", "--steps", "100",
                        "--out", str(data), "--no-progress"], check=True, env=env, capture_output=True)
    if not (run / "model.safetensors").exists():
        subprocess.run([*wj, "train", "--data", str(data), "--out", str(run), "--small", "--steps", "300",
                        "--threads", "1", "--device", "cpu", "--no-progress"], check=True, env=env, capture_output=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    policies = args.policies.replace("RUN", str(run))
    names = args.policies.replace("RUN", "run (CEM)").split(",")
    print(f"| workers | seconds | {' | '.join(names)} | records equal to the first row's |")
    print(f"| ---: | ---: | {' | '.join('---:' for _ in names)} | --- |")
    first = None
    for n in args.workers:
        res = out / f"workers{n}.json"
        t0 = time.perf_counter()
        subprocess.run([*wj, "eval", "--data", str(data), "--policy", policies, "--episodes",
                        str(args.episodes), "--threads", "1", "--device", "cpu", "--workers", str(n), "--json",
                        str(res), "--no-progress", *(["--far"] if args.far else [])], check=True, env=env, capture_output=True)
        took = time.perf_counter() - t0
        result = json.loads(res.read_text())
        result = result if "records" not in result else {policies: result}  # one policy: its result itself
        records = {name: r["records"] for name, r in result.items()}
        first = first or records
        rates = [f"{100 * r['summary']['success_rate']:.0f}%" for r in result.values()]
        print(f"| {n} | {took:.0f} | {' | '.join(rates)} | {records == first} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
