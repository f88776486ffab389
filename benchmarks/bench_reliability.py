"""What reliability costs, and a fuzz run on a large budget.

    git archive 5952875 | (mkdir -p /tmp/wj-base && tar -x -C /tmp/wj-base)   # the code before issue 20
    python benchmarks/bench_reliability.py cost --baseline /tmp/wj-base [--episodes 100] [--repeats 3]
    python benchmarks/bench_reliability.py [fuzz] [--mutations 2000]

``cost``: collection throughput (episodes/s of ``collect()``: checksums, fsync, the read-back
verification, the lock) and training (the trainer's set-up, where the dataset is checked, and
its steps/s) of this tree against ``--baseline``, each timed in a fresh process, the trees
alternating, on the same machine. ``fuzz``: seeded random byte mutations of a
dataset and a checkpoint, each opened, verified and read whole: how many were refused cleanly,
read fine, or escaped as anything but a ``WorldJepaError`` (a failure). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _run(src: Path, *args: str) -> float:
    """Wall seconds of ``python -m worldjepa ARGS`` with the package from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "worldjepa", *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


# timed in a fresh process with the package of one tree: collect() and Trainer(...) / fit()
_HARNESS = """
import json, sys, time, torch
torch.set_num_threads(1)
from worldjepa.config import from_dict
from worldjepa.configs import PRESETS, CollectConfig, TrainConfig
from worldjepa.data.collect import collect
from worldjepa.training.trainer import Trainer
data, run, episodes, steps, train_steps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
t0 = time.perf_counter()
collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=data, episodes=episodes, steps=steps), progress=False)
t1 = time.perf_counter()
trainer = Trainer(from_dict(TrainConfig, {**PRESETS["train"]["small"], "data": data, "out": run, "steps": train_steps,
                                          "val_every": 10**6, "log_every": train_steps, "progress": False,
                                          "device": "cpu", "threads": 1}))
t2 = time.perf_counter()
trainer.fit()
t3 = time.perf_counter()
print(json.dumps({"collect": episodes / (t1 - t0), "setup": t2 - t1, "steps": train_steps / (t3 - t2)}))
"""


def cost(args: argparse.Namespace) -> None:
    trees = {"before (baseline)": Path(args.baseline), "this tree": ROOT}
    rows: dict[str, dict[str, list[float]]] = {k: {"collect": [], "setup": [], "steps": []} for k in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, src in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                data, run = Path(tmp) / f"d{r}{name[0]}.h5", Path(tmp) / f"run{r}{name[0]}"
                env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
                out = subprocess.run([sys.executable, "-c", _HARNESS, str(data), str(run), str(args.episodes),
                                      str(args.steps), str(args.train_steps)], env=env, check=True,
                                     capture_output=True, text=True).stdout
                for k, v in json.loads(out.strip().splitlines()[-1]).items():
                    rows[name][k].append(v)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"collect(): worldjepa/TwoRoom-v0, {args.episodes} episodes x {args.steps} steps, 64x64; Trainer: --small, "
          f"{args.train_steps} steps, 1 thread; median of {args.repeats} runs per tree, alternating\n")
    print("| code | collect episodes/s | train setup s (data loaded and checked) | train steps/s |")
    print("| --- | --- | --- | --- |")
    med = {k: {m: sorted(v)[len(v) // 2] for m, v in d.items()} for k, d in rows.items()}
    for name, m in med.items():
        print(f"| {name} | {m['collect']:.2f} | {m['setup']:.2f} | {m['steps']:.1f} |")
    a, b = med["before (baseline)"], med["this tree"]
    print(f"| change | {100 * (b['collect'] / a['collect'] - 1):+.1f}% | {100 * (b['setup'] / a['setup'] - 1):+.1f}% | "
          f"{100 * (b['steps'] / a['steps'] - 1):+.1f}% |")


def mutation_fuzz(files: list[Path], mutations: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per file (a dataset ``.h5`` or a checkpoint ``.safetensors``): ``mutations`` copies with 1-5
    random bytes changed (a checkpoint's within its header and first tensor bytes), each opened,
    verified and read whole. Counts: ``clean`` (a WorldJepaError), ``fine``, ``mismatch`` (a
    dataset that opened but failed its checksums), ``failure`` (anything else: a bug), ``examples``."""
    import numpy as np

    from worldjepa import checkpoint as ckpt
    from worldjepa.data.dataset import Dataset
    from worldjepa.errors import WorldJepaError
    from worldjepa.world_model import load_world_model

    rng = np.random.default_rng(seed)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for source in files:
            raw = source.read_bytes()
            limit = len(raw) if source.suffix == ".h5" else 8 + struct.unpack("<Q", raw[:8])[0] + 256
            counts: dict[str, Any] = {"clean": 0, "fine": 0, "mismatch": 0, "failure": 0, "examples": []}
            t0 = time.perf_counter()
            for _ in range(mutations):
                b = bytearray(raw)
                for pos in rng.integers(0, limit, rng.integers(1, 6)):
                    b[int(pos)] = int(rng.integers(0, 256))
                p = Path(tmp) / f"m{source.suffix}"
                p.write_bytes(bytes(b))
                try:
                    if source.suffix == ".h5":
                        with Dataset(p) as ds:
                            bad = ds.verify()
                            for e in range(ds.num_episodes):
                                ds.episode(e)
                        counts["mismatch" if bad else "fine"] += 1
                    else:
                        ckpt.read_meta(p)
                        load_world_model(p)
                        counts["fine"] += 1
                except WorldJepaError:
                    counts["clean"] += 1
                except Exception as e:  # noqa: BLE001 (what the fuzz is looking for)
                    counts["failure"] += 1
                    counts["examples"].append(f"{type(e).__name__}: {e}")
            counts["seconds"] = time.perf_counter() - t0
            out[source.name] = counts
    return out


def fuzz(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "d.h5", Path(tmp) / "run"
        _run(ROOT, "collect", "--env", "worldjepa/TwoRoom-v0", "--out", str(data), "--episodes", "12", "--steps", "10",
             "--size", "32", "--no-progress")
        _run(ROOT, "train", "--data", str(data), "--out", str(run), "--small", "--steps", "2", "--no-progress",
             "--threads", "1", "--device", "cpu")
        result = mutation_fuzz([data, run / "model.safetensors"], args.mutations, args.seed)
    print(f"{args.mutations} mutations per file, 1-5 random bytes each, seed {args.seed}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| file | refused cleanly | read fine | checksum mismatch found | failures (other exceptions) | s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, c in result.items():
        print(f"| {name} | {c['clean']} | {c['fine']} | {c['mismatch']} | {c['failure']} | {c['seconds']:.0f} |")
        for example in c["examples"][:5]:
            print(f"  failure: {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(what="fuzz", mutations=2000, seed=0)  # `make bench` runs it without arguments
    sub = parser.add_subparsers(dest="what")
    c = sub.add_parser("cost")
    c.add_argument("--baseline", required=True, help="a source tree of the code to compare with")
    c.add_argument("--episodes", type=int, default=100)
    c.add_argument("--steps", type=int, default=100)
    c.add_argument("--train-steps", type=int, default=300)
    c.add_argument("--repeats", type=int, default=3)
    f = sub.add_parser("fuzz")
    f.add_argument("--mutations", type=int, default=2000)
    f.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    (cost if args.what == "cost" else fuzz)(args)


if __name__ == "__main__":
    main()
