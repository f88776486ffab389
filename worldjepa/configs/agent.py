"""The agent's options: the planner and the policy around it (``--agent "k=v ..."``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..config import Device, Precision, at_least, in_range, opt, parse_agent_options, seeds
from ..errors import ConfigError


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
        seeds(self, "seed")
        for name in ("samples", "iterations", "elites", "gd_iterations", "gd_restarts"):
            in_range(self, name, 1, MAX_SAMPLES)
        if self.elites is not None and self.samples is not None and self.elites > self.samples:
            raise ConfigError(f"elites ({self.elites}) must be <= samples ({self.samples})")
        for name, lo, hi, lo_open, hi_open in _PLANNER_RANGES:
            in_range(self, name, lo, hi, lo_open, hi_open)


MAX_SAMPLES = 10**6  # candidates, iterations, restarts: more would not fit in memory anyway
_INF = float("inf")
# (option, low, high, low open, high open): the ranges the planners accept (worldjepa/planning)
_PLANNER_RANGES = [("init_std", 0, _INF, True, False), ("momentum", 0, 1, False, True), ("min_std", 0, _INF, False, False),
                   ("beta", 0, _INF, False, False), ("keep_elites", 0, 1, False, False), ("shrink", 1, _INF, False, False),
                   ("temperature", 0, _INF, True, False), ("noise_std", 0, _INF, True, False),
                   ("noise_decay", 0, 1, True, False), ("lr", 0, _INF, True, False), ("gd_std", 0, _INF, False, False)]

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
    disagreement: float = opt(0.0, "an ensemble's cost (--policy A+B): the members' mean plus this times their "
                                   "standard deviation, to avoid what the models disagree on; 0 = the mean")
    warm_start: bool = opt(True, "start each plan from the previous one, shifted")
    device: Device = opt("auto", "where the model plans: auto (cuda when torch sees one, else cpu) | cpu | cuda")
    precision: Precision = opt("float32", "float32, or bf16: the planner's imagined rollouts under torch's bfloat16 "
                                          "autocast (the costs compared in float32)")
    memory: str = opt("", "a long-term memory file (`worldjepa memory build`): far goals are reached through a "
                          "route of remembered places, the MPC planning each short leg; '' = flat MPC")
    route_lookahead: float = opt(10.0, "with --memory: a subgoal lies at most this many env steps ahead along the "
                                       "route")
    route_stall: int = opt(6, "with --memory: model steps without progress before the leg's edge is penalised "
                              "and the route searched again")
    route_learn: bool = opt(True, "with --memory: the map grows while the agent acts (places it sees that no "
                                  "landmark covers become landmarks, moves it makes become edges; kept for the "
                                  "agent's life, the file is not changed)")

    @classmethod
    def from_str(cls, text: str) -> dict[str, Any]:
        """The ``--agent "horizon=8 samples=500"`` shorthand: planner options go to ``planner``."""
        return split_agent_options(parse_agent_options(text))

    def __post_init__(self) -> None:
        at_least(self, 1, "horizon", "replan_every")
        in_range(self, "horizon", 1, 1000)
        at_least(self, 0, "final_weight", "proprio_weight", "keypoint_weight", "disagreement")
        at_least(self, 1, "route_stall")
        in_range(self, "act_steps", 1)
        in_range(self, "route_lookahead", 0, lo_open=True)
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

