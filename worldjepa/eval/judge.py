"""Who judges success: the env's own ``success(state, goal_state)``, or a distance threshold on
(chosen entries of) the observation for third-party envs; and which start/goal pairs the
protocol keeps (none already solved at step 0)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..configs import EvalConfig
from ..errors import ConfigError, WorldJepaError


class Judge:
    """Success and distance between the current and the goal state, for any env."""

    def __init__(self, env: Any, cfg: EvalConfig, has_state: bool,
                 shapes: dict[str, tuple[int, ...]] | None = None) -> None:
        """``shapes``: the recorded extras and the shape of one frame's entry (``Dataset.shapes``);
        by default the env's observation space says the size of ``obs``."""
        u = env.unwrapped
        self.builtin = has_state and hasattr(u, "success") and hasattr(u, "distance")
        self.u, self.threshold = u, cfg.success_threshold
        self._key = "state" if self.builtin else (cfg.success_key or "obs")
        if not self.builtin and self.threshold <= 0:
            raise ConfigError(f"{env.env_id} has no success(state, goal_state); pass --success-threshold T to count "
                              f"success as ||{self._key} - goal {self._key}|| < T")
        if self.builtin and cfg.success_key:
            raise ConfigError(f"{env.env_id} judges success itself; --success-key applies to third-party envs only")
        try:
            self.dims = [int(i) for i in cfg.success_dims.split(",") if i.strip()] or None
        except ValueError:
            raise ConfigError(f"--success-dims must be comma-separated integers, got {cfg.success_dims!r}") from None
        if self.dims is not None and self.builtin:
            raise ConfigError(f"{env.env_id} judges success itself; --success-dims applies to third-party envs only")
        if shapes is None:
            shapes = {"obs": tuple(env.env.observation_space.shape or (0,))}
        if not self.builtin and self._key not in shapes:
            vectors = [k for k in shapes if k.startswith("obs")]
            raise ConfigError(f"{env.env_id}: no '{self._key}' recorded to judge success on; "
                              + (f"pass --success-key with one of {', '.join(vectors)}" if vectors else
                                 "its observations hold no numeric values"))
        n_obs = int(np.prod(shapes.get(self._key, (0,))))
        if self.dims is not None and not all(-n_obs <= i < n_obs for i in self.dims):
            raise ConfigError(f"--success-dims {cfg.success_dims} out of range for {env.env_id}'s "
                              f"{self._key} of {n_obs} values")

    def key(self) -> str:
        """The recorded extra success is judged on: ``state`` (built-in envs), else ``--success-key`` or ``obs``."""
        return self._key

    def __call__(self, cur: np.ndarray, goal: np.ndarray) -> tuple[bool, float]:
        if self.builtin:
            return bool(self.u.success(cur, goal)), float(self.u.distance(cur, goal))
        diff = np.asarray(cur, np.float64).ravel() - np.asarray(goal, np.float64).ravel()
        d = float(np.linalg.norm(diff if self.dims is None else diff[self.dims]))
        return d < self.threshold, d


def drop_solved_pairs(ds: Any, cfg: EvalConfig, judge: Judge, pairs: list[tuple[int, int]],
                      draw: Callable[[np.random.Generator], tuple[int, int]]) -> tuple[list[tuple[int, int]], int]:
    """``pairs`` (episode, start step) with each pair whose start already meets its goal (solved at
    step 0: it says nothing of a policy) replaced by ``draw(rng)`` until one is not; and how many
    draws were replaced. Judged on the recorded values, so every policy meets the same pairs."""
    rng = np.random.default_rng([cfg.seed, 3])
    key, k = judge.key(), cfg.goal_offset

    def solved(e: int, t: int) -> bool:
        row = int(ds.starts[e]) + t
        start, goal = ds.read_extra(key, [row, row + k])
        return judge(start, goal)[0]

    out, redrawn = [], 0
    for e, t in pairs:
        while solved(e, t):
            redrawn += 1
            if redrawn > 10 * len(pairs) + 100:
                raise WorldJepaError(f"{ds.path}: nearly every start already meets its goal {k} steps later "
                                     f"({redrawn} redrawn); the goal offset is too short for this env or data")
            e, t = draw(rng)
        out.append((e, t))
    return out, redrawn
