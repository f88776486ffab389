"""``worldjepa physics`` and ``worldjepa probe``: is a world model surprised by physically impossible
events, and can physical quantities be read out of its embeddings?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_config_args, config_from_args

EXAMPLE = """examples:
  worldjepa physics --run runs/tworoom                      # 50 pairs per violation, 20 untrained seeds
  worldjepa physics --run runs/tworoom --pairs 20 --untrained 5 --out results/physics
  worldjepa physics --run runs/tworoom --kinds teleport,solidity --metric l1 --normalize
  worldjepa physics --run runs/tworoom --pixel-run runs/tworoom_pix   # + a pixel-space predictor's surprise
"""

PROBE_EXAMPLE = """examples:
  worldjepa probe --run runs/lejepa --data data/tworoom.h5                  # + the same encoder untrained
  worldjepa probe --run runs/lejepa,runs/tworoom --data data/tworoom.h5 --out results/probe
"""


def register(sub: Any) -> None:
    from ..configs import PhysicsConfig, ProbeConfig

    for name, cfg, func, epilog, text, description in (
        ("physics", PhysicsConfig, run, EXAMPLE, "violation of expectation: surprise at impossible events vs possible twins",
         "Draw matched pairs of clips from the run's env (any built-in one), identical until an event, then "
         "possible or impossible "
         "(teleportation, passing through a wall or, on Push-T, the pusher through the block, disappearance, a "
         "velocity change without contact, a colour change; on Balls also reversed gravity and balls passing "
         "through each other); score each clip by the model's surprise after the event. Prints pairwise accuracy "
         "(max and mean surprise) and AUROC per violation type beside controls on the same pairs (the architecture "
         "untrained, adjacent-frame pixel difference, and with --pixel-run a pixel-space predictor's error); "
         "writes physics.json and surprise.png."),
        ("probe", ProbeConfig, run_probe, PROBE_EXAMPLE,
         "linear and MLP probes of physical quantities from frozen embeddings (R^2)",
         "Embed the frames of a dataset with each run's frozen encoder (and the first run's architecture with random "
         "weights), fit a linear and a small MLP probe per physical quantity (position, velocity, angle, block pose: "
         "what the env's state holds) on the train split, and report R^2 on the test split's held-out episodes. "
         "Writes probe.json and probe.png (predicted against true, per quantity)."),
    ):
        p = sub.add_parser(name, help=text, description=description, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_args(p, cfg)
        p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
        p.set_defaults(func=func)


def run(args: argparse.Namespace) -> int:
    from ..config import parse_agent_options
    from ..errors import WorldJepaError

    cfg = config_from_args(args)
    if not cfg.run:
        raise WorldJepaError("pass --run RUN_DIR (the world model to test)")
    for path in (cfg.run, cfg.pixel_run):
        if path and not Path(path).exists():
            raise WorldJepaError(f"no such run: {path}")
    import torch

    from ..physics.benchmark import format_table, run_voe
    from ..physics.plots import surprise_png
    from ..atomic import atomic_write_text

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    result, pairs = run_voe(cfg.run, cfg.pairs, seed=cfg.seed, untrained=cfg.untrained, kinds=cfg.kind_list(),
                            metric=cfg.metric, normalize=cfg.normalize,
                            env_kwargs=parse_agent_options(cfg.env_kwargs, "--env-kwargs"), pixel_run=cfg.pixel_run or None,
                            progress=None if args.json else print, device=cfg.device)
    out = Path(cfg.out or Path(cfg.run) / "physics")
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(result, indent=1, default=lambda a: a.tolist())
    atomic_write_text(out / "physics.json", payload + "\n")
    if cfg.plots:
        surprise_png(out / "surprise.png", result["curves"], pairs, per_kind=cfg.plots)
    if args.json:
        print(payload)
        return 0
    print(f"{result['env_id']}, {result['frame_size']}px, frame-skip {result['frameskip']}; surprise = "
          f"{result['metric']}{' of layer-normed embeddings' if result['normalize'] else ''} after the event; "
          f"{result['pairs']} pairs per violation (seed {result['seed']})")
    print(format_table(result))
    print(f"results written to {out / 'physics.json'}" + (f", figure to {out / 'surprise.png'}" if cfg.plots else ""))
    return 0


def run_probe(args: argparse.Namespace) -> int:
    from ..errors import WorldJepaError

    cfg = config_from_args(args)
    runs = cfg.runs()
    if not runs or not cfg.data:
        raise WorldJepaError("pass --run RUN (or RUN,RUN,...) and --data FILE (a dataset with states)")
    for r in [*runs, cfg.data]:
        if not Path(r).exists():
            raise WorldJepaError(f"no such file or run: {r}")
    import torch

    from ..physics.plots import scatter_png
    from ..physics.probes import format_probe_table, run_probes
    from ..atomic import atomic_write_text

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    result = run_probes(runs, cfg.data, max_frames=cfg.max_frames, seed=cfg.seed, random_init=cfg.random_init,
                        mlp_steps=cfg.mlp_steps, device=cfg.device)
    out = Path(cfg.out or Path(runs[0]) / "probe")
    out.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(result, indent=1, default=lambda a: a.tolist())
    atomic_write_text(out / "probe.json", payload + "\n")
    first = result["encoders"][0]
    scatter_png(out / "probe.png", result["truth"], first["pred"], first["mlp"],
                title=f"{first['name']}: MLP probe on {result['test_frames']} test frames (R2 on held-out episodes)")
    if args.json:
        print(payload)
        return 0
    print(f"{result['env_id']}: probes fitted on {result['train_frames']} train frames, R^2 on {result['test_frames']} "
          f"test frames (held-out episodes)")
    print(format_probe_table(result))
    print(f"results written to {out / 'probe.json'}, figure to {out / 'probe.png'}")
    return 0
