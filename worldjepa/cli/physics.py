"""``worldjepa physics``: is a world model surprised by physically impossible events?"""

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
"""


def register(sub: Any) -> None:
    from ..configs import PhysicsConfig

    p = sub.add_parser("physics", help="violation of expectation: surprise at impossible events vs possible twins",
                       description="Draw matched pairs of clips from the run's env, identical until an event, then "
                                   "possible or impossible (teleportation, passing through a wall, disappearance, a "
                                   "velocity change without contact, a colour change); score each clip by the "
                                   "model's surprise after the event. Prints pairwise accuracy (max and mean "
                                   "surprise) and AUROC per violation type beside two controls on the same pairs (the "
                                   "architecture untrained, and adjacent-frame pixel difference); writes physics.json "
                                   "and surprise.png.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE)
    add_config_args(p, PhysicsConfig)
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import parse_agent_options
    from ..errors import WorldJepaError

    cfg = config_from_args(args)
    if not cfg.run:
        raise WorldJepaError("pass --run RUN_DIR (the world model to test)")
    if not Path(cfg.run).exists():
        raise WorldJepaError(f"no such run: {cfg.run}")
    import torch

    from ..physics.benchmark import format_table, run_voe
    from ..physics.plots import surprise_png
    from ..utils import atomic_write_text

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    result, pairs = run_voe(cfg.run, cfg.pairs, seed=cfg.seed, untrained=cfg.untrained, kinds=cfg.kind_list(),
                            metric=cfg.metric, normalize=cfg.normalize,
                            env_kwargs=parse_agent_options(cfg.env_kwargs, "--env-kwargs"),
                            progress=None if args.json else print)
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
