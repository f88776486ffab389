"""Every option of every command, and the one table of presets. Torch-free.

Each command's options are one frozen dataclass whose fields carry their help text; the CLI
builds its flags from these fields (nested ones included: ``ModelConfig.encoder`` gives
``--encoder``, ``--encoder-dim``, ...), so ``--help``, YAML files, ``key=value`` overrides,
the Python API and the JSON saved beside every artefact all speak the same names. Checks
live in ``__post_init__``. Importing this module loads no torch: ``worldjepa --help`` stays
fast.

This file is long (about 480 lines) on purpose: it is the single place where an option is
defined, documented and range-checked, so it reads as a table, not as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from .config import opt, parse_agent_options
from .errors import ConfigError

Device = Literal["auto", "cpu", "cuda"]


def parse_proprio(spec: str) -> tuple[str, slice]:
    """``'state[2:4]'`` -> ``("state", slice(2, 4))``; ``'obs'`` -> ``("obs", slice(None))``."""
    m = re.fullmatch(r"\s*([A-Za-z_][\w/]*)\s*(?:\[\s*(-?\d*)\s*:\s*(-?\d*)\s*\])?\s*", spec)
    if not m:
        raise ConfigError(f"proprio {spec!r}: expected an extras name and optional slice, e.g. 'state[2:4]' or 'obs'")
    lo, hi = m.group(2), m.group(3)
    return m.group(1), slice(int(lo) if lo else None, int(hi) if hi else None)


def _section_from_str(cfg: Any, name: str, cls: type) -> None:
    """Let a nested section be given as its string shorthand in Python too
    (``EvalConfig(agent="horizon=8 samples=500")``)."""
    from .config import deep_merge, from_dict, normalize, to_dict

    value = getattr(cfg, name)
    if isinstance(value, str):
        default = to_dict(type(cfg).__dataclass_fields__[name].default)  # laid under it, as from_dict does
        object.__setattr__(cfg, name, from_dict(cls, deep_merge(normalize(cls, default), cls.from_str(value))))


def _at_least(cfg: Any, minimum: float, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value < minimum:
            raise ConfigError(f"{name} must be >= {minimum:g}, got {value}")


# ---------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class EncoderConfig:
    """The image encoder, shared by world models (``train``) and LeJEPA pretraining."""

    kind: Literal["cnn", "vit_tiny"] = opt("cnn", "encoder: cnn (CPU default) | vit_tiny", flag="encoder")
    dim: int = opt(256, "encoder output size (before the projector)", flag="encoder-dim")
    channels: tuple[int, ...] = opt((8, 16, 32, 64), "CNN channels, one stride-2 conv per entry (cnn only)",
                                    flag="channels")
    keypoints: int = opt(0, "CNN spatial-softmax keypoints K: the last 2K encoder outputs are K expected (x, y) "
                            "positions of learned heatmaps", flag="keypoints")
    patch: int = opt(8, "ViT patch size in pixels (vit_tiny only)", flag="patch")

    @classmethod
    def from_str(cls, text: str) -> dict[str, Any]:
        """``"cnn"`` -> ``{"kind": "cnn"}`` (configs written before the encoder had its own section)."""
        return {"kind": text}

    def __post_init__(self) -> None:
        _at_least(self, 1, "dim", "patch")
        _at_least(self, 0, "keypoints")
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"channels must be a non-empty list of sizes >= 1, got {self.channels}")
        if self.keypoints and self.kind != "cnn":
            raise ConfigError(f"keypoints are an option of the cnn encoder, not {self.kind}")


# Sizes of the transformer predictor (keyword arguments of worldjepa.nn.TransformerPredictor
# besides dim / action_dim). lewm follows LeWM's released config: 6 blocks of width 192, 16
# heads of 64, MLP 2048.
TRANSFORMER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(depth=2, width=32, heads=2, history=3, mlp_ratio=2.0, dropout=0.0),
    "small": dict(depth=4, width=128, heads=4, history=3, mlp_ratio=4.0, dropout=0.1),
    "lewm": dict(depth=6, width=192, heads=16, head_dim=64, mlp_dim=2048, history=3, dropout=0.1),
}


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and objective of a world model (saved in every checkpoint)."""

    __aliases__: ClassVar[dict[str, str]] = {
        "encoder_dim": "encoder.dim", "channels": "encoder.channels", "keypoints": "encoder.keypoints",
        "patch": "encoder.patch", "regulariser": "regularizer"}

    encoder: EncoderConfig = opt(EncoderConfig(), "the image encoder")
    latent_dim: int = opt(64, "latent size D (projector output; what the planner compares)")
    projector_hidden: int = opt(512, "projector hidden width (BatchNorm MLP)")
    projector_layers: int = opt(2, "projector linear layers; 0 = no projector: the latent is the encoder's "
                                   "output, each dimension standardised (latent_dim is then the encoder's dim), as "
                                   "DINO-WM plans on frozen DINOv2 features; meant for --freeze-encoder")
    predictor: Literal["mlp", "transformer", "gru"] = opt("mlp", "predictor: mlp | transformer | gru")
    preset: str = opt("", "transformer size preset: tiny | small | lewm (transformer only)")
    predictor_hidden: int = opt(128, "hidden width of the mlp / gru predictor")
    predictor_layers: int = opt(3, "linear layers of the mlp predictor (>= 2)")
    history: int = opt(3, "model steps of context: the transformer's attention window and the "
                          "agent's memory of observed embeddings")
    frameskip: int = opt(5, "env steps per model step; the predictor sees frameskip x A actions")
    regularizer: Literal["sigreg", "vicreg", "none"] = opt(
        "sigreg", "anti-collapse term: sigreg | vicreg | none (none = the collapse ablation)")
    reg_weight: float = opt(0.1, "weight lambda of the regulariser")
    sigreg_slices: int = opt(512, "random 1-D projections per SIGReg step")
    rollout_weight: float = opt(1.0, "weight of the open-loop rollout MSE (0 = teacher-forced only)")
    inverse_weight: float = opt(0.0, "weight of a PLDM-style inverse-dynamics term: an MLP predicts the "
                                     "macro action from (z_t, z_t+1); 0 = off (PLDM variant: "
                                     "regularizer=vicreg inverse_weight=1)")
    proprio: str = opt("", "proprioceptive input: a dataset extra and optional slice, e.g. 'state[2:4]' "
                           "(PointMaze's velocity) or 'obs'; embedded and appended to the latent. "
                           "'' = pixels only")
    proprio_emb: int = opt(16, "size of the proprioceptive embedding appended to the latent")
    freeze_encoder: bool = opt(False, "keep the encoder's weights fixed in training (with --encoder-init: a frozen "
                                      "pretrained encoder, as DINO-WM freezes DINOv2); projector and predictor learn")
    proprio_dim: int = opt(0, "proprioceptive values per frame (filled from the dataset)", cli=False)
    frame_size: int = opt(0, "frame side in pixels (filled from the dataset)", cli=False)
    action_dim: int = opt(0, "env action size A (filled from the dataset's action space)", cli=False)

    def __post_init__(self) -> None:
        _section_from_str(self, "encoder", EncoderConfig)
        _at_least(self, 1, "latent_dim", "history", "frameskip", "projector_hidden", "predictor_hidden",
                  "sigreg_slices")
        _at_least(self, 0, "projector_layers", "reg_weight", "rollout_weight", "inverse_weight")
        if self.predictor == "mlp" and self.predictor_layers < 2:
            raise ConfigError(f"predictor_layers must be >= 2 for the mlp predictor, got {self.predictor_layers}")
        if self.proprio:
            parse_proprio(self.proprio)  # a clear error now, not at the first batch
            _at_least(self, 1, "proprio_emb")
        if self.preset and self.predictor != "transformer":
            raise ConfigError(f"preset {self.preset!r} sizes the transformer predictor, not {self.predictor!r}")
        if self.preset and self.preset not in TRANSFORMER_SIZES:
            raise ConfigError(f"unknown transformer preset {self.preset!r}; choose {' | '.join(TRANSFORMER_SIZES)}")


# -------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class PlannerConfig:
    """The planner that searches action sequences (``None`` = that planner's own default)."""

    name: Literal["cem", "icem", "mppi", "gd", "cem_gd"] = opt("cem", "cem | icem | mppi | gd | cem_gd",
                                                               flag="planner")
    samples: int | None = opt(None, "candidates per iteration (restarts for gd)", none="300; gd: 8")
    iterations: int | None = opt(None, "iterations per plan", none="30; gd: 50")
    elites: int | None = opt(None, "candidates kept to refit the distribution", none="min(30, samples); mppi, gd: 1")
    init_std: float | None = opt(None, "initial spread, as a fraction of the action range's half-width",
                                 none="1; gd: 0.5")
    seed: int = opt(0, "the planner's seed (same seed, same observations -> same actions)", flag="planner-seed")
    momentum: float | None = opt(None, "cem / icem: weight of the previous mean and std in each refit")
    min_std: float | None = opt(None, "cem: floor of the sampling std")
    beta: float | None = opt(None, "icem: colour of the noise (0 white, 2 pink-ish: smooth sequences)")
    keep_elites: float | None = opt(None, "icem: fraction of elites carried to the next iteration")
    shrink: float | None = opt(None, "icem: population divided by this at every iteration")
    include_mean: bool | None = opt(None, "icem: add the mean itself as a candidate in the last iteration")
    temperature: float | None = opt(None, "mppi: temperature of the exponential weights")
    noise_std: float | None = opt(None, "mppi: sampling std (instead of init_std)")
    noise_decay: float | None = opt(None, "mppi: std multiplied by this at every iteration")
    adapt_std: bool | None = opt(None, "mppi: refit the std from the weighted samples")
    lr: float | None = opt(None, "gd / cem_gd: step size of gradient descent on the actions", flag="gd-lr")
    gd_iterations: int | None = opt(None, "cem_gd: gradient steps after CEM")
    gd_restarts: int | None = opt(None, "cem_gd: CEM elites refined by gradient descent")
    gd_std: float | None = opt(None, "cem_gd: spread of the restarts around the CEM answer")

    def kwargs(self) -> dict[str, Any]:
        """The planner's keyword arguments: ``seed`` and every option that is set."""
        out: dict[str, Any] = {"seed": self.seed}
        for name in PLANNER_OPTIONS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"planner seed must be in [0, 2^32), got {self.seed}")
        for name in ("samples", "iterations", "elites", "gd_iterations", "gd_restarts"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")


PLANNER_OPTIONS = ("samples", "iterations", "elites", "init_std", "momentum", "min_std", "beta", "keep_elites",
                   "shrink", "include_mean", "temperature", "noise_std", "noise_decay", "adapt_std", "lr",
                   "gd_iterations", "gd_restarts", "gd_std")


@dataclass(frozen=True)
class AgentConfig:
    """How a trained world model is turned into a goal-conditioned policy (``worldjepa.Agent``)."""

    planner: PlannerConfig = opt(PlannerConfig(), "the planner")
    horizon: int = opt(5, "planning horizon in model steps (macro-actions; 5 = 25 env steps at frame-skip 5)")
    replan_every: int = opt(1, "macro-steps executed from each plan before replanning")
    act_steps: int | None = opt(None, "env steps executed from each plan; a divisor of the frame-skip below it "
                                      "replans within a macro-step: 1 = at every env step",
                                none="frame-skip x replan_every")
    metric: Literal["mse", "l1"] = opt("mse", "distance between imagined and goal embeddings")
    reduce: Literal["sum", "final", "mean_path"] = opt(
        "sum", "over the horizon: sum (every step's distance), final (the last step only), mean_path")
    final_weight: float = opt(1.0, "weight of the last step of a path cost against 1 for each earlier step")
    proprio_weight: float = opt(1.0, "weight of the proprioceptive part of the latent in the cost (models with "
                                     "--proprio; 0 = ignore how far the agent's own body is from the goal's)")
    keypoint_weight: float = opt(1.0, "weight of the encoder's keypoint coordinates in the cost (cnn encoders "
                                      "with keypoints and --projector-layers 0)")
    warm_start: bool = opt(True, "start each plan from the previous one, shifted")
    device: Device = opt("auto", "where the model plans: auto (cuda when present) | cpu | cuda")
    memory: str = opt("", "a long-term memory file (`worldjepa memory build`): far goals are reached through a "
                          "route of remembered places, the MPC planning each short leg; '' = flat MPC")
    route_lookahead: float = opt(10.0, "with --memory: a subgoal lies at most this many env steps ahead along the "
                                       "route")
    route_stall: int = opt(6, "with --memory: model steps without progress before the leg's edge is penalised "
                              "and the route searched again")

    @classmethod
    def from_str(cls, text: str) -> dict[str, Any]:
        """The ``--agent "horizon=8 samples=500"`` shorthand: planner options go to ``planner``."""
        return split_agent_options(parse_agent_options(text))

    def __post_init__(self) -> None:
        _at_least(self, 1, "horizon", "replan_every")
        _at_least(self, 0, "final_weight", "proprio_weight", "keypoint_weight")
        _at_least(self, 1, "route_stall")
        if not self.route_lookahead > 0:
            raise ConfigError(f"route_lookahead must be > 0, got {self.route_lookahead}")
        if self.replan_every > self.horizon:
            raise ConfigError(f"replan_every ({self.replan_every}) must be <= horizon ({self.horizon})")
        if self.final_weight != 1.0 and self.reduce == "final":
            raise ConfigError("final_weight weighs the last step of a path cost: use it with reduce='sum' "
                              "or 'mean_path', not 'final'")


def split_agent_options(options: dict[str, Any]) -> dict[str, Any]:
    """Flat Agent options (``horizon=8, samples=500, seed=1, planner="mppi"``) as an
    :class:`AgentConfig` mapping: planner options (and ``seed``) under ``planner``."""
    out: dict[str, Any] = {}
    planner: dict[str, Any] = {}
    for key, value in options.items():
        if key in PLANNER_OPTIONS or key == "seed":
            planner[key] = value
        elif key == "planner" and isinstance(value, str):
            planner["name"] = value
        else:
            out[key] = value
    if planner:
        nested = out.get("planner")
        out["planner"] = {**(nested if isinstance(nested, dict) else {}), **planner}
    return out


# -------------------------------------------------------------------------------- commands
@dataclass(frozen=True)
class CollectConfig:
    """How to record a dataset (``worldjepa collect``)."""

    env: str = opt("worldjepa/TwoRoom-v0", "Gymnasium environment id (any id that renders rgb_array)")
    out: str = opt("data/dataset.h5", "output HDF5 file")
    episodes: int = opt(0, "number of episodes to record; 0 = the env's default size (2,000 for TwoRoom, PointMaze "
                           "and Push-T, 3,000 for Reacher, as in DINO-WM/PLDM; 100 for other envs)")
    steps: int = opt(100, "actions per episode (an episode ends early if the env terminates)")
    seed: int = opt(0, "base seed: episode e uses derive_seed(seed, e)")
    policy: str = opt("auto", "collection policy: random | smooth | expert (Push-T) | auto (expert for Push-T, else smooth)")
    size: int = opt(64, "frame size in pixels (frames are size x size RGB)")
    workers: int = opt(1, "worker processes (the result does not depend on it)")
    env_module: str = opt("", "module to import first so that it registers third-party env ids")
    append: bool = opt(False, "append episodes to an existing file instead of refusing to overwrite it")
    compression: Literal["lzf", "gzip", "none"] = opt("lzf", "frame compression in the HDF5 file")
    progress: bool = opt(True, "show a progress bar (--no-progress: none)")

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.steps < 1:
            raise ConfigError(f"episodes ({self.episodes}) must be >= 0 and steps ({self.steps}) >= 1")
        if not 8 <= self.size <= 512:
            raise ConfigError(f"size {self.size} must be between 8 and 512 pixels")
        _at_least(self, 1, "workers")


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
    resume: bool = opt(False, "continue from RUN_DIR/last.safetensors (exact: same losses as an uninterrupted run)")
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
    device: Device = opt("auto", "auto (cuda when present) | cpu | cuda")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    val_every: int = opt(200, "validate every N steps (and at the end)")
    val_windows: int = opt(256, "validation windows (fixed: the same ones at every validation)")
    val_horizon: int = opt(5, "validation prediction error for horizons 1..H model steps")
    save_every: int = opt(200, "write last.safetensors and model.safetensors every N steps")
    log_every: int = opt(10, "write train metrics every N steps")
    max_memory_mb: float = opt(2048, "load the dataset's frames into memory when they fit")
    progress: bool = opt(True, "show a progress bar (--no-progress: none)")
    model: ModelConfig = opt(ModelConfig(), "the model (flags --latent-dim etc., or model.KEY=VALUE)")

    def __post_init__(self) -> None:
        _at_least(self, 1, "steps", "num_frames", "window_stride", "val_every", "save_every", "log_every",
                  "val_windows", "val_horizon")
        _at_least(self, 0, "minutes", "warmup_steps", "grad_clip", "weight_decay", "threads")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size ({self.batch_size}) must be >= 2 (the projector's BatchNorm needs it)")
        if self.num_frames < 2:
            raise ConfigError(f"num_frames ({self.num_frames}) must be >= 2")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"need lr > 0 and 0 <= min_lr_ratio <= 1, got {self.lr}, {self.min_lr_ratio}")


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
                                                          "crops of >= crop_min)")
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
    eval_frames: int = opt(4000, "frames per split for the final frozen-encoder evaluation (0: all)")
    seed: int = opt(0, "seed of initialisation, sampling, views and SIGReg directions")
    device: Device = opt("auto", "auto (cuda when present) | cpu | cuda")
    threads: int = opt(0, "torch CPU threads (0 = torch's default); on --resume this launch's value is used")
    progress: bool = opt(True, "show a progress bar (--no-progress: none)")

    def __post_init__(self) -> None:
        _section_from_str(self, "encoder", EncoderConfig)
        _at_least(self, 1, "steps", "log_every", "probe_every", "save_every", "projector_hidden", "projector_dim",
                  "sigreg_slices", "n_global")
        _at_least(self, 0, "minutes", "stop_at", "shift", "noise", "temporal", "n_local", "grad_clip",
                  "weight_decay", "threads", "eval_frames", "size")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size ({self.batch_size}) must be >= 2 (the projector's BatchNorm needs it)")
        if not 0 <= self.lam <= 1:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")
        if not 0 < self.crop_min <= 1:
            raise ConfigError(f"crop_min must be in (0, 1], got {self.crop_min}")
        if self.regularizer == "vicreg" and self.n_global < 2:
            raise ConfigError("vicreg needs n_global >= 2 views")
        if self.lr <= 0 or not 0 <= self.warmup < 1 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError("need lr > 0, 0 <= warmup < 1 and 0 <= min_lr_ratio <= 1")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and under which protocol settings (``worldjepa eval``)."""

    __aliases__: ClassVar[dict[str, str]] = {"planner": "agent.planner.name"}

    data: str = opt("", "dataset whose test split supplies the start/goal pairs")
    policy: str = opt("random", "random | oracle | straight (straight at the goal, blind to walls: PointMaze, "
                                "TwoRoomSwitch) | replay | RUN_DIR (a trained checkpoint) | RUN_A+RUN_B (an ensemble "
                                "of runs: the mean of their latent costs); several, comma-separated, are evaluated "
                                "on the same pairs (CLI); RUN[KEY=VALUE ...] gives one its own agent options, "
                                "e.g. 'run,run[memory=mem.db]'")
    env: str = opt("", "environment id (default: the dataset's; must match it)")
    agent: AgentConfig = opt(AgentConfig(), "the agent of a RUN_DIR policy", shorthand="agent")
    episodes: int = opt(50, "number of start/goal pairs")
    goal_offset: int = opt(25, "goal = recorded frame this many steps after the start")
    budget: int = opt(50, "environment steps allowed per episode")
    seed: int = opt(0, "seed of the start/goal draw (and of the random policy)")
    far: bool = opt(False, "far-goal variant: goals drawn uniformly from the reachable space")
    far_budget: int = opt(200, "steps allowed in the far-goal variant")
    far_min_steps: int = opt(0, "far goals only at least this many env steps away along the shortest way: the env's "
                                "oracle (which reads the true state) is simulated from the start to measure it, "
                                "and nearer goals are drawn again; 0 = any goal")
    far_budget_factor: float = opt(0.0, "with --far-min-steps: each pair's budget is this times the oracle's steps "
                                        "(e.g. 3); 0 = --far-budget for every pair")
    split: Literal["test", "val"] = opt("test", "held-out split the pairs come from")
    success_threshold: float = opt(0.0, "for envs without success(): success when ||obs - goal_obs|| < this")
    success_dims: str = opt("", "with --success-threshold: comma-separated indices of the obs vector the "
                                "distance uses, e.g. 8,9 (default: all)")
    env_module: str = opt("", "module to import first so that it registers third-party env ids")
    json: str = opt("", "write the results (summary + per-episode records) to this JSON file")
    gif: str = opt("", "write a GIF of the first episodes (observation | goal) to this file")
    gif_episodes: int = opt(3, "episodes shown in the GIF")
    threads: int = opt(0, "torch CPU threads for a RUN_DIR policy (0 = torch's default)")
    progress: bool = opt(True, "show a progress bar (--no-progress: none)")

    def __post_init__(self) -> None:
        _section_from_str(self, "agent", AgentConfig)
        if not self.data:
            raise ConfigError("--data is required: the dataset whose held-out episodes give the start/goal pairs")
        _at_least(self, 1, "episodes", "budget", "goal_offset", "far_budget")
        _at_least(self, 0, "far_min_steps", "far_budget_factor")
        if (self.far_min_steps or self.far_budget_factor) and not self.far:
            raise ConfigError("--far-min-steps and --far-budget-factor apply to far goals: add --far")
        _at_least(self, 0, "success_threshold", "gif_episodes", "threads")


@dataclass(frozen=True)
class PlanConfig:
    """One planned episode from a held-out (test split) episode's state toward a later frame of it."""

    __aliases__: ClassVar[dict[str, str]] = {"planner": "agent.planner.name"}

    run: str = opt("", "run directory or checkpoint file (from `worldjepa train`)")
    data: str = opt("", "dataset file; start and goal come from its test split")
    episode: int = opt(0, "which test-split episode (0 = the first)")
    start: int = opt(0, "start at this step of the episode")
    goal_offset: int = opt(25, "the goal is the episode's frame goal_offset steps after the start")
    budget: int = opt(50, "env steps allowed")
    agent: AgentConfig = opt(AgentConfig(), "the agent", shorthand="agent")
    gif: str = opt("", "write observation | imagined | goal frames to this GIF")
    nn_frames: int = opt(2000, "dataset frames encoded once to show the imagined embedding's nearest frame")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")

    def __post_init__(self) -> None:
        _section_from_str(self, "agent", AgentConfig)
        _at_least(self, 0, "episode", "start", "threads")
        _at_least(self, 1, "goal_offset", "budget", "nn_frames")


@dataclass(frozen=True)
class MemoryBuildConfig:
    """A long-term memory from a run and a dataset (``worldjepa memory build``)."""

    run: str = opt("", "the world model whose embeddings are remembered (a `worldjepa train` run)")
    data: str = opt("", "the reward-free recordings to remember (a dataset of the run's env)")
    out: str = opt("memory.db", "the memory file (SQLite) to write")
    split: Literal["train", "val", "test"] = opt("train", "which episodes of the dataset")
    stride: int = opt(1, "remember every N-th frame of each episode")
    radius: float = opt(0.0, "landmark radius in latent distance (0 = calibrated: the median distance of frames "
                             "--radius-steps env steps apart)")
    radius_steps: int = opt(3, "env steps whose typical latent distance sets the landmark radius")
    edge_steps: int = opt(10, "landmarks an episode joined within this many env steps are linked")
    capacity: int = opt(0, "keep at most this many entries (the most surprising and novel); 0 = all")
    merge_radius: float = opt(0.0, "entries closer than this to a kept one are merged into it (0 = off)")
    overwrite: bool = opt(False, "replace an existing memory file")
    seed: int = opt(0, "seed of the landmark order")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    progress: bool = opt(True, "show a progress bar (--no-progress: none)")

    def __post_init__(self) -> None:
        _at_least(self, 1, "stride", "radius_steps", "edge_steps")
        _at_least(self, 0, "radius", "capacity", "merge_radius", "threads")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be in [0, 2^32), got {self.seed}")


# --------------------------------------------------------------------------------- presets
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "collect": {"small": {"episodes": 20, "steps": 50}},
    "train": {"small": {
        "steps": 50, "batch_size": 16, "num_frames": 3, "val_every": 25, "save_every": 25, "val_windows": 32,
        "val_horizon": 2, "warmup_steps": 5, "log_every": 5,
        "model": {"encoder": {"channels": [8, 16, 16, 32], "dim": 64}, "latent_dim": 16, "projector_hidden": 64,
                  "predictor_hidden": 64, "sigreg_slices": 64, "frameskip": 2}}},
    "pretrain": {"small": {"steps": 200, "batch_size": 32, "encoder": {"dim": 128}, "projector_hidden": 256,
                           "sigreg_slices": 256, "eval_frames": 1000}},
}
"""Named option sets per command (``worldjepa train --small``): a tiny model and budget for tests
and demos (seconds on a CPU). Flags still win over a preset."""

# default dataset sizes (episodes of 100 steps), following the anchors' datasets
DEFAULT_EPISODES: dict[str, int] = {"worldjepa/TwoRoom": 2000, "worldjepa/PointMaze": 2000,
                                    "worldjepa/Reacher": 3000, "worldjepa/PushT": 2000}

__all__ = ["AgentConfig", "CollectConfig", "DEFAULT_EPISODES", "EncoderConfig", "EvalConfig", "MemoryBuildConfig",
           "ModelConfig",
           "PLANNER_OPTIONS", "PRESETS", "PlanConfig", "PlannerConfig", "PretrainConfig", "TRANSFORMER_SIZES",
           "TrainConfig", "parse_proprio", "split_agent_options"]
