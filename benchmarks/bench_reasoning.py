"""Far goals with and without long-term memory, on the same held-out pairs: flat CEM, flat MPPI, memory.

    python benchmarks/bench_reasoning.py --env tworoom [--data D.h5 --run RUN] [--out /tmp/wj-reason]
                                         [--episodes 50] [--threads 1] [--seed 0]

Every step is the public CLI in a subprocess, printed so any row can be rerun by hand:
``worldjepa collect`` and ``train`` (unless ``--data`` / ``--run`` are given), ``worldjepa memory
build`` (the run's embeddings of the dataset's train episodes, and the map), then ``worldjepa eval
--far`` once per policy with the same ``--seed`` (so the same start/goal pairs): random, the
oracle, the run with flat CEM, with flat MPPI, and with CEM driven through the memory
(``--memory``). Results: one markdown table, overall and split by where the goal is (TwoRoom:
the start's room or the other room, from the records' true states; the library itself never
reads them), with the 95% Wilson interval, mean steps to success, planning seconds per
episode, and the map's size. The eval JSONs stay under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ENVS = {"tworoom": ("worldjepa/TwoRoom-v0", ["--steps", "2000"], 200)}


def run(cmd: list[str], log: Path) -> None:
    print(f"$ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        sys.exit(f"failed ({rc}): see {log}\n" + log.read_text()[-2000:])


def groups(env: str, record: dict) -> list[str]:
    """The breakdowns a record belongs to: all, and (TwoRoom) same room / other room."""
    out = ["all"]
    if env == "tworoom" and "goal_state" in record:
        same = (record["start_state"][0] < 32) == (record["goal_state"][0] < 32)
        out.append("same room" if same else "other room")
    return out


def main() -> None:
    from worldjepa.metrics import wilson_interval

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", choices=list(ENVS), default="tworoom")
    ap.add_argument("--data", default="", help="a dataset to reuse (default: collect 300 x 100 steps)")
    ap.add_argument("--run", default="", help="a run to reuse (default: train the default model)")
    ap.add_argument("--out", default="/tmp/wj-reason")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0, help="seed of the pair draw")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--memory-args", default="", help="extra `memory build` flags, e.g. '--radius-steps 2'")
    ap.add_argument("--agent", default="", help="extra agent options for every run policy (--agent)")
    args = ap.parse_args()
    env_id, train_flags, budget = ENVS[args.env]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "worldjepa"]
    data = args.data or str(out / f"{args.env}.h5")
    if not Path(data).exists():
        run(cli + ["collect", "--env", env_id, "--episodes", "300", "--steps", "100", "--workers", "2", "--out", data,
                   "--no-progress"], out / "collect.log")
    run_dir = args.run or str(out / "run")
    if not Path(run_dir).exists():
        run(cli + ["train", "--data", data, "--out", run_dir, "--threads", str(args.threads), "--no-progress",
                   *train_flags], out / "train.log")
    mem = out / "memory.db"
    t0 = time.time()
    run(cli + ["memory", "build", "--run", run_dir, "--data", data, "--out", str(mem), "--overwrite", "--no-progress",
               "--threads", str(args.threads), *shlex.split(args.memory_args), "--json"], out / "memory.log")
    build_s = time.time() - t0
    stats = json.loads((out / "memory.log").read_text()[(out / "memory.log").read_text().index("{"):])
    policies = {"random": ["--policy", "random"], "oracle": ["--policy", "oracle"],
                "flat CEM": ["--policy", run_dir], "flat MPPI": ["--policy", run_dir, "--planner", "mppi"],
                "memory + CEM": ["--policy", run_dir, "--memory", str(mem)]}
    results = {}
    for name, flags in policies.items():
        js = out / f"eval-{name.replace(' ', '_').replace('+', '')}.json"
        extra = ["--agent", args.agent] if args.agent and name not in ("random", "oracle") else []
        run(cli + ["eval", "--data", data, *flags, "--far", "--far-budget", str(budget), "--episodes",
                   str(args.episodes), "--seed", str(args.seed), "--threads", str(args.threads), "--no-progress",
                   "--json", str(js), *extra], out / "eval.log")
        results[name] = json.loads(js.read_text())
    labels = ["all"] + sorted({g for r in results["random"]["records"] for g in groups(args.env, r)} - {"all"})
    print(f"{platform.machine()}, {platform.processor() or ''} {sys.platform}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{env_id}, far goals (budget {budget}), {args.episodes} held-out pairs (seed {args.seed}), {args.threads} "
          f"thread(s); memory: {stats['entries']} entries, {stats['landmarks']} landmarks, {stats['edges']} edges, "
          f"built in {build_s:.0f} s\n")
    print("| policy | " + " | ".join(f"{g}: success [95% CI] (n)" for g in labels) + " | steps to success | s / episode |")
    print("|---" * (len(labels) + 3) + "|")
    for name, res in results.items():
        cells = []
        for g in labels:
            recs = [r for r in res["records"] if g in groups(args.env, r)]
            wins = sum(r["success"] for r in recs)
            lo, hi = wilson_interval(wins, len(recs))
            cells.append(f"{100 * wins / max(1, len(recs)):.0f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({len(recs)})")
        s = res["summary"]
        steps = f"{s['mean_steps_to_success']:.1f}" if s["mean_steps_to_success"] is not None else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {steps} | {s['seconds'] / s['episodes']:.2f} |")
    fallbacks = sum(r.get("memory", {}).get("fallback", False) for r in results["memory + CEM"]["records"])
    replans = sum(r.get("memory", {}).get("replans", 0) for r in results["memory + CEM"]["records"])
    print(f"\nmemory + CEM: {fallbacks} of {args.episodes} episodes fell back to flat MPC (no route), {replans} "
          "replans after a stalled leg in all")


if __name__ == "__main__":
    main()
