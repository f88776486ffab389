"""The options of the two commands that train: ``train`` (a world model) and ``pretrain``
(a LeJEPA encoder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ..config import Device, Precision, at_least, in_range, opt, section_from_str, seeds
from ..errors import ConfigError
from .commands import DEVICE_HELP, KEEP_HELP, PRECISION_HELP, PROGRESS_HELP, TENSORBOARD_HELP
from .model import EncoderConfig, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Options of ``worldjepa train`` (every field is a flag; ``model.*`` size the model)."""

    data: str = opt("", "dataset file (.h5) made by `worldjepa collect`")
    out: str = opt("runs/run", "run directory: model.safetensors, last.safetensors, config.json, metrics.jsonl")
    steps: int = opt(2000, "optimiser steps (an upper bound when --minutes is set)")
    minutes: float = opt(0.0, "wall-clock budget; > 0 fixes the step count after timing the first steps")
    encoder_init: str = opt("", "a `worldjepa pretrain` run (or its .safetensors) whose encoder weights start this "
                                "model's encoder; its architecture (encoder, channels, dim) replaces the "
                                "encoder flags. '' = random init")
    init_from: str = opt("", "a `worldjepa train` run whose weights start this model (fine-tuning): its model config "
                             "replaces the model flags, except --action-free and --freeze-encoder. An action-free "
                             "run fine-tuned with actions starts exactly where it was (its action input is zero). "
                             "'' = random init")
    predictor_only: bool = opt(False, "with --init-from: train a new predictor (initialised from --seed) in that "
                                      "run's latent, its encoder, projector and proprioception kept exactly; "
                                      "such runs share the latent, so they plan as an ensemble (`--policy "
                                      "RUN+NEW`) with one long-term memory built with RUN")
    pixel_space: bool = opt(False, "train a pixel-space predictor instead of a world model: a small conv net "
                                   "(about the default world model's size) that predicts the next frame from the "
                                   "last --history frames at the same --frameskip (and the action, unless "
                                   "--action-free); the control of `worldjepa physics --pixel-run`")
    resume: bool = opt(False, "continue from RUN_DIR/last.safetensors (exact: same losses as an uninterrupted run)")
    allow_data_change: bool = opt(False, "with --resume: continue even if the dataset is not the one the run was "
                                         "trained on (its fingerprint changed: an append, another file); the "
                                         "resume is then not exact")
    batch_size: int = opt(64, "windows per step (per process under torchrun)")
    num_frames: int = opt(4, "frames T per training window, at the model's frame-skip")
    window_stride: int = opt(1, "a window may start every N frames of an episode (1 = at every frame); "
                                "with a frozen encoder only the frames windows hold are encoded, so N = "
                                "the frame-skip encodes one frame in frame-skip")
    lr: float = opt(1e-3, "peak learning rate (AdamW)")
    weight_decay: float = opt(1e-3, "AdamW weight decay (not applied to biases and norm layers)")
    warmup_steps: int = opt(100, "linear warm-up steps, then cosine decay")
    min_lr_ratio: float = opt(0.05, "final learning rate as a fraction of lr")
    grad_clip: float = opt(1.0, "clip the gradient norm to this (0 = off)")
    seed: int = opt(0, "seed of the model init, the window sampler (+ rank) and dropout")
    device: Device = opt("auto", DEVICE_HELP)
    precision: Precision = opt("float32", PRECISION_HELP)
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    val_every: int = opt(200, "validate every N steps (and at the end)")
    val_windows: int = opt(256, "validation windows (fixed: the same ones at every validation)")
    val_horizon: int = opt(5, "validation prediction error for horizons 1..H model steps")
    save_every: int = opt(200, "write last.safetensors and model.safetensors every N steps")
    keep: int = opt(1, KEEP_HELP + "; and best.safetensors, the weights of the lowest val/pred_over_copy so far")
    log_every: int = opt(10, "write train metrics every N steps")
    max_memory_mb: float = opt(2048, "load the dataset's frames into memory when they fit")
    progress: bool = opt(True, PROGRESS_HELP)
    tensorboard: bool = opt(False, TENSORBOARD_HELP + " to RUN_DIR/tb")
    model: ModelConfig = opt(ModelConfig(), "the model (flags --latent-dim etc., or model.KEY=VALUE)")

    def __post_init__(self) -> None:
        at_least(self, 1, "steps", "num_frames", "window_stride", "val_every", "save_every", "log_every",
                  "val_windows", "val_horizon", "keep")
        at_least(self, 0, "minutes", "warmup_steps", "grad_clip", "weight_decay", "threads")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size ({self.batch_size}) must be >= 2 (the projector's BatchNorm needs it)")
        if self.num_frames < 2:
            raise ConfigError(f"num_frames ({self.num_frames}) must be >= 2")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr}, {self.min_lr_ratio}")
        in_range(self, "lr", 0, 10, lo_open=True)
        at_least(self, 0, "max_memory_mb")
        seeds(self, "seed")
        if self.init_from and self.encoder_init:
            raise ConfigError("pass --init-from (a whole world model) or --encoder-init (an encoder), not both")
        if self.predictor_only and not (self.init_from or self.resume):
            raise ConfigError("--predictor-only trains a new predictor in the latent of a trained run: pass "
                              "--init-from RUN")
        if self.pixel_space:
            m = self.model
            extra = [name for name, on in (("--init-from", self.init_from), ("--encoder-init", self.encoder_init),
                                           ("--predictor-only", self.predictor_only),
                                           ("--freeze-encoder", m.freeze_encoder), ("--proprio", m.proprio),
                                           ("inverse_weight", m.inverse_weight)) if on]
            if extra:
                raise ConfigError(f"--pixel-space trains a pixel predictor from scratch on frames and actions: "
                                  f"{', '.join(extra)} apply to world models only")


@dataclass(frozen=True)
class PretrainConfig:
    """LeJEPA pretraining options (``worldjepa pretrain``)."""

    __aliases__: ClassVar[dict[str, str]] = {
        "embed_dim": "encoder.dim", "channels": "encoder.channels", "keypoints": "encoder.keypoints",
        "regulariser": "regularizer", "slices": "sigreg_slices", "proj_hidden": "projector_hidden",
        "proj_dim": "projector_dim"}

    data: str = opt("", "worldjepa dataset (.h5; train-split frames, states for probes) or a folder of images")
    out: str = opt("runs/pretrain", "run directory (model.safetensors, last.safetensors, metrics.jsonl, eval.json)")
    steps: int = opt(2000, "optimizer steps (the schedule's length; an upper bound when --minutes is set)")
    minutes: float = opt(0.0, "wall-clock budget; > 0 fixes the step count after timing the first steps")
    stop_at: int = opt(0, "stop at this step with a resumable checkpoint, schedule unfinished (0: run to the end)")
    resume: bool = opt(False, "continue the run in --out from its last.safetensors (with its saved options)")
    allow_data_change: bool = opt(False, "with --resume: continue even if the dataset changed since the run started "
                                         "(its fingerprint differs); the resume is then not exact")
    encoder: EncoderConfig = opt(EncoderConfig(channels=(32, 64, 128, 256)), "the image encoder")
    size: int = opt(0, "frame side in pixels (0: the dataset's; 64 for image folders)")
    projector_hidden: int = opt(512, "projector hidden width (BatchNorm MLP)")
    projector_dim: int = opt(16, "projector output, where the regulariser acts (16-64 per LeJEPA; 16 probed best "
                                 "on TwoRoom)")
    regularizer: Literal["sigreg", "vicreg", "none"] = opt("sigreg", "sigreg (LeJEPA), vicreg, or none (collapses)")
    lam: float = opt(0.05, "LeJEPA lambda: weight of SIGReg against the view-prediction term")
    sigreg_slices: int = opt(512, "SIGReg random directions per step")
    batch_size: int = opt(64, "frames per step")
    n_global: int = opt(2, "global views per frame")
    n_local: int = opt(0, "local views per frame (rendered at the encoder's size)")
    views: Literal["geometry", "crops"] = opt("geometry", "view policy: geometry (the whole frame, shifted by <= shift "
                                                          "px; colour jitter, blur, noise) or crops (random resized "
                                                          "crops of >= crop_min; on Push-T, with 3,000 steps, what "
                                                          "makes the block's angle readable)")
    temporal: int = opt(3, "temporal views: global view v of a frame is the same episode's frame up to this "
                           "many steps before or after it (view 0 is the frame itself); 0 = off. Datasets "
                           "only: image folders have no episodes and get views of the one image")
    shift: float = opt(0.0, "geometry views: largest translation per axis, pixels (even 1 px moves the walls: a "
                            "nuisance the regulariser latches onto)")
    noise: float = opt(0.02, "std of additive gaussian pixel noise per view (frames in [0, 1])")
    crop_min: float = opt(0.6, "crops views: smallest global crop, as a fraction of the image area")
    flip_p: float = opt(0.0, "horizontal flip probability (0 for frames whose left/right matters)")
    jitter_p: float = opt(0.0, "probability of colour jitter per view (off: on near-constant frames it is the main "
                               "source of variance)")
    blur_p: float = opt(0.0, "probability of gaussian blur per view")
    lr: float = opt(1e-3, "peak AdamW learning rate")
    weight_decay: float = opt(0.05, "AdamW weight decay (not applied to biases and norm layers)")
    warmup: float = opt(0.05, "fraction of the steps spent warming the learning rate up linearly")
    min_lr_ratio: float = opt(0.01, "final learning rate as a fraction of lr")
    grad_clip: float = opt(0.0, "clip the gradient norm to this (0 = off)")
    probe_lr: float = opt(1e-3, "learning rate of the online linear probe (Adam)")
    log_every: int = opt(10, "steps between metric lines")
    probe_every: int = opt(50, "steps between online-probe reports (probe/r2 or probe/acc; probe/rank of the "
                               "projections)")
    save_every: int = opt(500, "steps between checkpoints")
    keep: int = opt(1, KEEP_HELP)
    eval_frames: int = opt(4000, "frames per split for the final frozen-encoder evaluation (0: all)")
    seed: int = opt(0, "seed of initialisation, sampling, views and SIGReg directions")
    device: Device = opt("auto", DEVICE_HELP)
    precision: Precision = opt("float32", PRECISION_HELP)
    threads: int = opt(0, "torch CPU threads (0 = torch's default); on --resume this launch's value is used")
    progress: bool = opt(True, PROGRESS_HELP)
    tensorboard: bool = opt(False, TENSORBOARD_HELP + " to RUN_DIR/tb")

    def __post_init__(self) -> None:
        section_from_str(self, "encoder", EncoderConfig)
        at_least(self, 1, "steps", "log_every", "probe_every", "save_every", "projector_hidden", "projector_dim",
                  "sigreg_slices", "n_global", "keep")
        at_least(self, 0, "minutes", "stop_at", "shift", "noise", "temporal", "n_local", "grad_clip",
                  "weight_decay", "threads", "eval_frames", "size")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size ({self.batch_size}) must be >= 2 (the projector's BatchNorm needs it)")
        if not 0 <= self.lam <= 1:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")
        if not 0 < self.crop_min <= 1:
            raise ConfigError(f"crop_min must be in (0, 1], got {self.crop_min}")
        if self.regularizer == "vicreg" and self.n_global < 2:
            raise ConfigError("vicreg needs n_global >= 2 views")
        if not 0 <= self.warmup < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("need 0 <= warmup < 1 and 0 <= min_lr_ratio <= 1")
        for name in ("lr", "probe_lr"):
            in_range(self, name, 0, 10, lo_open=True)
        for name in ("flip_p", "jitter_p", "blur_p"):
            in_range(self, name, 0, 1)
        seeds(self, "seed")
