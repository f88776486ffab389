"""Reference goal-conditioned policies: the floor, the ceiling, and a check of the protocol.

- ``random``: uniform random actions (the floor any learned model must beat);
- ``oracle``: the env's ``oracle_action(state, goal_state)``, which reads the true state
  (an upper-bound sanity check, not a learned policy);
- ``straight``: the env's ``straight_oracle_action(state, goal_state)``, a controller
  heading straight for the goal, blind to walls (PointMaze, TwoRoomSwitch): what a planner
  that does not find its way around obstacles gets;
- ``replay``: the recorded actions that led from the start to the goal in the dataset, then
  zero actions; on a deterministic env it must succeed ~100%: a check that starts and goals
  are restored correctly.
All follow :class:`worldjepa.protocols.Policy`; the protocol passes the true state and the
goal state as keyword information, which learned policies ignore.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.policies import random_action
from ..errors import WorldJepaError


class RandomGoalPolicy:
    def __init__(self, action_spec: Any, seed: int = 0) -> None:
        self.spec, self.seed = action_spec, seed
        self.rng = np.random.default_rng(seed)

    def reseed(self, episode: int) -> None:
        """Draw the actions of evaluation episode ``episode`` from a generator of its own."""
        self.rng = np.random.default_rng([self.seed, episode])

    def reset(self, goal_obs: np.ndarray, **info: Any) -> None:
        pass

    def act(self, obs: np.ndarray, **info: Any) -> np.ndarray:
        return random_action(self.spec, self.rng)


class OraclePolicy:
    def __init__(self, env: Any) -> None:
        self.env = env
        if not hasattr(env.unwrapped, "oracle_action"):
            raise WorldJepaError(f"{env.env_id} has no oracle_action(state, goal_state); the oracle policy needs one")
        self.goal_state: np.ndarray | None = None

    def reset(self, goal_obs: np.ndarray, goal_state: np.ndarray | None = None, **info: Any) -> None:
        if goal_state is None:
            raise WorldJepaError("the oracle policy needs the goal state (the dataset has no 'state' extras)")
        self.goal_state = goal_state

    def act(self, obs: np.ndarray, state: np.ndarray | None = None, **info: Any) -> np.ndarray:
        a = self.env.unwrapped.oracle_action(state, self.goal_state)
        return self.env.action_spec.encode(a)


class StraightLinePolicy(OraclePolicy):
    def __init__(self, env: Any) -> None:  # OraclePolicy's goal handling, not its oracle_action check
        if not hasattr(env.unwrapped, "straight_oracle_action"):
            raise WorldJepaError(f"{env.env_id} has no straight_oracle_action(state, goal_state); the straight "
                                 "policy needs one (PointMaze and TwoRoomSwitch have it)")
        self.env = env
        self.goal_state: np.ndarray | None = None

    def act(self, obs: np.ndarray, state: np.ndarray | None = None, **info: Any) -> np.ndarray:
        a = self.env.unwrapped.straight_oracle_action(state, self.goal_state)
        return self.env.action_spec.encode(a)


class ReplayPolicy:
    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim
        self.actions: np.ndarray = np.zeros((0, action_dim), np.float32)
        self.i = 0

    def reset(self, goal_obs: np.ndarray, recorded_actions: np.ndarray | None = None, **info: Any) -> None:
        self.actions = np.asarray(recorded_actions, np.float32)
        self.i = 0

    def act(self, obs: np.ndarray, **info: Any) -> np.ndarray:
        self.i += 1
        if self.i <= len(self.actions):
            return self.actions[self.i - 1]
        return np.zeros(self.action_dim, np.float32)
