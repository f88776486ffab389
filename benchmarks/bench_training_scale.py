"""Training throughput for 1 and 2 processes (torchrun, gloo) and float32 against bf16, on this CPU.

    python benchmarks/bench_training_scale.py [--steps 60] [--out /tmp/wj-scale]

Collects a TwoRoom dataset (100 episodes of 100 steps, 64 px), then trains the default world
model (the `train` defaults, --threads 1 per process) for --steps steps in each setting and
reads the rate from the run's metrics.jsonl (`train/steps_per_s` at the last step, the first
steps included): one process at batch 64; 2 processes at 32 each (the same global batch of
64: the same training, tests/training/test_distributed.py); 2 processes at 64 each (global
128); one process at batch 64 with --precision bf16. Prints a markdown table: steps/s and
windows/s (global batch x steps/s).
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

SETTINGS = [  # (label, processes, batch per process, precision)
    ("1 process, float32", 1, 64, "float32"),
    ("2 processes (torchrun, gloo), float32", 2, 32, "float32"),
    ("2 processes (torchrun, gloo), float32", 2, 64, "float32"),
    ("1 process, bf16 autocast", 1, 64, "bf16"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--out", default="/tmp/wj-scale")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    data = out / "tworoom.h5"
    if not data.exists():
        subprocess.run([sys.executable, "-m", "worldjepa", "collect", "--env", "worldjepa/TwoRoom-v0", "--episodes",
                        "100", "--steps", "100", "--out", str(data), "--no-progress"], check=True, env=env)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print("| setting | batch per process | global batch | steps/s | windows/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for i, (label, procs, batch, precision) in enumerate(SETTINGS):
        run = out / f"run{i}"
        subprocess.run(["rm", "-rf", str(run)], check=True)
        launch = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs)] if procs > 1 else []
        cmd = [sys.executable, *launch, "-m", "worldjepa", "train", "--data", str(data), "--out", str(run),
               "--steps", str(args.steps), "--batch-size", str(batch), "--val-every", str(args.steps),
               "--save-every", str(args.steps), "--threads", "1", "--device", "cpu", "--precision", precision,
               "--no-progress"]
        subprocess.run(cmd, check=True, env=env, capture_output=True)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rate = [r["train/steps_per_s"] for r in rows if "train/steps_per_s" in r][-1]
        print(f"| {label} | {batch} | {batch * procs} | {rate:.2f} | {rate * batch * procs:.0f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
