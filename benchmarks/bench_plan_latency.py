"""Latency of one agent replan: CEM, 300 samples x 30 iterations x horizon 5, top 30.

Two rows per predictor, both exactly what :class:`worldjepa.Agent` runs (history of 3 observed
embeddings, macro-actions of frame-skip 5 x 2 = 10 values, latent MSE summed along the path):

1. the **default model** (``ModelConfig()``: residual-MLP predictor on a 64-d latent), ours vs
   stable-worldmodel's ``CEMSolver`` with stable-worldmodel's rollout semantics (below): the
   MLP then also runs over the 3-token window at every imagined step;
2. the **LeWM-size transformer** (preset ``lewm``: 6 AdaLN blocks, width 192, history 3, on a
   192-d latent), ours (history keys/values cached once per replan, one token per imagined
   step, linears on oneDNN's packed kernels where the build has them) vs stable-worldmodel's
   ``CEMSolver`` on the same predictor weights, whose rollout
   re-runs the predictor over the whole history window at every imagined step (as
   stable-worldmodel's JEPA rollout does; our ``forward`` is used for it: same weights, and
   the same answer up to the window truncating the stacked layers' receptive field).

The peer lives in another virtual environment (``--peer-python``, default
``/work/peer-plan-venv/bin/python``, same torch build); like ``bench_plan_cem.py`` the
measurement then runs in a subprocess with that python, alternating ours and the peer at
every repeat. FLOPs per replan are counted with ``torch.utils.flop_counter`` on one cost
evaluation of the 300 candidates, times 30 iterations; the fraction is of the best float32
2048^3 matmul throughput measured in the same process.

    PYTHONPATH=. python benchmarks/bench_plan_latency.py [--repeats 7] [--threads 2] [--no-peer]
        [--lewm-iterations 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import torch

S, ITERS, H, TOPK, K, A, HIST, SEED = 300, 30, 5, 30, 5, 2, 3, 0
HERE = os.path.dirname(os.path.abspath(__file__))


def build(kind: str) -> torch.nn.Module:
    from worldjepa.world_model import ModelConfig, build_world_model

    torch.manual_seed(SEED)
    if kind == "default":
        cfg = ModelConfig(frame_size=64, action_dim=A)
    else:
        cfg = ModelConfig(frame_size=64, action_dim=A, predictor="transformer", preset="lewm", latent_dim=192)
    return build_world_model(cfg).eval()


def problem(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """History embeddings (1, 3, D), history macro-actions (1, 2, K*A), goal (1, D)."""
    g = torch.Generator().manual_seed(SEED + 1)
    d = model.latent_dim
    return (torch.randn(1, HIST, d, generator=g), torch.rand(1, HIST - 1, K * A, generator=g) * 2 - 1,
            torch.randn(1, d, generator=g))


def naive_rollout(model: torch.nn.Module, z: torch.Tensor, a: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
    """Peer-style imagination: the whole window through ``forward`` at every step. (B, S, H, D)."""
    b, s, h, _ = acts.shape
    zw = z[:, None].expand(b, s, *z.shape[1:]).reshape(b * s, z.shape[1], -1)  # (B*S, Th, D)
    aw = a[:, None].expand(b, s, *a.shape[1:]).reshape(b * s, a.shape[1], -1)  # (B*S, Th-1, A)
    out = []
    for t in range(h):
        aw = torch.cat([aw, acts.reshape(b * s, h, -1)[:, t:t + 1]], dim=1)[:, -HIST:]  # (B*S, <=Th, A)
        nxt = model.predict(zw, aw)[:, -1:]  # (B*S, 1, D)
        zw = torch.cat([zw, nxt], dim=1)[:, -HIST:]
        out.append(nxt)
    return torch.cat(out, dim=1).view(b, s, h, -1)  # (B, S, H, D)


def ours(model: torch.nn.Module, iters: int = ITERS):
    from worldjepa.planning import CEM, make_latent_cost

    z, a, goal = problem(model)
    cem = CEM(low=-2.45, high=2.45, samples=S, iterations=iters, elites=TOPK, horizon=H, action_dim=K * A, seed=SEED)
    cost = make_latent_cost(lambda acts: model.rollout(z, a, acts), goal)
    return lambda: cem.plan(cost, batch=1).actions, cost


def peer(model: torch.nn.Module, iters: int = ITERS):
    sys.path.insert(0, HERE)
    import gymnasium as gym
    from bench_plan_cem import _import_peer_cem

    from worldjepa.planning import latent_cost

    z, a, goal = problem(model)

    class Costable(torch.nn.Module):
        def get_cost(self, info: dict, candidates: torch.Tensor) -> torch.Tensor:
            return latent_cost(naive_rollout(model, z, a, candidates), goal)  # (B, S)

        criterion = get_cost

    solver = _import_peer_cem()(Costable(), batch_size=1, num_samples=S, var_scale=1.0, n_steps=iters, topk=TOPK,
                                device="cpu", seed=SEED)
    solver.configure(action_space=gym.spaces.Box(-2.45, 2.45, shape=(1, K * A)), n_envs=1,
                     config=SimpleNamespace(horizon=H, action_block=1))

    def once():
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            return solver.solve({"z": z[:, -1]})["actions"]  # the solver expands info tensors per sample

    return once, lambda acts: latent_cost(naive_rollout(model, z, a, acts), goal)


def flops(cost_fn, iters: int = ITERS) -> int:
    """FLOPs of one cost evaluation x ``iters``, counted on the modules' path: the counter does
    not see oneDNN's packed kernels, which compute the same products."""
    from torch.utils.flop_counter import FlopCounterMode

    from worldjepa.nn.adaln import set_packed_kernels

    acts = torch.zeros(1, S, H, K * A)
    set_packed_kernels(False)
    try:
        with FlopCounterMode(display=False) as fc:
            cost_fn(acts)
    finally:
        set_packed_kernels(None)
    return fc.get_total_flops() * iters


def matmul_gflops(n: int = 2048) -> float:
    x, y = torch.randn(n, n), torch.randn(n, n)
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        x @ y
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def measure(repeats: int, threads: int, with_peer: bool, lewm_iters: int) -> dict:
    """Medians of ms per replan; the LeWM-size rows run ``lewm_iters`` iterations and are
    scaled to 30 (the planner's work is linear in iterations), since one 30-iteration replan
    takes tens of seconds on this CPU."""
    torch.set_num_threads(threads)
    out: dict = {"torch": torch.__version__, "rows": {}, "lewm_iters": lewm_iters}
    with torch.inference_mode():
        for kind, reps, iters in (("default", repeats, ITERS), ("lewm", max(2, repeats // 2), lewm_iters)):
            model = build(kind)
            runners = {"ours": ours(model, iters)}
            if with_peer:  # each library's own rollout of the same predictor (see the docstring)
                runners["peer"] = peer(model, iters)
            for who, (fn, cost) in runners.items():
                fn()  # warm-up
                out["rows"][f"{kind}/{who}"] = {"ms": [], "flops": flops(cost), "scale": ITERS / iters}
            for r in range(reps):
                for who in (list(runners) if r % 2 == 0 else list(reversed(runners))):
                    t0 = time.perf_counter()
                    runners[who][0]()
                    out["rows"][f"{kind}/{who}"]["ms"].append((time.perf_counter() - t0) * 1e3 * ITERS / iters)
        out["peak_gflops"] = matmul_gflops()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--peer-python", default="/work/peer-plan-venv/bin/python")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--lewm-iterations", type=int, default=3, help="CEM iterations timed for the LeWM-size rows "
                    "(scaled to 30)")
    ap.add_argument("--timeout", type=int, default=170, help="seconds allowed to the peer subprocess")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print("RESULT_JSON " + json.dumps(measure(args.repeats, args.threads, True, args.lewm_iterations)))
        return
    res, note = None, "--no-peer"
    if not args.no_peer:
        env = {**os.environ, "PYTHONPATH": os.path.dirname(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        try:
            proc = subprocess.run([args.peer_python, os.path.abspath(__file__), "--child", "--repeats",
                                   str(args.repeats), "--threads", str(args.threads), "--lewm-iterations",
                                   str(args.lewm_iterations)],
                                  capture_output=True, text=True, timeout=args.timeout, env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT_JSON ")]
            res = json.loads(lines[0][12:]) if lines else None
            note = proc.stderr.strip().splitlines()[-1] if res is None and proc.stderr.strip() else note
        except (OSError, subprocess.TimeoutExpired) as e:
            note = repr(e)
    if res is None:
        res = measure(args.repeats, args.threads, False, args.lewm_iterations)
    peak = res["peak_gflops"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"### One agent replan: CEM {S} samples x {ITERS} iterations, horizon {H}, top {TOPK}; "
          f"history {HIST}, macro-actions {K}x{A}\n")
    print(f"{stamp}; {platform.machine()}, {os.cpu_count()} cores (shared with other work), torch {res['torch']}, "
          f"{args.threads} threads; best float32 matmul {peak:.1f} GFLOP/s. LeWM-size rows: "
          f"{res['lewm_iters']} iterations timed, ms and FLOPs scaled to {ITERS}.\n")
    print("| predictor | planner | median ms | min ms | GFLOP/replan | GFLOP/s at median | of matmul peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    names = {"default": "default (MLP, D=64)", "lewm": "LeWM-size transformer (6x192, D=192)"}
    for key, row in res["rows"].items():
        kind, who = key.split("/")
        med, gf = statistics.median(row["ms"]), row["flops"] / 1e9
        rate = gf / (med * 1e-3)
        planner = "worldjepa CEM (cached rollout)" if who == "ours" else "stable-worldmodel CEMSolver (window re-run)"
        print(f"| {names[kind]} | {planner} | {med:.1f} | {min(row['ms']):.1f} | {gf:.2f} | {rate:.1f} | {rate / peak:.0%} |")
    if "lewm/peer" in res["rows"]:
        print()
        for kind in ("default", "lewm"):
            r = statistics.median(res["rows"][f"{kind}/peer"]["ms"]) / statistics.median(res["rows"][f"{kind}/ours"]["ms"])
            print(f"{names[kind]}: peer / ours = {r:.2f}x by median.")
    else:
        print(f"\nPEER NOT RUN ({note}): ours only.")


if __name__ == "__main__":
    main()
