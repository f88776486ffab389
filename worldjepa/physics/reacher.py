"""The violations of ``worldjepa/Reacher-v0``: the two-link arm breaks a rule, its twin does not.

The arm moves under the recordings' smooth exploration torques; from the event on:

* ``teleport``: the arm jumps to another pose (the fingertip at least 0.1 m away, half
  the reach), its joint speeds kept, then moves on under the same torques;
* ``permanence``: the arm vanishes (the frame shows the base alone);
* ``continuity``: both joint speeds flip sign, far more than the largest torque can change
  them in a step; then the same physics;
* ``colour``: the fingertip turns from red to yellow.

The arm touches nothing (no walls, no self-collision), so there is no solidity violation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .balls import YELLOW
from .scenes import ActedScene, Clips, Retry, roll

JUMP = 0.1  # m: the least fingertip jump of a teleport (the reach is 0.21 m)
MIN_FLIP = 1.0  # rad/s: the least joint speed whose flip makes a continuity pair


class ReacherScene(ActedScene):
    """The Reacher env as a source of violation-of-expectation pairs (see the module docstring)."""

    kinds: tuple[str, ...] = ("teleport", "permanence", "continuity", "colour")

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        from ..envs import reacher

        self.r = reacher

    def teleport(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions = self.base(rng, T)
        tip = self.r.fingertip(p[event])
        for _ in range(100):
            s = np.concatenate([rng.uniform(-np.pi, np.pi, 2), p[event, 2:]])
            if np.hypot(*(self.r.fingertip(s) - tip)) >= JUMP:
                return Clips(p, np.concatenate([p[:event], roll(self.env, s, actions[event:])]), actions)
        raise Retry

    def permanence(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        return self.redrawn(rng, event, T, lambda t, s, f: self.env.draw(s, arm=False))

    def colour(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        return self.redrawn(rng, event, T, lambda t, s, f: self.env.draw(s, tip=YELLOW))

    def continuity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions = self.base(rng, T)
        before = p[event - 1]
        if np.abs(before[2:]).max() < MIN_FLIP:
            raise Retry  # too slow for the flip to show
        flipped = np.concatenate([before[:2], -before[2:]])
        return Clips(p, np.concatenate([p[:event], roll(self.env, flipped, actions[event - 1:])[1:]]), actions)


__all__ = ["ReacherScene"]
