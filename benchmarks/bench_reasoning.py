"""Far goals with and without long-term memory, on the same held-out pairs: flat CEM, flat MPPI, memory.

    python benchmarks/bench_reasoning.py --env tworoom|pointmaze-medium|pointmaze-large|pointmaze-heldout|pointmaze-mujoco
                                         [--data D.h5 --run RUN] [--out /tmp/wj-reason]
                                         [--episodes 50] [--threads 1] [--seed 0] [--layouts 5]

Every step is the public CLI in a subprocess, printed so any row can be rerun by hand:
``worldjepa collect`` and ``train`` (unless ``--data`` / ``--run`` are given), ``worldjepa memory
build`` (the run's embeddings of the dataset's train episodes, and the map), then ``worldjepa eval
--far`` once per policy with the same ``--seed`` (so the same start/goal pairs): random, the
oracle and the wall-blind ``straight`` controller where the env has them, the run with flat CEM,
with flat MPPI, with CEM driven through the memory as built (``route_learn=false``) and through
the memory that grows while the agent acts (the default). Results: one markdown table, overall
and split by where the goal is (TwoRoom: the start's room or the other room, from the records'
true states; the library itself never reads them), with the 95% Wilson interval, mean steps to
success, planning seconds per episode, and the map's size. The eval JSONs stay under ``--out``.

Settings per env (``ENVS``): TwoRoom far goals anywhere (budget 200); PointMaze Medium / Large
goals at least 50 / 100 env steps away along the shortest way (the oracle simulated), budget 3x
that; ``pointmaze-heldout``: a model trained on recordings of the training procedural mazes (a
maze drawn per episode), then for each of ``--layouts`` held-out mazes a short exploration
(``--explore`` episodes of 100 steps), a memory built from it alone (or from a separate
exploration of ``--memory-explore`` episodes), and ``--episodes`` pairs in that maze (goals >= 50
steps away, budget 3x); ``pointmaze-mujoco``: Gymnasium-Robotics' MuJoCo
point maze (``benchmarks/thirdparty_envs.py``; no oracle and no state to draw, so far goals are
frames of other held-out episodes at least 3 m away, success within 0.45 m).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
THIRD_PARTY = ["--env-module", str(ROOT / "benchmarks" / "thirdparty_envs.py")]


@dataclass(frozen=True)
class Setup:
    env: str
    collect: list[str]
    train: list[str]
    far: list[str]
    references: tuple[str, ...] = ("random", "oracle")
    env_args: list[str] = field(default_factory=list)  # --env-module / --env-kwargs for collect
    memory: list[str] = field(default_factory=list)  # `memory build` flags of this setting (before --memory-args)


GRU = ["--predictor", "gru", "--steps", "3000"]
ENVS = {
    "tworoom": Setup("worldjepa/TwoRoom-v0", ["--episodes", "300", "--steps", "100"], ["--steps", "2000"],
                     ["--far-budget", "200"]),
    "pointmaze-medium": Setup("worldjepa/PointMaze-Medium-v0", ["--episodes", "1000", "--steps", "100"], GRU,
                              ["--far-min-steps", "50", "--far-budget-factor", "3"], ("random", "oracle", "straight")),
    "pointmaze-large": Setup("worldjepa/PointMaze-Large-v0", ["--episodes", "1000", "--steps", "100"], GRU,
                             ["--far-min-steps", "100", "--far-budget-factor", "3"], ("random", "oracle", "straight")),
    "pointmaze-heldout": Setup("worldjepa/PointMaze-Procedural-v0", ["--episodes", "3000", "--steps", "100"],
                               GRU + ["--proprio", "state"], ["--far-min-steps", "50", "--far-budget-factor", "3"],
                               ("random", "oracle", "straight"), ["--env-kwargs", "layout_seed=train"],
                               # a 10,000-step exploration: coarser landmarks, and the world model's shortcuts
                               # join what one short random walk saw in one direction only
                               ["--radius-steps", "6", "--shortcuts", "8"]),
    "pointmaze-mujoco": Setup("gymext/PointMazeTop-v3", ["--episodes", "600", "--steps", "200"], GRU,
                              ["--far-budget", "600", "--far-min-distance", "3", "--success-threshold", "0.45",
                               "--success-dims", "0,1", *THIRD_PARTY], ("random",), THIRD_PARTY),
}


def run(cmd: list[str], log: Path) -> str:
    print(f"$ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        sys.exit(f"failed ({rc}): see {log}\n" + log.read_text()[-2000:])
    return log.read_text()


def groups(env: str, record: dict) -> list[str]:
    """The breakdowns a record belongs to: all, and (TwoRoom) same room / other room."""
    out = ["all"]
    if env == "tworoom" and "goal_state" in record:
        same = (record["start_state"][0] < 32) == (record["goal_state"][0] < 32)
        out.append("same room" if same else "other room")
    return out


def evaluate(cli: list[str], setup: Setup, data: str, run_dir: str, mem: Path, out: Path, args: argparse.Namespace,
             tag: str = "") -> dict[str, dict]:
    """Every policy on the same far-goal pairs of ``data``; name -> results JSON."""
    agent = args.agent.split()
    policies = {name: ["--policy", name] for name in setup.references}
    policies.update({"flat CEM": ["--policy", run_dir], "flat MPPI": ["--policy", run_dir, "--planner", "mppi"],
                     "memory + CEM, map as built": ["--policy", run_dir, "--memory", str(mem)],
                     "memory + CEM, map learning": ["--policy", run_dir, "--memory", str(mem)]})
    results = {}
    for name, flags in policies.items():
        js = out / f"eval{tag}-{name.replace(' ', '_').replace('+', '').replace(',', '')}.json"
        opts = agent + (["route_learn=false"] if name.endswith("as built") else [])
        extra = ["--agent", " ".join(opts)] if opts and name not in setup.references else []
        run(cli + ["eval", "--data", data, *flags, "--far", *setup.far, "--episodes", str(args.episodes), "--seed",
                   str(args.seed), "--threads", str(args.threads), "--no-progress", "--json", str(js), *extra],
            out / "eval.log")
        results[name] = json.loads(js.read_text())
    return results


def build(cli: list[str], setup: Setup, run_dir: str, data: str, mem: Path, out: Path,
          args: argparse.Namespace) -> dict:
    text = run(cli + ["memory", "build", "--run", run_dir, "--data", data, "--out", str(mem), "--overwrite",
                      "--no-progress", "--threads", str(args.threads), *setup.memory, *shlex.split(args.memory_args),
                      "--json"],
               out / "memory.log")
    return json.loads(text[text.index("{"):])


def main() -> None:
    from worldjepa.metrics import wilson_interval

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", choices=list(ENVS), default="tworoom")
    ap.add_argument("--data", default="", help="a dataset to reuse (default: collect the env's recordings)")
    ap.add_argument("--run", default="", help="a run to reuse (default: train the env's model)")
    ap.add_argument("--out", default="/tmp/wj-reason")
    ap.add_argument("--episodes", type=int, default=50, help="pairs (pointmaze-heldout: per held-out maze)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pair draw")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layouts", type=int, default=5, help="pointmaze-heldout: how many held-out mazes")
    ap.add_argument("--explore", type=int, default=100, help="pointmaze-heldout: exploration episodes per maze")
    ap.add_argument("--memory-explore", type=int, default=0,
                    help="pointmaze-heldout: build each maze's memory from a separate exploration of this many "
                         "episodes (collect --seed 1) instead of the one the pairs come from (0: that one)")
    ap.add_argument("--memory-args", default="", help="extra `memory build` flags, e.g. '--radius-steps 2'")
    ap.add_argument("--agent", default="", help="extra agent options for every run policy (--agent)")
    args = ap.parse_args()
    setup = ENVS[args.env]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    cli = [sys.executable, "-m", "worldjepa"]
    data = args.data or str(out / f"{args.env}.h5")
    if not Path(data).exists():
        run(cli + ["collect", "--env", setup.env, *setup.collect, *setup.env_args, "--workers", "2", "--out", data,
                   "--no-progress"], out / "collect.log")
    run_dir = args.run or str(out / "run")
    if not Path(run_dir).exists():
        run(cli + ["train", "--data", data, "--out", run_dir, "--threads", str(args.threads), "--no-progress",
                   *setup.train], out / "train.log")
    t0 = time.time()
    if args.env != "pointmaze-heldout":
        mem = out / "memory.db"
        stats = [build(cli, setup, run_dir, data, mem, out, args)]
        results = evaluate(cli, setup, data, run_dir, mem, out, args)
    else:  # per held-out maze: a short exploration, a memory of it alone, pairs in that maze
        from worldjepa.envs.pointmaze import HELDOUT_LAYOUT_SEEDS

        stats, results = [], {}
        for seed in HELDOUT_LAYOUT_SEEDS[:args.layouts]:
            explore, mem = out / f"explore-{seed}.h5", out / f"memory-{seed}.db"
            if not explore.exists():
                run(cli + ["collect", "--env", setup.env, "--env-kwargs", f"layout_seed={seed}", "--episodes",
                           str(args.explore), "--steps", "100", "--workers", "2", "--out", str(explore),
                           "--no-progress"], out / "collect.log")
            source = explore
            if args.memory_explore:  # a second, separate recording: none of the test walks is remembered
                source = out / f"explore-{seed}-memory{args.memory_explore}.h5"
                if not source.exists():
                    run(cli + ["collect", "--env", setup.env, "--env-kwargs", f"layout_seed={seed}", "--episodes",
                               str(args.memory_explore), "--steps", "100", "--seed", "1", "--workers", "2", "--out",
                               str(source), "--no-progress"], out / "collect.log")
            stats.append(build(cli, setup, run_dir, str(source), mem, out, args))
            for name, res in evaluate(cli, setup, str(explore), run_dir, mem, out, args, f"-{seed}").items():
                merged = results.setdefault(name, {"records": [], "summary": {"seconds": 0.0, "episodes": 0}})
                merged["records"] += res["records"]
                merged["summary"]["seconds"] += res["summary"]["seconds"]
                merged["summary"]["episodes"] += res["summary"]["episodes"]
    build_s = time.time() - t0
    labels = ["all"] + sorted({g for r in results["random"]["records"] for g in groups(args.env, r)} - {"all"})
    n = len(results["random"]["records"])
    sizes = ", ".join(f"{s['entries']} entries, {s['landmarks']} landmarks, {s['edges']} edges" for s in stats)
    print(f"{platform.machine()}, {platform.processor() or ''} {sys.platform}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {setup.env}, far goals ({' '.join(setup.far[:4])}), "
          f"{n} held-out pairs (seed {args.seed}), {args.threads} thread(s); memory: {sizes}; "
          f"memory and evaluation took {build_s:.0f} s\n")
    print("| policy | " + " | ".join(f"{g}: success [95% CI] (n)" for g in labels) + " | steps to success | s / episode |")
    print("|---" * (len(labels) + 3) + "|")
    for name, res in results.items():
        cells = []
        for g in labels:
            recs = [r for r in res["records"] if g in groups(args.env, r)]
            wins = sum(r["success"] for r in recs)
            lo, hi = wilson_interval(wins, len(recs))
            cells.append(f"{100 * wins / max(1, len(recs)):.0f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({len(recs)})")
        won = [r["steps"] for r in res["records"] if r["success"]]
        steps = f"{sum(won) / len(won):.1f}" if won else "-"
        s = res["summary"]
        print(f"| {name} | " + " | ".join(cells) + f" | {steps} | {s['seconds'] / max(1, s['episodes']):.2f} |")
    for name in ("memory + CEM, map as built", "memory + CEM, map learning"):
        recs = [r.get("memory", {}) for r in results[name]["records"]]
        print(f"\n{name}: {sum(m.get('fallback', False) for m in recs)} of {n} episodes fell back to flat MPC (no "
              f"route) at some point, {sum(m.get('replans', 0) for m in recs)} replans after a stalled leg; learned "
              f"{sum(m.get('learned_landmarks', 0) for m in recs)} landmarks and "
              f"{sum(m.get('learned_edges', 0) for m in recs)} edges", end="")
    print()


if __name__ == "__main__":
    main()
