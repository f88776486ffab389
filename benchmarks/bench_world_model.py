"""World model + planning under the held-out protocol: collect -> train -> eval, per env.

    python benchmarks/bench_world_model.py [--envs tworoom pointmaze reacher pusht mujoco-reacher]
                                           [--out /tmp/wj-wm] [--threads 1] [--episodes 50]
    python benchmarks/bench_world_model.py --planners --envs tworoom    # CEM / iCEM / MPPI / GD / CEM+GD
    python benchmarks/bench_world_model.py --ablation --envs tworoom    # SIGReg / VICReg / VICReg+inverse / none

Every step runs the public CLI (``worldjepa collect|train|eval``) in a subprocess and prints the
exact command, so any row can be reproduced by hand. Results (markdown tables) go to stdout;
each eval's JSON (summary + per-episode records) is kept under ``--out``. A dataset or run
that already exists under ``--out`` is reused (delete it to start over).
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
THIRD_PARTY = str(HERE / "thirdparty_envs.py")

# name -> (env id, collect policy, train flags, eval flags); the step counts are those of BENCHMARKS.md
ENVS: dict[str, tuple[str, str, list[str], list[str]]] = {
    "tworoom": ("worldjepa/TwoRoom-v0", "smooth", ["--steps", "2000"], []),
    "pointmaze": ("worldjepa/PointMaze-UMaze-v0", "smooth", ["--predictor", "gru", "--steps", "2000"], []),
    "reacher": ("worldjepa/Reacher-v0", "smooth", ["--predictor", "gru", "--steps", "2000"], []),
    "pusht": ("worldjepa/PushT-v1", "expert", ["--predictor", "gru", "--steps", "6000"], []),
    "mujoco-reacher": ("gymext/ReacherTop-v5", "smooth", ["--predictor", "gru", "--steps", "3000"],
                       ["--success-threshold", "0.025", "--success-dims", "8,9"]),
}
PLANNERS = ["cem", "icem", "mppi", "gd", "cem_gd"]
# (label, run-directory tag, train flags)
ABLATIONS = [
    ("SIGReg (default)", "default", []),
    ("VICReg", "vicreg", ["--regularizer", "vicreg"]),
    ("VICReg + inverse dynamics (PLDM-style)", "vicreg-inverse", ["--regularizer", "vicreg", "--inverse-weight", "1"]),
    ("none (collapse ablation)", "none", ["--regularizer", "none"]),
]


def run(cmd: list[str], log: Path) -> float:
    """Run a CLI command (printed), output to ``log``; returns seconds. Exits on failure."""
    print(f"$ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    t0 = time.time()
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        sys.exit(f"failed ({rc}): see {log}\n" + log.read_text()[-2000:])
    return time.time() - t0


def cli() -> list[str]:
    return [sys.executable, "-m", "worldjepa"]


def dataset(name: str, out: Path, episodes: int) -> Path:
    env, policy, _, _ = ENVS[name]
    path = out / f"{name}.h5"
    if not path.exists():
        cmd = cli() + ["collect", "--env", env, "--episodes", str(episodes), "--steps", "100", "--policy", policy,
                       "--workers", "2", "--out", str(path)]
        if env.startswith("gymext/"):
            cmd += ["--env-module", THIRD_PARTY]
        run(cmd, out / f"{name}.collect.log")
    return path


def train(name: str, data: Path, run_dir: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    """Train (or reuse) a run; returns its length and last validation numbers from its metrics."""
    if not (run_dir / "model.safetensors").exists():
        steps = ["--steps", str(args.steps)] if args.steps else []  # after the env's: the last flag wins
        cmd = cli() + ["train", "--data", str(data), "--out", str(run_dir), "--minutes", str(args.minutes),
                       "--threads", str(args.threads), "--no-progress", *ENVS[name][2], *steps, *extra]
        run(cmd, run_dir.with_suffix(".train.log"))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    val = [r for r in rows if "val/rankme" in r]
    last = val[-1] if val else {}
    return {"minutes": rows[-1]["time"] / 60, "steps": max(r.get("step", 0) for r in rows),
            **{k: last.get(f"val/{k}", float("nan")) for k in ("probe_r2", "pred_over_copy", "z_std", "sigreg")}}


def evaluate(name: str, data: Path, policies: str, out_json: Path, args: argparse.Namespace,
             extra: list[str] = ()) -> dict:
    if not out_json.exists():
        cmd = cli() + ["eval", "--data", str(data), "--policy", policies, "--episodes", str(args.episodes),
                       "--json", str(out_json), *ENVS[name][3], *extra]
        if ENVS[name][0].startswith("gymext/"):
            cmd += ["--env-module", THIRD_PARTY]
        run(cmd, out_json.with_suffix(".log"))
    res = json.loads(out_json.read_text())
    return {res["config"]["policy"]: res} if "summary" in res else res  # one policy, or {policy: result}


def cell(res: dict, sep: str = " ") -> str:
    """``"100% [92.9, 100.0]"``; ``sep=" | "`` puts the interval in its own table column."""
    s = res["summary"]
    lo, hi = s["ci95"]
    return f"{100 * s['success_rate']:.0f}%{sep}[{100 * lo:.1f}, {100 * hi:.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", nargs="*", default=["tworoom", "pointmaze", "reacher", "pusht"], choices=list(ENVS))
    ap.add_argument("--out", default="/tmp/wj-wm")
    ap.add_argument("--collect-episodes", type=int, default=300, help="episodes x 100 steps collected per env")
    ap.add_argument("--episodes", type=int, default=50, help="held-out start/goal pairs per evaluation")
    ap.add_argument("--steps", type=int, default=0,
                    help="training steps for every env (default: each env's own, see ENVS; an upper bound with --minutes)")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget per run (the issue's limit)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training (1: steadiest on 2 cores)")
    ap.add_argument("--planners", action="store_true", help="compare the planners on each env's default run")
    ap.add_argument("--ablation", action="store_true", help="train and compare the regulariser ablations")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # planning: one thread per process is the fastest here
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"{args.collect_episodes} episodes x 100 steps per env; training <= {args.steps or 'per-env'} steps / "
          f"{args.minutes} min, {args.threads} thread(s); {args.episodes} held-out pairs, goal +25, budget 50\n")
    if args.ablation:
        print("| env | regulariser | train steps (min) | embedding std | SIGReg statistic | probe R^2 | success | 95% CI |\n"
              "|---|---|---|---|---|---|---|---|")
        for name in args.envs:
            data = dataset(name, out, args.collect_episodes)
            for label, tag, extra in ABLATIONS:
                run_dir = out / f"{name}-{tag}"
                t = train(name, data, run_dir, args, extra)
                s = evaluate(name, data, str(run_dir), out / f"{name}-{tag}.eval.json", args)[str(run_dir)]
                print(f"| {ENVS[name][0]} | {label} | {t['steps']} ({t['minutes']:.1f}) | {t['z_std']:.4f} | {t['sigreg']:.1f} | "
                      f"{t['probe_r2']:.3f} | {cell(s, ' | ')} |", flush=True)
        return
    if args.planners:
        print("| env | planner | success | 95% CI | mean final distance | s / episode |\n|---|---|---|---|---|---|")
        for name in args.envs:
            data = dataset(name, out, args.collect_episodes)
            run_dir = out / f"{name}-default"
            train(name, data, run_dir, args, [])
            for planner in PLANNERS:
                s = evaluate(name, data, str(run_dir), out / f"{name}-planner-{planner}.eval.json", args,
                             ["--planner", planner])[str(run_dir)]
                sec = s["summary"].get("seconds", float("nan")) / max(1, s["summary"]["episodes"])
                print(f"| {ENVS[name][0]} | {planner} | {cell(s, ' | ')} | {s['summary']['mean_final_distance']:.3f} | "
                      f"{sec:.2f} |", flush=True)
        return
    print("| env | random (floor) | oracle (ceiling) | world model + CEM | train steps (min) | val pred/copy |\n"
          "|---|---|---|---|---|---|")
    for name in args.envs:
        data = dataset(name, out, args.collect_episodes)
        run_dir = out / f"{name}-default"
        t = train(name, data, run_dir, args, [])
        third = ENVS[name][0].startswith("gymext/")
        refs = "random" if third else "random,oracle"
        res = evaluate(name, data, f"{refs},{run_dir}", out / f"{name}.eval.json", args)
        oracle = "n/a (no state access)" if third else cell(res["oracle"])
        print(f"| {ENVS[name][0]} | {cell(res['random'])} | {oracle} | **{cell(res[str(run_dir)])}** | "
              f"{t['steps']} ({t['minutes']:.1f}) | {t['pred_over_copy']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
