"""What an evaluation's episodes are, fixed by the seed before any is played: start/goal pairs
from the held-out split (:func:`draw_pairs`), far goals (drawn from the env or from the
recordings), each as an :class:`Episode`; and :func:`restore_start`, which puts an env at a
pair's start. The rules: docs/protocol.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..configs import EvalConfig
from ..errors import ConfigError, WorldJepaError
from .judge import Judge, drop_solved_pairs

__all__ = ["Episode", "draw_episodes", "draw_pairs", "restore_start"]


@dataclass
class Episode:
    """One evaluation episode, fixed before any is run (by the seed, whatever runs it): test
    episode ``episode`` from step ``start``, toward the recorded frame ``goal_offset`` steps later,
    or toward a far goal (``goal_frame`` and ``goal_state`` drawn, ``goal_extras`` its extras);
    ``budget`` steps; ``extra`` goes into its record."""

    index: int
    episode: int
    start: int
    budget: int
    goal_frame: np.ndarray | None = None
    goal_state: Any = None
    goal_extras: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


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


def _recorded_far_goal(ds: Any, cfg: EvalConfig, rng: np.random.Generator, judge: Judge, start: np.ndarray,
                       episode: int, tries: int = 1000) -> tuple[np.ndarray, np.ndarray, dict[str, Any], dict[str, Any]]:
    """A far goal from the recordings, for envs that cannot draw an arbitrary state: the frame at a
    uniformly drawn step of another episode of the held-out split, redrawn until its judged distance
    from ``start`` is at least ``cfg.far_min_distance``. Returns the goal frame, its judged value
    (``obs`` or ``state``), every extra at that frame, and where it came from."""
    eps = [int(e) for e in ds.episode_ids(cfg.split) if e != episode] or [episode]
    for _ in range(tries):
        e = eps[int(rng.integers(len(eps)))]
        step = int(rng.integers(ds.lengths[e]))
        row = [int(ds.starts[e]) + step]
        goal = ds.read_extra(judge.key(), row)[0]
        met, dist = judge(start, goal)
        if not met and dist >= cfg.far_min_distance:  # never a goal the start already meets
            goal_extras = {name: ds.read_extra(name, row)[0] for name in ds.extras}
            return ds.read_frames(row)[0], goal, goal_extras, {"goal_episode": e, "goal_step": step}
    raise WorldJepaError(f"{ds.path}: no recorded frame of the {cfg.split} split lies {cfg.far_min_distance} or more "
                         f"from the start in {tries} draws; lower --far-min-distance")


def restore_start(env: Any, ep: dict[str, np.ndarray], t: int, restore: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """The env put at step ``t`` of recorded episode ``ep``: by restoring its recorded state
    (``restore``, built-in envs), else by resetting with its seed and replaying its actions."""
    if restore:
        return env.reset(seed=int(ep["seed"]), state=ep["state"][t])
    frame, extras = env.reset(seed=int(ep["seed"]))
    for a in ep["actions"][:t]:
        frame, extras, _ = env.step(a)
    return frame, extras


def draw_episodes(setting: Any, cfg: EvalConfig) -> tuple[list[Episode], int]:
    """Every episode of the evaluation, in order, and how many draws already solved at step 0
    were replaced. Far goals are drawn from the env's reachable space where it can sample and
    draw a state (built-in envs), else from the recordings (third-party envs)."""
    ds, env, judge, restore = setting.ds, setting.env, setting.judge, setting.restore
    pairs, redrawn = draw_pairs(ds, cfg), 0
    if not cfg.far:  # far goals are drawn below, and redrawn there when the start meets them
        pairs, redrawn = drop_solved_pairs(ds, cfg, judge, pairs, lambda g: draw_pairs(ds, cfg, rng=g, n=1)[0])
        return [Episode(i, e, t, cfg.budget) for i, (e, t) in enumerate(pairs)], redrawn
    rng = np.random.default_rng([cfg.seed, 7])
    if cfg.far_min_steps and not (restore and hasattr(env.unwrapped, "oracle_action")
                                  and hasattr(env.unwrapped, "advance")):
        raise ConfigError(f"--far-min-steps measures the way with the env's oracle on its own physics; "
                          f"{ds.env_id} has no oracle_action, advance or restorable state")
    out = []
    for i, (e, t) in enumerate(pairs):
        ep = ds.episode(e)
        budget, extra = cfg.far_budget, {}
        if not setting.sampled:  # goals from the recordings: the frame at any step of another held-out episode
            _, extras = restore_start(env, ep, t, restore)
            goal_frame, goal_state, goal_extras, where = _recorded_far_goal(ds, cfg, rng, judge, extras[judge.key()], e)
            out.append(Episode(i, e, t, budget, goal_frame, goal_state, goal_extras, where))
            continue
        goal_state = env.unwrapped.sample_state(rng)
        for _ in range(1000):  # --far-min-distance: at least that far in a straight line
            if judge(ep["state"][t], goal_state)[1] >= cfg.far_min_distance:
                break
            goal_state = env.unwrapped.sample_state(rng)
        else:
            raise WorldJepaError(f"{ds.env_id}: no goal {cfg.far_min_distance} or more from the start in 1000 draws; "
                                 "lower --far-min-distance")
        if cfg.far_min_steps:  # far along the way, not only in a straight line: the oracle measures it
            found = _far_goal(env.unwrapped, ep["state"][t], goal_state, rng, cfg.far_min_steps)
            for _ in range(100):  # a start with no goal that far (a dead end of a small maze): another start
                if found is not None:
                    break
                e = draw_pairs(ds, cfg, rng=rng, n=1)[0][0]
                ep = ds.episode(e)
                t = int(rng.integers(0, len(ep["frames"])))
                found = _far_goal(env.unwrapped, ep["state"][t], env.unwrapped.sample_state(rng), rng,
                                  cfg.far_min_steps)
            if found is None:
                raise WorldJepaError(f"{ds.env_id}: no goal {cfg.far_min_steps}+ oracle steps away from 100 starts; "
                                     "lower --far-min-steps")
            goal_state, oracle_steps = found
            budget = math.ceil(cfg.far_budget_factor * oracle_steps) if cfg.far_budget_factor else cfg.far_budget
            extra.update(oracle_steps=oracle_steps, budget=budget)
        for _ in range(100):  # a goal the start already meets says nothing of a policy: another goal
            if not judge(ep["state"][t], goal_state)[0]:
                break
            goal_state, redrawn = env.unwrapped.sample_state(rng), redrawn + 1
        out.append(Episode(i, e, t, budget, env.unwrapped.render_state(goal_state), goal_state, {"state": goal_state},
                           extra))
    return out, redrawn
