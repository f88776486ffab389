"""Time one CEM replan on a small MLP latent predictor: worldjepa vs stable-worldmodel.

Setting (LeWM / DINO-WM planning budget): 300 samples x 30 iterations, horizon 5, top 30,
action dim 2, a 64-d latent and the predictor ``z' = z + MLP([z, a])`` (2 hidden layers of
256, ReLU), cost = latent MSE summed along the path. Both planners get the *same* predictor
(built from the same seed in both processes; a weight checksum is compared) and the same
rollout function; only the planner differs.

The peer (PyPI ``stable-worldmodel``) lives in another virtual environment, since its
dependencies conflict with ours; the whole comparison then runs in a subprocess with that
python (``--peer-python``, default ``/work/peer-plan-venv/bin/python``, same torch build)
and alternates the two planners at every repeat, so load on the shared CPU hits both.
Its package ``__init__`` imports its environments (OpenCV, torchvision, whose wheel would
replace our torch); only ``stable_worldmodel.solver.cem`` is needed, so the child registers
the two parent packages without running their ``__init__`` and imports that module as is.

    PYTHONPATH=. python benchmarks/bench_plan_cem.py [--repeats 9] [--threads 2] [--no-peer]

Prints a markdown table: median and min ms per replan, FLOPs per replan, achieved GFLOP/s
(at the min) and its fraction of the best large float32 matmul throughput measured in the
same run, plus a floor row: the predictor work of one replan with no planner at all.
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
from torch import nn

D, A, HID, H, S, ITERS, TOPK, SEED = 64, 2, 256, 5, 300, 30, 30, 0


def make_predictor() -> nn.Module:
    """``[z, a] (N, D + A) -> dz (N, D)``, identical in every process for a given seed."""
    torch.manual_seed(SEED)
    return nn.Sequential(nn.Linear(D + A, HID), nn.ReLU(), nn.Linear(HID, HID), nn.ReLU(),
                         nn.Linear(HID, D)).eval()


def rollout(net: nn.Module, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``z0`` ``(B, D)`` or ``(B, S, D)``, ``actions`` ``(B, S, H, A)`` -> ``(B, S, H, D)``."""
    B, S_, H_, _ = actions.shape
    z = z0.expand(B, S_, D).reshape(B * S_, D) if z0.ndim == 3 else \
        z0[:, None].expand(B, S_, D).reshape(B * S_, D)  # (B*S, D)
    a = actions.reshape(B * S_, H_, A)  # (B*S, H, A)
    out = []
    for t in range(H_):
        z = z + net(torch.cat([z, a[:, t]], dim=-1))  # (B*S, D)
        out.append(z)
    return torch.stack(out, dim=1).view(B, S_, H_, D)  # (B, S, H, D)


def path_cost(pred: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """Same as worldjepa's ``latent_cost(pred, goal)`` default (MSE summed over H): (B, S)."""
    return (pred - goal[:, None, None]).square().mean(-1).sum(-1)


def problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    net = make_predictor()
    g = torch.Generator().manual_seed(SEED + 1)
    z0, goal = torch.randn(1, D, generator=g), torch.randn(1, D, generator=g)  # (1, D) each
    return net, z0, goal


def checksum(net: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum() for p in net.parameters()))


def time_it(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def matmul_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Best float32 GFLOP/s of an ``n x n`` matmul (best, not median: the CPU is shared)."""
    x, y = torch.randn(n, n), torch.randn(n, n)
    ms = min(time_it(lambda: x @ y, repeats))
    return 2 * n**3 / (ms * 1e-3) / 1e9


def flops_per_replan() -> int:
    per_sample_step = 2 * ((D + A) * HID + HID * HID + HID * D)
    return per_sample_step * S * H * ITERS


# ----------------------------------------------------------------------------- ours
def ours_runners() -> dict:
    """Closures timing one replan of worldjepa's CEM, full and with a predictor-free cost."""
    from worldjepa.planning import CEM, make_latent_cost

    net, z0, goal = problem()
    kw = dict(low=-1.0, high=1.0, samples=S, iterations=ITERS, elites=TOPK, horizon=H,
              action_dim=A, init_std=1.0, seed=SEED)
    full, over = CEM(**kw), CEM(**kw)
    cost_fn = make_latent_cost(lambda acts: rollout(net, z0, acts), goal)
    target = torch.full((1, 1, H, A), 0.3)

    def run_full():
        return full.plan(cost_fn, batch=1).actions  # (1, H, A)

    def run_over():
        return over.plan(lambda a: (a - target).square().sum((2, 3)), batch=1).actions

    return {"full": run_full, "overhead": run_over}


# ----------------------------------------------------------------------------- peer
def _import_peer_cem():
    import importlib.util
    import types

    if "stable_worldmodel.solver.cem" in sys.modules:  # already imported (a second call)
        return sys.modules["stable_worldmodel.solver.cem"].CEMSolver
    spec = importlib.util.find_spec("stable_worldmodel")
    if spec is None:
        raise ImportError("stable_worldmodel is not installed in this python")
    root = spec.submodule_search_locations[0]
    for name, path in (("stable_worldmodel", root), ("stable_worldmodel.solver",
                                                     os.path.join(root, "solver"))):
        if name not in sys.modules:  # skip the package __init__ (envs: OpenCV, torchvision)
            mod = types.ModuleType(name)
            mod.__path__ = [path]
            sys.modules[name] = mod
    from stable_worldmodel.solver.cem import CEMSolver

    return CEMSolver


class _PeerModel(nn.Module):
    """Our predictor behind stable-worldmodel's ``Costable.get_cost(info, candidates)``."""

    def __init__(self, net: nn.Module, goal: torch.Tensor, overhead_only: bool = False) -> None:
        super().__init__()
        self.net, self.goal, self.overhead_only = net, goal, overhead_only

    def get_cost(self, info: dict, candidates: torch.Tensor) -> torch.Tensor:
        if self.overhead_only:
            return (candidates - 0.3).square().sum((2, 3))  # (B, S)
        return path_cost(rollout(self.net, info["z"], candidates), self.goal)  # (B, S)

    criterion = get_cost


def peer_runners() -> tuple[dict, str]:
    """Closures timing one replan of stable-worldmodel's CEMSolver on the same problem."""
    import contextlib
    import io
    from importlib.metadata import version

    import gymnasium as gym

    CEMSolver = _import_peer_cem()
    net, z0, goal = problem()
    runners = {}
    for key, overhead in (("full", False), ("overhead", True)):
        solver = CEMSolver(_PeerModel(net, goal, overhead), batch_size=1, num_samples=S,
                           var_scale=1.0, n_steps=ITERS, topk=TOPK, device="cpu", seed=SEED)
        solver.configure(action_space=gym.spaces.Box(-1.0, 1.0, shape=(1, A)), n_envs=1,
                         config=SimpleNamespace(horizon=H, action_block=1))

        def once(solver=solver):
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its solve time
                return solver.solve({"z": z0})["actions"].clamp(-1, 1)  # (1, H, A)

        runners[key] = once
    return runners, version("stable-worldmodel")


def measure(repeats: int, threads: int, with_peer: bool) -> dict:
    """Time ours and (optionally) the peer in this process, alternating at every repeat."""
    torch.set_num_threads(threads)
    net, z0, goal = problem()
    runners = {"ours": ours_runners()}
    fixed = torch.rand((1, S, H, A), generator=torch.Generator().manual_seed(SEED)) * 2 - 1

    def predictor_only():  # the predictor work of one replan, without any planner
        for _ in range(ITERS):
            path_cost(rollout(net, z0, fixed), goal)

    runners["floor"] = {"full": predictor_only, "overhead": lambda: None}
    out: dict = {"torch": torch.__version__, "checksum": checksum(net)}
    if with_peer:
        runners["peer"], out["peer_version"] = peer_runners()
    times = {(who, k): [] for who in runners for k in ("full", "overhead")}
    with torch.inference_mode():
        for _ in range(2):  # warm-up
            for who in runners:
                for k in ("full", "overhead"):
                    runners[who][k]()
        for r in range(repeats):
            order = list(runners) if r % 2 == 0 else list(reversed(runners))
            for k in ("full", "overhead"):
                for who in order:
                    t0 = time.perf_counter()
                    runners[who][k]()
                    times[(who, k)].append((time.perf_counter() - t0) * 1e3)
        for who in ("ours", "peer") if with_peer else ("ours",):
            acts = runners[who]["full"]()[:, None]  # (1, 1, H, A)
            out[f"{who}_cost"] = float(path_cost(rollout(net, z0, acts), goal)[0, 0])
        out["peak_gflops"] = matmul_gflops()
    out["times"] = {f"{who}/{k}": v for (who, k), v in times.items()}
    return out


def run_peer_child(repeats: int, threads: int) -> None:
    print("RESULT_JSON " + json.dumps(measure(repeats, threads, with_peer=True)))


def run_in_peer_python(python: str, repeats: int, threads: int) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([python, os.path.abspath(__file__), "--peer-child", "--repeats",
                           str(repeats), "--threads", str(threads)],
                          capture_output=True, text=True, timeout=170, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT_JSON "):
            return json.loads(line[len("RESULT_JSON "):])
    raise RuntimeError(f"peer run failed (exit {proc.returncode}): {proc.stderr[-1500:]}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--peer-python", default="/work/peer-plan-venv/bin/python")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--peer-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_child:
        run_peer_child(args.repeats, args.threads)
        return
    res, peer_err = None, None
    if not args.no_peer:
        try:
            res = run_in_peer_python(args.peer_python, args.repeats, args.threads)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
            peer_err = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
    if res is None:
        res = measure(args.repeats, args.threads, with_peer=False)
    t, peak, flops = res["times"], res["peak_gflops"], flops_per_replan()

    def row(name: str, ms_list: list[float], cost: float | None, with_flops: bool) -> str:
        ms, best = statistics.median(ms_list), min(ms_list)
        gf = flops / (best * 1e-3) / 1e9  # quiet-moment throughput
        fl = f"{flops / 1e9:.2f} | {gf:.1f} | {gf / peak:.0%}" if with_flops else "- | - | -"
        c = f"{cost:.4f}" if cost is not None else "-"
        return f"| {name} | {ms:.1f} | {best:.1f} | {fl} | {c} |"

    peer_name = f"stable-worldmodel {res.get('peer_version')} CEMSolver"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"### One CEM replan ({S} samples x {ITERS} iterations, horizon {H}, top {TOPK}; "
          f"MLP {D + A}-{HID}-{HID}-{D}, A={A}, B=1)\n")
    print(f"{stamp}; {platform.machine()}, {os.cpu_count()} cores (shared), torch "
          f"{res['torch']}, {args.threads} threads; {args.repeats} repeats after 2 warm-ups, "
          f"planners alternated at every repeat in one process; best float32 matmul 2048^3: "
          f"{peak:.1f} GFLOP/s. On a loaded shared CPU the min is the better estimate.\n")
    print("| planner | median ms/replan | min ms | GFLOP/replan | GFLOP/s at min | of matmul "
          "peak | path cost of answer |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(row("worldjepa CEM", t["ours/full"], res["ours_cost"], True))
    if "peer/full" in t:
        print(row(peer_name, t["peer/full"], res["peer_cost"], True))
    print(row(f"predictor only: {ITERS} x cost of {S} fixed sequences, no planner",
              t["floor/full"], None, True))
    print(row("worldjepa CEM, planner only (cost without predictor)", t["ours/overhead"],
              None, False))
    if "peer/full" in t:
        print(row(f"{peer_name}, planner only", t["peer/overhead"], None, False))
        def ratio(key: str, f) -> float:
            return f(t[f"peer/{key}"]) / f(t[f"ours/{key}"])

        print(f"\nspeed-up (peer ms / ours ms): full replan {ratio('full', statistics.median):.2f}x"
              f" by median, {ratio('full', min):.2f}x by min; planner only "
              f"{ratio('overhead', statistics.median):.2f}x by median, "
              f"{ratio('overhead', min):.2f}x by min. Same predictor, rollout and cost for both.")
    else:
        print(f"\nPEER NOT RUN ({'--no-peer' if args.no_peer else peer_err}): ours only.")
    print(f"\nFLOPs count the predictor's matmuls only: 2 x in x out per linear, x samples x "
          f"horizon x iterations = {flops:,} (ours also scores the initial guess and the final "
          f"mean: +2 x horizon single-sample steps, under 0.1%).")


if __name__ == "__main__":
    main()
