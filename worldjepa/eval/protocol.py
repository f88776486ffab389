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

import math
import time
from typing import Any, Callable

import numpy as np

from ..config import to_dict
from ..configs import EvalConfig
from ..errors import ConfigError, WorldJepaError

__all__ = ["EvalConfig", "REFERENCE_POLICIES", "draw_pairs", "make_policy", "restore_start", "run_episode",
           "run_protocol"]

REFERENCE_POLICIES = ("random", "oracle", "straight", "replay")


def draw_pairs(ds: Any, cfg: EvalConfig, rng: np.random.Generator | None = None,
               n: int | None = None) -> list[tuple[int, int]]:
    """(episode, start step) pairs from the held-out split, fixed by ``cfg.seed`` (or drawn from ``rng``)."""
    eps = [int(e) for e in ds.episode_ids(cfg.split) if ds.lengths[e] > cfg.goal_offset]
    if not eps:
        raise WorldJepaError(f"{ds.path}: no {cfg.split}-split episode is longer than goal_offset={cfg.goal_offset} "
                             f"({len(ds.episode_ids(cfg.split))} {cfg.split} episodes); collect more or longer episodes")
    rng = np.random.default_rng([cfg.seed, 2024]) if rng is None else rng
    pairs = []
    for _ in range(cfg.episodes if n is None else n):
        e = eps[int(rng.integers(len(eps)))]
        pairs.append((e, int(rng.integers(0, ds.lengths[e] - cfg.goal_offset))))
    return pairs


def make_policy(cfg: EvalConfig, env: Any) -> Any:
    from pathlib import Path

    from .policies import OraclePolicy, RandomGoalPolicy, ReplayPolicy, StraightLinePolicy

    if cfg.policy == "random":
        return RandomGoalPolicy(env.action_spec, cfg.seed)
    if cfg.policy == "oracle":
        return OraclePolicy(env)
    if cfg.policy == "straight":
        return StraightLinePolicy(env)
    if cfg.policy == "replay":
        if cfg.far:
            raise ConfigError("the replay policy has no recorded actions toward far goals")
        return ReplayPolicy(env.action_spec.dim)
    runs = cfg.policy.split("+") if not Path(cfg.policy).exists() else [cfg.policy]
    for run in runs:
        if not Path(run).exists():
            raise ConfigError(f"policy {run!r} is neither one of {', '.join(REFERENCE_POLICIES)} nor a run directory")
    from ..agent import Agent

    return Agent.load(runs if len(runs) > 1 else runs[0], env_id=env.env_id, config=cfg.agent)


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


def _far_goal(u: Any, start: np.ndarray, goal: np.ndarray, rng: np.random.Generator, min_steps: int,
              tries: int = 200) -> tuple[np.ndarray, int] | None:
    """A goal state the env's oracle needs at least ``min_steps`` steps to reach from ``start``
    (redrawn from ``sample_state`` until one is), and that count; ``None`` after ``tries`` draws.
    The oracle runs on the env's pure physics (``u.advance``): nothing is rendered or reset."""
    for _ in range(tries):
        state = np.asarray(start, np.float64)
        for n in range(1, 10 * min_steps + 1):
            state = u.advance(state, u.oracle_action(state, goal))
            if u.success(state, goal):
                break
        else:
            n = 0  # not reached: never a goal
        if n >= min_steps:
            return goal, n
        goal = u.sample_state(rng)
    return None


def restore_start(env: Any, ep: dict[str, np.ndarray], t: int, restore: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """The env put at step ``t`` of recorded episode ``ep``: by restoring its recorded state
    (``restore``, built-in envs), else by resetting with its seed and replaying its actions."""
    if restore:
        return env.reset(seed=int(ep["seed"]), state=ep["state"][t])
    frame, extras = env.reset(seed=int(ep["seed"]))
    for a in ep["actions"][:t]:
        frame, extras, _ = env.step(a)
    return frame, extras


def run_episode(env: Any, policy: Any, frame: np.ndarray, extras: dict[str, Any], budget: int,
                judge: Callable[[Any, Any], tuple[bool, float]] | None = None, goal_state: Any = None,
                on_step: Callable[[int, np.ndarray, Any, np.ndarray, dict[str, Any]], None] | None = None,
                ) -> dict[str, Any]:
    """The one episode loop: ``policy`` acts from ``frame`` until ``judge(state, goal_state)``
    says success, the env ends the episode, or ``budget`` steps pass. ``on_step(step, before,
    action, after, extras)`` is called after each env step. Returns ``success`` (``None``
    without a judge), ``steps`` and ``final_distance``."""
    key = getattr(judge, "key", lambda: "state")()
    success, dist = judge(extras[key], goal_state) if judge is not None else (False, None)
    steps = 0
    while not success and steps < budget:
        action = policy.act(frame, state=extras.get("state"), extras=extras)
        before = frame
        spec = env.action_spec
        frame, extras, done = env.step(spec.encode(action) if spec.kind == "discrete" and np.ndim(action) == 0
                                       else action)  # a discrete env's action as an int, or one-hot
        steps += 1
        if judge is not None:
            success, dist = judge(extras[key], goal_state)
        if on_step is not None:
            on_step(steps, before, action, frame, extras)
        if done:
            break
    return {"success": bool(success) if judge is not None else None, "steps": steps, "final_distance": dist}


def run_protocol(cfg: EvalConfig, policy: Any = None, progress: bool | None = None) -> dict[str, Any]:
    """Evaluate ``policy`` (or the one named by ``cfg.policy``); returns summary + records.
    ``progress`` (default: ``cfg.progress``) shows a progress bar."""
    from tqdm import tqdm

    from ..data.dataset import Dataset
    from ..envs.adapter import make_env
    from ..metrics import summarize
    from .media import save_gif, side_by_side

    progress = cfg.progress if progress is None else progress
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    ds = Dataset(cfg.data)
    ds.check()  # starts and goals come from it: NaN states or changed bytes are refused here
    env_id = ds.env_id
    if cfg.env and cfg.env != env_id:
        raise ConfigError(f"--env {cfg.env} does not match the dataset's env {env_id}")
    env = make_env(env_id, ds.frame_size, cfg.env_module or None, **ds.env_kwargs)
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
    if cfg.far_min_steps and not (restore and hasattr(env.unwrapped, "oracle_action")
                                  and hasattr(env.unwrapped, "advance")):
        raise ConfigError(f"--far-min-steps measures the way with the env's oracle on its own physics; "
                          f"{env_id} has no oracle_action, advance or restorable state")
    records, gif_frames, t0 = [], [], time.time()
    for i, (e, t) in enumerate(tqdm(pairs, desc=f"eval {cfg.policy}", unit="ep", disable=not progress)):
        ep = ds.episode(e)
        k = cfg.goal_offset
        frame, extras = restore_start(env, ep, t, restore)
        extra: dict[str, Any] = {}
        if cfg.far:
            goal_state = env.unwrapped.sample_state(rng)
            if cfg.far_min_steps:  # far along the way, not only in a straight line: the oracle measures it
                found = _far_goal(env.unwrapped, ep["state"][t], goal_state, rng, cfg.far_min_steps)
                for _ in range(100):  # a start with no goal that far (a dead end of a small maze): another start
                    if found is not None:
                        break
                    e = draw_pairs(ds, cfg, rng=rng, n=1)[0][0]
                    ep = ds.episode(e)
                    t = int(rng.integers(0, len(ep["frames"])))
                    frame, extras = restore_start(env, ep, t, restore)
                    found = _far_goal(env.unwrapped, ep["state"][t], env.unwrapped.sample_state(rng), rng,
                                      cfg.far_min_steps)
                if found is None:
                    raise WorldJepaError(f"{env_id}: no goal {cfg.far_min_steps}+ oracle steps away from 100 starts; "
                                         "lower --far-min-steps")
                goal_state, oracle_steps = found
                budget = math.ceil(cfg.far_budget_factor * oracle_steps) if cfg.far_budget_factor else cfg.far_budget
                extra.update(oracle_steps=oracle_steps, budget=budget)
            goal_frame = env.unwrapped.render_state(goal_state) if hasattr(env.unwrapped, "render_state") else None
            if goal_frame is None:
                raise WorldJepaError(f"{env_id} cannot render an arbitrary goal state (no render_state)")
            goal_extras = {"state": goal_state}
        else:
            goal_state, goal_frame = ep[judge.key()][t + k], ep["frames"][t + k]
            goal_extras = {name: ep[name][t + k] for name in ds.extras if name in ep}
        policy.reset(goal_frame, goal_state=goal_state if has_state else None, goal_extras=goal_extras,
                     recorded_actions=ep["actions"][t:t + k])

        def film(step: int, before: np.ndarray, action: Any, after: np.ndarray, extras: dict[str, Any],
                 goal_frame: np.ndarray = goal_frame) -> None:
            gif_frames.append(side_by_side([after, goal_frame], ["obs", "goal"]))

        filming = cfg.gif and i < cfg.gif_episodes
        record = run_episode(env, policy, frame, extras, budget, judge, goal_state, film if filming else None)
        extra.update(policy.episode_info() if hasattr(policy, "episode_info") else {})  # e.g. what the memory did
        if judge.key() == "state":  # where it started and what it aimed at, for breakdowns (same room, other room)
            extra.update(start_state=np.asarray(ep["state"][t]).tolist(), goal_state=np.asarray(goal_state).tolist())
        records.append({"episode": e, "start": t, **record, **extra})  # (e, t): a far goal may have moved the start
    env.close()
    ds.close()
    summary = summarize(records)
    summary["seconds"] = time.time() - t0
    result = {"summary": summary, "config": to_dict(cfg), "env_id": env_id, "records": records,
              "protocol": {"goal_offset": cfg.goal_offset, "budget": cfg.far_budget if cfg.far else cfg.budget,
                           "split": cfg.split, "far": cfg.far, "far_min_steps": cfg.far_min_steps,
                           "far_budget_factor": cfg.far_budget_factor,
                           "restore": "state" if restore else "replay of recorded actions"}}
    if cfg.gif and gif_frames:
        save_gif(cfg.gif, gif_frames)
    return result
