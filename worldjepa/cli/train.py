"""``worldjepa train``: learn a JEPA world model from a dataset file."""

from __future__ import annotations

import argparse
from typing import Any

from .common import add_config_args, config_from_args

EXAMPLE = """examples:
  worldjepa train --data data/tworoom.h5 --out runs/tworoom --minutes 6
  worldjepa train --data data/tworoom.h5 --out runs/tworoom --resume
  worldjepa train --data data/tworoom.h5 --out runs/tf --predictor transformer --preset small
  worldjepa train --data data/tworoom.h5 --out runs/nosig model.regularizer=none   # collapse ablation
  worldjepa train --data data/balls.h5 --out runs/balls --action-free --predictor gru   # video only
  worldjepa train --data data/tworoom.h5 --out runs/ft --init-from runs/af --steps 500  # + actions, from zero
  worldjepa train --data data/balls.h5 --out runs/pix --pixel-space --action-free       # a pixel predictor
  worldjepa pretrain --data data/pusht.h5 --out runs/enc --steps 400 --temporal 10  # then a frozen encoder:
  worldjepa train --data data/pusht.h5 --out runs/pusht --encoder-init runs/enc --freeze-encoder \\
      --predictor gru --proprio "state[0:2]"
  torchrun --nproc-per-node 2 -m worldjepa train --data data/tworoom.h5 --out runs/ddp
"""

def register(sub: Any) -> None:
    from ..configs import PRESETS, TrainConfig

    p = sub.add_parser("train", help="train a world model (encoder + predictor) on a dataset",
                       description="Train a JEPA world model: teacher-forced (+ open-loop) next-embedding MSE "
                                   "+ lambda x SIGReg, AdamW with warm-up and cosine decay. Writes RUN_DIR/"
                                   "model.safetensors, last.safetensors (exact resume), config.json and "
                                   "metrics.jsonl. Frame size and action space come from the dataset.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE)
    add_config_args(p, TrainConfig, presets=PRESETS["train"])
    p.add_argument("--json", action="store_true", help="print the final summary as JSON")
    p.set_defaults(func=run)


def train_config_from_args(args: argparse.Namespace) -> Any:
    """defaults < preset < --config file < flags < key=value overrides (model flags included)."""
    return config_from_args(args)


def run(args: argparse.Namespace) -> int:
    import json

    from ..training.pixels import PixelTrainer
    from ..training.trainer import Trainer

    cfg = train_config_from_args(args)
    trainer = (PixelTrainer if cfg.pixel_space else Trainer)(cfg)
    budget = f"{cfg.minutes:g} minutes (<= {cfg.steps} steps)" if cfg.minutes > 0 else f"{trainer.total} steps"
    if trainer.is_main:
        print(f"training on {cfg.data} ({trainer.data_meta['env_id']}, {trainer.model_cfg.frame_size}px, "
              f"{len(trainer.train_data)} train windows) for {budget} -> {cfg.out}")
    summary = trainer.fit()
    trainer.close()  # after a clean finish only: a barrier after one rank failed could wait forever
    if not trainer.is_main:
        return 0
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"done: step {summary['step']} in {summary['minutes']:.1f} min; checkpoint {cfg.out}/model.safetensors")
    h = [k for k in summary if k.startswith("val/pred_mse_h")]
    for key in h:
        n = key[len("val/pred_mse_h"):]
        print(f"  val horizon {n}: {'pixel' if cfg.pixel_space else 'prediction'} MSE {summary[key]:.4f} vs "
              f"copy-last {summary[f'val/copy_mse_h{n}']:.4f}")
    for key in ("val/pred_over_copy", "val/rankme", "val/sigreg", "val/probe_r2"):
        if key in summary:
            print(f"  {key} {summary[key]:.4f}")
    for line in diagnose(summary):
        print(f"  warning: {line}")
    return 0


def diagnose(summary: dict) -> list[str]:
    """Plain-words warnings about a finished run's validation numbers (empty when all is well)."""
    out = []
    ratio, std = summary.get("val/pred_over_copy"), summary.get("val/z_std")
    last = max((int(k[len("val/copy_mse_h"):]) for k in summary if k.startswith("val/copy_mse_h")), default=0)
    copy = summary.get(f"val/copy_mse_h{last}")
    if ratio is not None and ratio > 0.9:
        out.append(f"the predictor barely beats copying the last embedding (pred/copy {ratio:.2f}): "
                   "it has not learned the dynamics; train longer or check the data")
    if copy is not None and std and copy < 0.05 * std ** 2:
        out.append(f"the embeddings hardly change over an episode (copy-last MSE {copy:.4f} at horizon {last}, "
                   f"embedding std {std:.2f}): the encoder may track something that stays still within an "
                   "episode (a per-episode target or background) instead of what the actions move")
    if std is not None and std < 0.05:
        out.append(f"the embeddings have collapsed (std {std:.4f}); use a regulariser (--regularizer sigreg)")
    return out
