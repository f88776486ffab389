"""``worldjepa pretrain``: LeJEPA self-supervised pretraining of an encoder, then its probes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_config_args, config_from_args

def register(sub: Any) -> None:
    from ..configs import PRESETS, PretrainConfig

    p = sub.add_parser(
        "pretrain", help="LeJEPA self-supervised pretraining of an encoder on frames or images",
        description="Train an encoder + BatchNorm projector with the LeJEPA loss (SIGReg + view prediction) on "
                    "the train-split frames of a worldjepa dataset or on a folder of png/jpg images (sub-folder "
                    "names = labels). An online linear probe of the states/labels trains alongside; at the end the "
                    "frozen encoder is probed on held-out (test-split) frames and the table is saved as eval.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: worldjepa pretrain --data data/tworoom.h5 --out runs/lejepa --minutes 5\n"
               "         worldjepa pretrain --out runs/lejepa --resume",
    )
    add_config_args(p, PretrainConfig, presets=PRESETS["pretrain"])
    p.add_argument("--json", action="store_true", help="print the final result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..encoder_model import format_table
    from ..training.pretrain import pretrain

    cfg = config_from_args(args)
    result = pretrain(cfg)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("train/"))
    print(f"step {result['step']}/{result['total_steps']} in {60 * result['minutes']:.0f} s: {losses}")
    print(f"checkpoints in {cfg.out} (model.safetensors, last.safetensors), metrics in {cfg.out}/metrics.jsonl")
    if "eval" in result:
        print("frozen-encoder evaluation (fit on train split, scored on test split):")
        print(format_table(result["eval"]))
    else:
        print(f"stopped before the end of the schedule; continue with: worldjepa pretrain --out {cfg.out} --resume")
    return 0
