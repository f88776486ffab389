"""The held-out evaluation protocol: fixed, model-independent, reported with a 95% CI.

Start/goal pairs are drawn with a fixed seed from the **test split** of a dataset (episodes
no model trained on): pick a test episode uniformly, then a step ``t`` uniformly such that
``t + k`` is in the episode; the start is the recorded state at ``t``, the goal the recorded
frame (and state) at ``t + k`` (``k`` = ``goal_offset``, default 25). The policy gets
``budget`` steps (default 50); an episode succeeds at the first step where the env's
``success(state, goal_state)`` holds. In the "far goal" variant the goal state is drawn
from the env's reachable space (``sample_state``) and rendered, with a larger budget.

Starts are restored with ``reset(options={"state": ...})`` when the env supports it (all
built-in envs); otherwise (third-party envs) by resetting with the episode's recorded seed
and replaying its recorded actions up to ``t``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..config import opt, to_dict
from ..errors import ConfigError, WorldJepaError

REFERENCE_POLICIES = ("random", "oracle", "replay")


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and under which protocol settings."""

    data: str = opt("", "dataset whose test split supplies the start/goal pairs")
    policy: str = opt("random", "random | oracle | replay | RUN_DIR (a trained checkpoint) | RUN_A+RUN_B (an ensemble "
                                "of runs: the mean of their latent costs); several, comma-separated, are evaluated "
                                "on the same pairs (CLI)")
    env: str = opt("", "environment id (default: the dataset's; must match it)")
    planner: str = opt("cem", "planner for a RUN_DIR policy: cem | icem | mppi | gd | cem_gd")
    agent: str = opt("", "Agent options for a RUN_DIR policy, space- or comma-separated key=value, e.g. "
                         "'horizon=8 samples=500 reduce=final' (see worldjepa.Agent)")
    episodes: int = opt(50, "number of start/goal pairs")
    goal_offset: int = opt(25, "goal = recorded frame this many steps after the start")
    budget: int = opt(50, "environment steps allowed per episode")
    seed: int = opt(0, "seed of the start/goal draw (and of the random policy)")
    far: bool = opt(False, "far-goal variant: goals drawn uniformly from the reachable space")
    far_budget: int = opt(200, "steps allowed in the far-goal variant")
    split: Literal["test", "val"] = opt("test", "held-out split the pairs come from")
    success_threshold: float = opt(0.0, "for envs without success(): success when ||obs - goal_obs|| < this")
    success_dims: str = opt("", "with --success-threshold: comma-separated indices of the obs vector the "
                                "distance uses, e.g. 8,9 (default: all)")
    env_module: str = opt("", "module to import first so that it registers third-party env ids")
    json: str = opt("", "write the results (summary + per-episode records) to this JSON file")
    gif: str = opt("", "write a GIF of the first episodes (observation | goal) to this file")
    gif_episodes: int = opt(3, "episodes shown in the GIF")
    threads: int = opt(0, "torch CPU threads for a RUN_DIR policy (0 = torch's default)")

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("--data is required: the dataset whose held-out episodes give the start/goal pairs")
        if self.episodes < 1 or self.budget < 1 or self.goal_offset < 1:
            raise ConfigError("episodes, budget and goal_offset must be >= 1")


def draw_pairs(ds: Any, cfg: EvalConfig) -> list[tuple[int, int]]:
    """(episode, start step) pairs from the held-out split, fixed by ``cfg.seed``."""
    eps = [int(e) for e in ds.episode_ids(cfg.split) if ds.lengths[e] > cfg.goal_offset]
    if not eps:
        raise WorldJepaError(f"{ds.path}: no {cfg.split}-split episode is longer than goal_offset={cfg.goal_offset} "
                             f"({len(ds.episode_ids(cfg.split))} {cfg.split} episodes); collect more or longer episodes")
    rng = np.random.default_rng([cfg.seed, 2024])
    pairs = []
    for _ in range(cfg.episodes):
        e = eps[int(rng.integers(len(eps)))]
        pairs.append((e, int(rng.integers(0, ds.lengths[e] - cfg.goal_offset))))
    return pairs


def make_policy(cfg: EvalConfig, env: Any) -> Any:
    from pathlib import Path

    from .policies import OraclePolicy, RandomGoalPolicy, ReplayPolicy

    if cfg.policy == "random":
        return RandomGoalPolicy(env.action_spec, cfg.seed)
    if cfg.policy == "oracle":
        return OraclePolicy(env)
    if cfg.policy == "replay":
        if cfg.far:
            raise ConfigError("the replay policy has no recorded actions toward far goals")
        return ReplayPolicy(env.action_spec.dim)
    runs = cfg.policy.split("+") if not Path(cfg.policy).exists() else [cfg.policy]
    for run in runs:
        if not Path(run).exists():
            raise ConfigError(f"policy {run!r} is neither one of {', '.join(REFERENCE_POLICIES)} nor a run directory")
    from ..agent import Agent

    return Agent.load(runs if len(runs) > 1 else runs[0], planner=cfg.planner, env_id=env.env_id,
                      **agent_options(cfg.agent))


def agent_options(text: str) -> dict[str, Any]:
    """``"horizon=8 samples=500,reduce=final"`` -> ``{"horizon": 8, "samples": 500, "reduce": "final"}``
    (values read as JSON when they parse, else kept as strings)."""
    import json

    out: dict[str, Any] = {}
    for item in text.replace(",", " ").split():
        key, eq, val = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--agent takes key=value items, got {item!r}")
        try:
            out[key] = json.loads(val)
        except ValueError:
            out[key] = val
    return out


class _Judge:
    """Success and distance between the current and the goal state, for any env."""

    def __init__(self, env: Any, cfg: EvalConfig, has_state: bool) -> None:
        u = env.unwrapped
        self.builtin = has_state and hasattr(u, "success") and hasattr(u, "distance")
        self.u, self.threshold = u, cfg.success_threshold
        if not self.builtin and self.threshold <= 0:
            raise ConfigError(f"{env.env_id} has no success(state, goal_state); pass --success-threshold T to count "
                              "success as ||obs - goal_obs|| < T")
        try:
            self.dims = [int(i) for i in cfg.success_dims.split(",") if i.strip()] or None
        except ValueError:
            raise ConfigError(f"--success-dims must be comma-separated integers, got {cfg.success_dims!r}") from None
        if self.dims is not None and self.builtin:
            raise ConfigError(f"{env.env_id} judges success itself; --success-dims applies to third-party envs only")
        n_obs = int(np.prod(env.env.observation_space.shape or (0,)))
        if self.dims is not None and not all(-n_obs <= i < n_obs for i in self.dims):
            raise ConfigError(f"--success-dims {cfg.success_dims} out of range for {env.env_id}'s "
                              f"observation of {n_obs} values")

    def key(self) -> str:
        return "state" if self.builtin else "obs"

    def __call__(self, cur: np.ndarray, goal: np.ndarray) -> tuple[bool, float]:
        if self.builtin:
            return bool(self.u.success(cur, goal)), float(self.u.distance(cur, goal))
        diff = np.asarray(cur, np.float64).ravel() - np.asarray(goal, np.float64).ravel()
        d = float(np.linalg.norm(diff if self.dims is None else diff[self.dims]))
        return d < self.threshold, d


def run_protocol(cfg: EvalConfig, policy: Any = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``policy`` (or the one named by ``cfg.policy``); returns summary + records."""
    from tqdm import tqdm

    from ..data.dataset import Dataset
    from ..envs.adapter import make_env
    from .media import save_gif, side_by_side
    from .metrics import summarize

    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    ds = Dataset(cfg.data)
    env_id = ds.env_id
    if cfg.env and cfg.env != env_id:
        raise ConfigError(f"--env {cfg.env} does not match the dataset's env {env_id}")
    env = make_env(env_id, ds.frame_size, cfg.env_module or None)
    has_state = "state" in ds.extras
    restore = has_state and env.builtin
    judge = _Judge(env, cfg, has_state)
    if judge.key() not in ds.extras:
        raise WorldJepaError(f"{cfg.data} has no '{judge.key()}' extras to judge success with")
    if policy is None:
        policy = make_policy(cfg, env)
    pairs = draw_pairs(ds, cfg)
    rng = np.random.default_rng([cfg.seed, 7])
    budget = cfg.far_budget if cfg.far else cfg.budget
    records, gif_frames, t0 = [], [], time.time()
    for i, (e, t) in enumerate(tqdm(pairs, desc=f"eval {cfg.policy}", unit="ep", disable=not progress)):
        ep = ds.episode(e)
        k = cfg.goal_offset
        if restore:
            frame, extras = env.reset(seed=int(ep["seed"]), state=ep["state"][t])
        else:
            frame, extras = env.reset(seed=int(ep["seed"]))
            for a in ep["actions"][:t]:
                frame, extras, _ = env.step(a)
        if cfg.far:
            goal_state = env.unwrapped.sample_state(rng)
            goal_frame = env.unwrapped.render_state(goal_state) if hasattr(env.unwrapped, "render_state") else None
            if goal_frame is None:
                raise WorldJepaError(f"{env_id} cannot render an arbitrary goal state (no render_state)")
            goal_extras = {"state": goal_state}
        else:
            goal_state, goal_frame = ep[judge.key()][t + k], ep["frames"][t + k]
            goal_extras = {name: ep[name][t + k] for name in ds.extras if name in ep}
        policy.reset(goal_frame, goal_state=goal_state if has_state else None, goal_extras=goal_extras,
                     recorded_actions=ep["actions"][t:t + k])
        success, dist = judge(extras[judge.key()], goal_state)
        steps = 0
        while not success and steps < budget:
            action = policy.act(frame, state=extras.get("state"), extras=extras)
            frame, extras, done = env.step(action)
            steps += 1
            success, dist = judge(extras[judge.key()], goal_state)
            if i < cfg.gif_episodes and cfg.gif:
                gif_frames.append(side_by_side([frame, goal_frame], ["obs", "goal"]))
            if done:
                break
        records.append({"episode": e, "start": t, "success": bool(success), "steps": steps, "final_distance": dist})
    env.close()
    ds.close()
    summary = summarize(records)
    summary["seconds"] = time.time() - t0
    result = {"summary": summary, "config": to_dict(cfg), "env_id": env_id, "records": records,
              "protocol": {"goal_offset": cfg.goal_offset, "budget": budget, "split": cfg.split, "far": cfg.far,
                           "restore": "state" if restore else "replay of recorded actions"}}
    if cfg.gif and gif_frames:
        save_gif(cfg.gif, gif_frames)
    return result
