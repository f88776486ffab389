"""What one training run is: data, budget, optimiser, logging and the model to build."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..config import opt
from ..errors import ConfigError
from ..world_model import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``worldjepa train`` (every field is a flag; ``model.*`` size the model)."""

    data: str = opt("", "dataset file (.h5) made by `worldjepa collect`")
    out: str = opt("runs/run", "run directory: model.safetensors, last.safetensors, config.json, metrics.jsonl")
    steps: int = opt(2000, "optimiser steps (an upper bound when --minutes is set)")
    minutes: float = opt(0.0, "wall-clock budget; > 0 fixes the step count after timing the first steps")
    encoder_init: str = opt("", "a `worldjepa pretrain` run (or its .safetensors) whose encoder weights start this "
                                "model's encoder; its architecture (encoder, channels, embed dim) replaces the "
                                "encoder flags. '' = random init")
    resume: bool = opt(False, "continue from RUN_DIR/last.safetensors (exact: same losses as an uninterrupted run)")
    batch_size: int = opt(64, "windows per step (per process under torchrun)")
    num_frames: int = opt(4, "frames T per training window, at the model's frame-skip")
    window_stride: int = opt(1, "a window may start every N frames of an episode (1 = at every frame); "
                                "with a frozen encoder only the frames windows hold are encoded, so N = "
                                "the frame-skip encodes one frame in frame-skip")
    lr: float = opt(1e-3, "peak learning rate (AdamW)")
    weight_decay: float = opt(1e-3, "AdamW weight decay")
    warmup_steps: int = opt(100, "linear warm-up steps, then cosine decay")
    min_lr_ratio: float = opt(0.05, "final learning rate as a fraction of lr")
    grad_clip: float = opt(1.0, "clip the gradient norm to this (0 = off)")
    seed: int = opt(0, "seed of the model init, the window sampler (+ rank) and dropout")
    device: Literal["auto", "cpu", "cuda"] = opt("auto", "auto | cpu | cuda")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    val_every: int = opt(200, "validate every N steps (and at the end)")
    val_windows: int = opt(256, "validation windows (fixed: the same ones at every validation)")
    val_horizon: int = opt(5, "validation prediction error for horizons 1..H model steps")
    save_every: int = opt(200, "write last.safetensors and model.safetensors every N steps")
    log_every: int = opt(10, "write train metrics every N steps")
    max_memory_mb: float = opt(2048, "load the dataset's frames into memory when they fit")
    progress: bool = opt(True, "show a progress bar")
    model: ModelConfig = opt(ModelConfig(), "the model (flags --latent-dim etc., or model.KEY=VALUE)")

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps ({self.steps}) must be >= 1")
        if self.minutes < 0:
            raise ConfigError(f"minutes ({self.minutes}) must be >= 0")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size ({self.batch_size}) must be >= 2 (the projector's BatchNorm needs it)")
        if self.num_frames < 2:
            raise ConfigError(f"num_frames ({self.num_frames}) must be >= 2")
        if self.window_stride < 1:
            raise ConfigError(f"window_stride ({self.window_stride}) must be >= 1")
        if min(self.val_every, self.save_every, self.log_every, self.val_windows, self.val_horizon) < 1:
            raise ConfigError("val_every, save_every, log_every, val_windows and val_horizon must be >= 1")


SMALL: dict[str, Any] = {
    "steps": 50, "batch_size": 16, "num_frames": 3, "val_every": 25, "save_every": 25, "val_windows": 32,
    "val_horizon": 2, "warmup_steps": 5, "log_every": 5,
    "model": {"channels": [8, 16, 16, 32], "encoder_dim": 64, "latent_dim": 16, "projector_hidden": 64,
              "predictor_hidden": 64, "sigreg_slices": 64, "frameskip": 2},
}
"""The ``--small`` preset: a tiny model and budget for tests and demos (seconds on a CPU)."""
