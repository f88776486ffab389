"""LeJEPA pretraining on TwoRoom frames: probe R^2 of the agent's position, and model selection.

(a) LeJEPA (SIGReg), VICReg and no regulariser, each for ``--minutes`` of CPU time on the
    train-split frames, then a frozen-encoder ridge probe of the agent's (x, y) fitted on
    train-split frames and scored on held-out test-split frames; RankMe of the projections.
(b) ``--runs`` short runs (``--short-minutes`` each) over learning rate, weight decay and
    lambda: Spearman correlation between the final training loss (and loss / lambda^0.4, as
    in the LeJEPA paper) and the probe R^2.

Prints markdown tables and writes ``results.json`` in ``--out``. Example:

    python benchmarks/bench_lejepa.py --minutes 5 --short-minutes 1.5 --runs 8
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import time
from pathlib import Path

import numpy as np


def _final_loss(run: Path, key: str = "train/loss") -> float:
    """Mean of ``key`` over the last 10% of the logged steps (at least 3 lines)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [r[key] for r in rows if key in r]
    return float(np.mean(vals[-max(3, len(vals) // 10):])) if vals else float("nan")


def _run(data: str, out: Path, minutes: float, steps: int = 0, **kw) -> dict:
    """One pretraining run: ``steps`` fixed steps when > 0 (equal budgets whatever the load),
    else as many as fit in ``minutes``."""
    from worldjepa.configs import PretrainConfig
    from worldjepa.training.pretrain import pretrain

    shutil.rmtree(out, ignore_errors=True)
    budget = dict(steps=steps) if steps > 0 else dict(minutes=minutes, steps=100_000)
    cfg = PretrainConfig(data=data, out=str(out), log_every=2, progress=False, **budget, **kw)
    t = time.perf_counter()
    res = pretrain(cfg)
    ev = res["eval"]
    return {"steps": res["step"], "train_s": round(60 * res["minutes"], 1), "wall_s": round(time.perf_counter() - t, 1),
            "loss": _final_loss(out), "sigreg": _final_loss(out, "train/sigreg") if kw.get("regularizer") != "vicreg" else None,
            "r2": ev["eval/r2"], "r2_xy": ev["eval/r2_per_target"], "rank": ev["eval/rank"],
            "rank_embed": ev["eval/rank_embed"], "proj_std": ev["eval/proj_std"], **kw}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="benchmarks/data/tworoom64.h5", help="TwoRoom dataset (collected if missing)")
    ap.add_argument("--episodes", type=int, default=300, help="episodes to collect when --data is missing")
    ap.add_argument("--out", default="benchmarks/runs/lejepa", help="run directories and results.json")
    ap.add_argument("--minutes", type=float, default=10.0, help="budget of each main run (a)")
    ap.add_argument("--short-minutes", type=float, default=1.5, help="budget of each model-selection run (b)")
    ap.add_argument("--runs", type=int, default=8, help="model-selection runs (b); 0 skips (b)")
    ap.add_argument("--steps", type=int, default=0, help="fixed steps per main run (a) instead of --minutes")
    ap.add_argument("--short-steps", type=int, default=0,
                    help="fixed steps per model-selection run (b) instead of --short-minutes (equal budgets)")
    ap.add_argument("--temporal", type=int, default=3, help="temporal views (PretrainConfig.temporal; 0 = off) for every run")
    ap.add_argument("--seed", type=int, default=0, help="seed of every run")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--skip-main", action="store_true", help="only (b)")
    args = ap.parse_args()

    if not Path(args.data).is_file():  # collect before torch runs (collection may spawn workers)
        from worldjepa.data.collect import CollectConfig, collect

        Path(args.data).parent.mkdir(parents=True, exist_ok=True)
        collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=args.data, episodes=args.episodes, steps=100, size=64,
                              workers=2))
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results: dict = {"date": started, "args": vars(args), "main": [], "selection": []}

    if not args.skip_main:
        for reg in ("sigreg", "vicreg", "none"):
            r = _run(args.data, out / reg, args.minutes, args.steps, regularizer=reg, batch_size=args.batch_size,
                     temporal=args.temporal, seed=args.seed)
            results["main"].append(r)
            print(json.dumps(r), flush=True)
            (out / "results.json").write_text(json.dumps(results, indent=2))

    rng = np.random.default_rng(0)
    grid = [(lr, wd, lam) for lr in (5e-4, 1e-3, 2e-3, 4e-3) for wd in (0.01, 0.05, 0.2) for lam in (0.02, 0.05, 0.1, 0.2)]
    for i in rng.choice(len(grid), size=min(args.runs, len(grid)), replace=False):
        lr, wd, lam = grid[int(i)]
        r = _run(args.data, out / f"sel_{i}", args.short_minutes, args.short_steps, lr=lr, weight_decay=wd, lam=lam,
                 batch_size=args.batch_size, temporal=args.temporal, seed=args.seed)
        results["selection"].append(r)
        print(json.dumps(r), flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\n## LeJEPA pretraining on TwoRoom 64x64 ({started}, {args.threads} threads)\n")
    if results["main"]:
        budget = f"{args.steps} steps" if args.steps else f"{args.minutes} min"
        print(f"Budget {budget} per run, batch {args.batch_size}, CNN encoder, 2 global views, temporal {args.temporal}; "
              "probe: ridge of (x, y) on frozen embeddings, fit on train-split frames, R^2 on test-split frames.\n")
        print("| regulariser | steps | final loss | probe R^2 (x, y) | projection std | RankMe proj. | RankMe embed. |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in results["main"]:
            xy = ", ".join(f"{v:.3f}" for v in r["r2_xy"])
            print(f"| {r['regularizer']} | {r['steps']} | {r['loss']:.4f} | {r['r2']:.3f} ({xy}) | {r['proj_std']:.4f} | {r['rank']:.1f} | "
                  f"{r['rank_embed']:.1f} |")
    sel = results["selection"]
    if len(sel) >= 3:
        from scipy.stats import spearmanr

        loss = np.array([r["loss"] for r in sel])
        lam = np.array([r["lam"] for r in sel])
        r2 = np.array([r["r2"] for r in sel])
        rho = spearmanr(loss, r2).statistic
        rho_scaled = spearmanr(loss / lam ** 0.4, r2).statistic
        results["spearman"] = {"loss_vs_r2": rho, "loss_over_lam04_vs_r2": rho_scaled}
        budget = f"{args.short_steps} steps" if args.short_steps else f"{args.short_minutes} min"
        print(f"\nModel selection: {len(sel)} runs of {budget}\n")
        print("| lr | weight decay | lambda | steps | final loss | loss / lambda^0.4 | probe R^2 |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in sel:
            print(f"| {r['lr']:g} | {r['weight_decay']:g} | {r['lam']:g} | {r['steps']} | {r['loss']:.4f} | "
                  f"{r['loss'] / r['lam'] ** 0.4:.4f} | {r['r2']:.3f} |")
        print(f"\nSpearman(final loss, R^2) = {rho:.3f}; Spearman(loss / lambda^0.4, R^2) = {rho_scaled:.3f} "
              "(negative = lower loss, better probe)")
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
