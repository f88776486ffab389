"""Floors and ceilings of the evaluation protocol for every built-in environment.

    python benchmarks/bench_protocol.py [--episodes 100] [--eval-episodes 50] [--out /tmp/wj-protocol]

For each env: collect a dataset (smooth random exploration; the noisy scripted expert for
Push-T), then run the protocol (test split, goal +25 steps, budget 50) with the random
policy (floor), the oracle (reads the true state: ceiling) and the replay of the recorded
actions (a check of the protocol: must be ~100% on deterministic envs). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from worldjepa.data.collect import CollectConfig, collect
from worldjepa.eval.protocol import EvalConfig, run_protocol

ENVS = {
    "worldjepa/TwoRoom-v0": "smooth",
    "worldjepa/PointMaze-UMaze-v0": "smooth",
    "worldjepa/Reacher-v0": "smooth",
    "worldjepa/PushT-v1": "expert",
    "worldjepa/PushT-v0": "expert",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=100, help="episodes collected per env")
    ap.add_argument("--eval-episodes", type=int, default=50)
    ap.add_argument("--out", default="/tmp/wj-protocol")
    ap.add_argument("--envs", nargs="*", default=list(ENVS))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}; "
          f"{args.episodes} episodes x 100 steps per env, {args.eval_episodes} eval episodes, goal +25, budget 50\n")
    print("| env | data policy | random | oracle | replay |\n|---|---|---|---|---|")
    for env in args.envs:
        path = out / (env.split("/")[-1] + ".h5")
        if not path.exists():
            collect(CollectConfig(env=env, out=str(path), episodes=args.episodes, steps=100, policy=ENVS[env], workers=2),
                    progress=False)
        cells = []
        for policy in ("random", "oracle", "replay"):
            s = run_protocol(EvalConfig(data=str(path), policy=policy, episodes=args.eval_episodes), progress=False)["summary"]
            lo, hi = s["ci95"]
            cells.append(f"{100 * s['success_rate']:.0f}% [{100 * lo:.0f}, {100 * hi:.0f}]")
        print(f"| {env} | {ENVS[env]} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
