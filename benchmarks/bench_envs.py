"""Steps per second of every built-in environment: one ``step`` plus one ``render`` per step.

    PYTHONPATH=. python benchmarks/bench_envs.py [--size 64] [--seconds 1.5]

Runs each env made by ``gymnasium.make`` (default wrappers) on one core for about
``--seconds`` with uniform random actions, and prints a markdown table against the targets
(2,000 steps/s for TwoRoom and PointMaze, 500 for PushT). Under a minute in all.
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import numpy as np

from worldjepa.envs import BUILTIN_IDS

TARGETS = {"TwoRoom": 2000, "PointMaze": 2000, "PushT": 500}


def steps_per_second(env_id: str, size: int, seconds: float) -> float:
    env = gym.make(env_id, render_mode="rgb_array", size=size)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(env.action_space.low, env.action_space.high, (1000, *env.action_space.shape))
    for a in actions[:50]:  # warm up (background caches, first-call checks)
        env.step(a)
        env.render()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if steps % 300 == 0:
            env.reset(seed=steps)
        env.step(actions[steps % len(actions)])
        env.render()
        steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds per env")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
          f"size {args.size}, step + render per step\n")
    print("| env | steps/s | target |")
    print("| --- | ---: | ---: |")
    for env_id in BUILTIN_IDS:
        rate = steps_per_second(env_id, args.size, args.seconds)
        family = next((k for k in TARGETS if env_id.split("/")[1].startswith(k)), None)
        target = f"{TARGETS[family]:,}" if family else "-"
        flag = "" if family is None or rate >= TARGETS[family] else " (below)"
        print(f"| {env_id} | {rate:,.0f}{flag} | {target} |")


if __name__ == "__main__":
    main()
