"""Each command's options (collect, eval, plan, memory build, physics, probe; train and pretrain in
:mod:`.training`) and the presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..config import Device, at_least, in_range, opt, parse_agent_options, section_from_str, seeds
from ..errors import ConfigError
from .agent import AgentConfig

TENSORBOARD_HELP = "also write the metrics for TensorBoard (pip install 'worldjepa[tensorboard]')"
DEVICE_HELP = "where the model runs: auto (cuda when torch sees one, else cpu) | cpu | cuda"
PRECISION_HELP = ("float32, or bf16: the forward passes under torch's bfloat16 autocast (weights, optimiser "
                  "and the loss's reductions stay float32)")
KEEP_HELP = ("checkpoints kept: 1 = model.safetensors only (the latest); K > 1 also keeps the weights of the last K "
             "saves as RUN/checkpoints/step_N.safetensors")
PROGRESS_HELP = ("show progress: a bar on a terminal, else a plain line on stderr every $WORLDJEPA_PROGRESS_SECONDS "
                 "seconds (30); --no-progress or --quiet: none")


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
    env_kwargs: str = opt("", "keyword arguments of the env, 'k=v ...' (e.g. 'layout_seed=7' for "
                              "worldjepa/PointMaze-Procedural-v0); recorded in the dataset, used by eval and plan")
    append: bool = opt(False, "append episodes to an existing file instead of refusing to overwrite it")
    compression: Literal["lzf", "gzip", "none"] = opt("lzf", "frame compression in the HDF5 file")
    progress: bool = opt(True, PROGRESS_HELP)

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.steps < 1:
            raise ConfigError(f"episodes ({self.episodes}) must be >= 0 and steps ({self.steps}) >= 1")
        if not 8 <= self.size <= 512:
            raise ConfigError(f"size {self.size} must be between 8 and 512 pixels")
        in_range(self, "workers", 1, 256)
        seeds(self, "seed")
        self.kwargs()  # a clear error now

    def kwargs(self) -> dict[str, Any]:
        """``env_kwargs`` as a dict (``"layout_seed=7"`` -> ``{"layout_seed": 7}``)."""
        return parse_agent_options(self.env_kwargs, "--env-kwargs")


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
    far: bool = opt(False, "far-goal variant: goals drawn uniformly from the reachable space (envs that cannot "
                                "draw a state: from frames of other held-out episodes)")
    far_budget: int = opt(200, "steps allowed in the far-goal variant")
    far_min_steps: int = opt(0, "far goals only at least this many env steps away along the shortest way: the env's "
                                "oracle (which reads the true state) is simulated from the start to measure it, "
                                "and nearer goals are drawn again; 0 = any goal")
    far_budget_factor: float = opt(0.0, "with --far-min-steps: each pair's budget is this times the oracle's steps "
                                        "(e.g. 3); 0 = --far-budget for every pair")
    far_min_distance: float = opt(0.0, "far goals only at least this far from the start in the success distance "
                                       "(the env's, or ||obs - goal_obs|| over --success-dims); envs that cannot "
                                       "draw a state (third-party) take far goals from frames of other held-out "
                                       "episodes; 0 = any goal")
    split: Literal["test", "val"] = opt("test", "held-out split the pairs come from")
    success_threshold: float = opt(0.0, "for envs without success(): success when ||obs - goal_obs|| < this")
    success_dims: str = opt("", "with --success-threshold: comma-separated indices of the obs vector the "
                                "distance uses, e.g. 8,9 (default: all)")
    success_key: str = opt("", "with --success-threshold: the recorded extra the distance is measured on (default: "
                               "obs; a Dict observation's entry, e.g. obs/achieved_goal)")
    env_module: str = opt("", "module to import first so that it registers third-party env ids")
    json: str = opt("", "write the results (summary + per-episode records) to this JSON file")
    gif: str = opt("", "write a GIF of the first episodes (observation | goal, titled with the policy, its "
                       "checkpoint's step, the env step and the outcome) to this file; FILE.mp4 writes an MP4 "
                       "(pip install 'worldjepa[video]')")
    gif_episodes: int = opt(3, "episodes shown in the GIF")
    plot: str = opt("", "write a PNG of each policy's success rate with its 95% CI to this file (CLI)")
    tensorboard: bool = opt(False, TENSORBOARD_HELP + ": the summary of each RUN_DIR policy (eval/success_rate, "
                                   "eval/ci95_low, ...) to RUN_DIR/tb at its checkpoint's step (CLI)")
    threads: int = opt(0, "torch CPU threads for a RUN_DIR policy (0 = torch's default; in each worker: 1)")
    workers: int = opt(1, "run the episodes in this many processes, each with its own env and policy; the records "
                          "are the same whatever the number (with the same --threads)")
    resume: bool = opt(False, "continue an interrupted evaluation from the per-episode records in JSON.partial.jsonl "
                              "(written beside --json as episodes finish; needs the same options)")
    progress: bool = opt(True, PROGRESS_HELP)

    def __post_init__(self) -> None:
        section_from_str(self, "agent", AgentConfig)
        at_least(self, 1, "workers")
        if not self.data:
            raise ConfigError("--data is required: the dataset whose held-out episodes give the start/goal pairs")
        at_least(self, 1, "episodes", "budget", "goal_offset", "far_budget")
        at_least(self, 0, "far_min_steps", "far_budget_factor", "far_min_distance")
        if (self.far_min_steps or self.far_budget_factor or self.far_min_distance) and not self.far:
            raise ConfigError("--far-min-steps, --far-budget-factor and --far-min-distance apply to far goals: add --far")
        at_least(self, 0, "success_threshold", "gif_episodes", "threads")
        seeds(self, "seed")


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
    gif: str = opt("", "write observation | imagined | goal frames to this GIF (titled with the run, its step, the env "
                       "step and the outcome); FILE.mp4 writes an MP4 (pip install 'worldjepa[video]')")
    nn_frames: int = opt(2000, "dataset frames encoded once to show the imagined embedding's nearest frame")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")

    def __post_init__(self) -> None:
        section_from_str(self, "agent", AgentConfig)
        at_least(self, 0, "episode", "start", "threads")
        at_least(self, 1, "goal_offset", "budget", "nn_frames")


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
    shortcuts: int = opt(0, "also link each landmark to up to this many near landmarks (within 3 radii) that the "
                            "world model reaches in a short plan (3 macro-steps), where no recording joined them; "
                            "0 = the recordings' edges only")
    subgoals: int = opt(0, "also train a subgoal model for this many steps (batches of 512) on the remembered "
                           "episodes: where the map joins no start to its goal, it gives the next subgoal, "
                           "--agent route_lookahead env steps ahead on a remembered way (docs/memory.md); 0 = none")
    capacity: int = opt(0, "keep at most this many entries (the most surprising and novel); 0 = all")
    merge_radius: float = opt(0.0, "entries closer than this to a kept one are merged into it (0 = off)")
    overwrite: bool = opt(False, "replace an existing memory file")
    seed: int = opt(0, "seed of the landmark order")
    device: Device = opt("auto", DEVICE_HELP)
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")
    progress: bool = opt(True, PROGRESS_HELP)

    def __post_init__(self) -> None:
        at_least(self, 1, "stride", "radius_steps", "edge_steps")
        at_least(self, 0, "radius", "capacity", "merge_radius", "threads", "shortcuts", "subgoals")
        seeds(self, "seed")



@dataclass(frozen=True)
class PhysicsConfig:
    """The violation-of-expectation benchmark of a run (``worldjepa physics``)."""

    run: str = opt("", "the world model to test (a `worldjepa train` run); pairs come from its env")
    pairs: int = opt(50, "matched pairs per violation type")
    out: str = opt("", "directory for physics.json and surprise.png ('' = RUN/physics)")
    kinds: str = opt("", "violation types to test, comma-separated ('' = every one the env can show)")
    untrained: int = opt(20, "control: the same architecture untrained, one per seed (mean and spread); 0 = none")
    pixel_run: str = opt("", "control: a pixel-space predictor (`worldjepa train --pixel-space` on the same recordings), "
                             "its surprise the MSE in pixels of each frame against its prediction; '' = none")
    metric: Literal["mse", "l1"] = opt("mse", "surprise distance: mse (the training loss's) | l1")
    normalize: bool = opt(False, "layer-normalise embeddings before the distance (the intuitive-physics study: l1 on "
                                 "layer-normed features)")
    seed: int = opt(0, "seed of the pairs (the same seed draws the same pairs)")
    plots: int = opt(1, "pairs per violation type drawn in surprise.png")
    env_kwargs: str = opt("", "keyword arguments of the env, 'k=v ...' (e.g. 'layout_seed=7'), as the run's data had")
    device: Device = opt("auto", DEVICE_HELP)
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")

    def __post_init__(self) -> None:
        at_least(self, 1, "pairs")
        at_least(self, 0, "untrained", "plots", "threads", "seed")
        self.kind_list()
        parse_agent_options(self.env_kwargs, "--env-kwargs")

    def kind_list(self) -> list[str] | None:
        """``kinds`` as a list, ``None`` for all."""
        return [k.strip() for k in self.kinds.split(",") if k.strip()] or None


@dataclass(frozen=True)
class ProbeConfig:
    """Probes of physical quantities from frozen embeddings (``worldjepa probe``)."""

    run: str = opt("", "the run(s) whose embeddings are probed, comma-separated: `worldjepa pretrain` runs (the "
                       "encoder's output) and `worldjepa train` runs (the world model's latent, image part)")
    data: str = opt("", "a dataset with states (the probes fit its train split and are scored on its test split)")
    out: str = opt("", "directory for probe.json and probe.png ('' = the first run's directory/probe)")
    max_frames: int = opt(4000, "at most this many frames per split (a seeded subset, in episode order)")
    random_init: bool = opt(True, "also probe the first run's architecture with random weights (the floor)")
    mlp_steps: int = opt(500, "full-batch training steps of each MLP probe (early-stopped on held-out train frames)")
    seed: int = opt(0, "seed of the frame subsets, the random-init encoder and the MLP probes")
    device: Device = opt("auto", DEVICE_HELP + " (the encoders; the probes fit on the cpu)")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")

    def __post_init__(self) -> None:
        at_least(self, 10, "max_frames")
        at_least(self, 1, "mlp_steps")
        at_least(self, 0, "seed", "threads")

    def runs(self) -> list[str]:
        """``run`` as a list."""
        return [r.strip() for r in self.run.split(",") if r.strip()]


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
