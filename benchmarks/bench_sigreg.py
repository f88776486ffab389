"""SIGReg forward+backward time: worldjepa vs a public implementation (jepa-science).

Usage (from the repository root):

    PYTHONPATH=. python benchmarks/bench_sigreg.py                     # peer installed here
    PYTHONPATH=. python benchmarks/bench_sigreg.py --peer-python /work/peer-venv/bin/python

The peer is imported only here. If it is not importable in this interpreter, ``--peer-python``
runs its half in that interpreter (a subprocess of this script); without either, the peer
columns are skipped with a message. Both sides get identical inputs; statistic values are
compared with identical directions (the peer's per-slice routine fed our projections).
Prints a markdown table: median time per call over the repeats, ratio peer/ours. In one
process the two sides' calls alternate, so a shared, fluctuating CPU load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch

SIZES = [(256, 192), (1024, 192), (4096, 64)]
SLICES = 1024


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _median_times_interleaved(fns, repeats: int, warmup: int = 2) -> list[float]:
    """Median seconds per call of each fn, calls alternating so load drift hits all alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def _fwd_bwd(loss_fn, z: torch.Tensor):
    def run():
        z.grad = None
        loss_fn(z).backward()
    return run


def peer_half(inputs: dict, repeats: int) -> dict:
    """Time jepa-science's public SIGReg and evaluate it on our directions."""
    import jepa_science
    from jepa_science import sigreg as peer_mod

    out = {"version": jepa_science.__version__, "rows": []}
    for z0, dirs in zip(inputs["z"], inputs["dirs"]):
        z = z0.clone().requires_grad_()
        peer = jepa_science.SIGReg(num_slices=SLICES, n_knots=17, t_max=3.0)
        sec = _median_time(_fwd_bwd(peer, z), repeats)
        t, w = peer_mod.epps_pulley_quadrature(17, 3.0)
        with torch.no_grad():
            value = peer_mod._slice_statistics(z0 @ dirs, t, w).mean().item()
        out["rows"].append({"sec": sec, "value": value})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--peer-python", default=None, help="interpreter that has jepa-science")
    ap.add_argument("--peer-worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    if args.peer_worker:  # subprocess mode: inputs in, JSON out
        inputs = torch.load(args.peer_worker)
        print(json.dumps(peer_half(inputs, args.repeats)))
        return

    from worldjepa.losses import SIGReg

    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(n, d, generator=g) for n, d in SIZES]
    dirs = [SIGReg(num_slices=SLICES).directions(d, 0) for _, d in SIZES]  # step-0 directions
    our_rows = []
    for z0 in zs:
        with torch.no_grad():
            value = SIGReg(num_slices=SLICES).eval()(z0).item()  # step 0: same dirs
        our_rows.append({"value": value})
    ours_fns = [_fwd_bwd(SIGReg(num_slices=SLICES), z0.clone().requires_grad_()) for z0 in zs]

    peer, why = None, ""
    try:
        import jepa_science
        from jepa_science import sigreg as peer_mod

        peer = {"version": jepa_science.__version__, "rows": []}
        t, w = peer_mod.epps_pulley_quadrature(17, 3.0)
        for i, z0 in enumerate(zs):
            peer_fn = _fwd_bwd(jepa_science.SIGReg(num_slices=SLICES, n_knots=17, t_max=3.0),
                               z0.clone().requires_grad_())
            ours_sec, peer_sec = _median_times_interleaved([ours_fns[i], peer_fn], args.repeats)
            our_rows[i]["sec"] = ours_sec
            with torch.no_grad():
                value = peer_mod._slice_statistics(z0 @ dirs[i], t, w).mean().item()
            peer["rows"].append({"sec": peer_sec, "value": value})
    except ImportError:
        for i, fn in enumerate(ours_fns):
            our_rows[i]["sec"] = _median_time(fn, args.repeats)
        if args.peer_python:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "inputs.pt")
                torch.save({"z": zs, "dirs": dirs}, path)
                cmd = [args.peer_python, os.path.abspath(__file__), "--peer-worker", path,
                       "--threads", str(args.threads), "--repeats", str(args.repeats)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode == 0:
                    peer = json.loads(proc.stdout.strip().splitlines()[-1])
                else:
                    why = f"peer subprocess failed: {proc.stderr.strip().splitlines()[-1:]}"
        else:
            why = "jepa-science not installed (pip install jepa-science, or pass --peer-python)"

    print(f"# SIGReg forward+backward, {SLICES} slices, 17 knots on [0, 3], float32")
    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; torch {torch.__version__}; "
          f"threads {torch.get_num_threads()} (cpu_count {os.cpu_count()}); {platform.processor() or platform.machine()}; "
          f"median of {args.repeats}")
    if peer:
        how = "same process, calls interleaved" if "jepa_science" in sys.modules else "subprocess"
        print(f"peer: jepa-science {peer['version']} (PyPI), jepa_science.SIGReg ({how})")
    else:
        print(f"peer skipped: {why}")
    print()
    print("| N | D | worldjepa ms | jepa-science ms | peer/ours | statistic ours | statistic peer |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, (n, d) in enumerate(SIZES):
        o = our_rows[i]
        if peer:
            p = peer["rows"][i]
            print(f"| {n} | {d} | {o['sec'] * 1e3:.1f} | {p['sec'] * 1e3:.1f} | "
                  f"{p['sec'] / o['sec']:.1f}x | {o['value']:.5f} | {p['value']:.5f} |")
        else:
            print(f"| {n} | {d} | {o['sec'] * 1e3:.1f} | - | - | {o['value']:.5f} | - |")


if __name__ == "__main__":
    main()
