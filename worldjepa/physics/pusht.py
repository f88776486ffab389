"""The violations of ``worldjepa/PushT-v1`` (and ``-v0``): the T block breaks a rule, its twin does not.

The pusher follows the recordings' policy for Push-T, the noisy scripted expert
(:class:`~worldjepa.envs.pusht.PushTExpert`: a random walk seldom reaches the block), so the
clips show what a Push-T model was trained on; both twins replay the same actions. From the
event on:

* ``teleport``: the block jumps to another pose (its centre >= 60 units away, more than
  twice the pusher's largest step, 28 units, about the farthest a push moves it), with
  the pusher clear of it at both poses; then the same physics;
* ``solidity``: the pusher passes through the block: from the first contact the pusher
  is a sensor in the physics (it overlaps the block without pushing it), still drawn;
* ``permanence``: the block vanishes (the frame shows the table and the pusher);
* ``continuity``: the block, untouched, changes its motion by itself: for ``DRIFT`` steps it
  slides 6 to 12 units a step in a straight line (its displacement per step changed by at
  least 6 units), the pusher clear of it, then the physics goes on from there. In v1 the
  block moves only while pushed (no velocity survives a physics sub-step), in v0 an
  untouched block only slows down (it keeps 74% of its speed per step, no friction with
  the table): either way nothing changes its motion without contact;
* ``colour``: the block turns from grey-blue to yellow.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from .balls import YELLOW
from .scenes import CALM, ActedScene, Clips, Retry, roll

JUMP = 60.0  # units: the least block-centre jump of a teleport
DRIFT = CALM  # steps the block slides by itself (continuity)
DRIFT_SPEED = (6.0, 12.0)  # units per step of that slide
EDGE = 85.0  # units: the least distance of a sliding block's centre from the table's edge (the T reaches 81)
MARGIN = 2.0  # units: the least gap between pusher and block that counts as no contact


class PushTScene(ActedScene):
    """The Push-T env as a source of violation-of-expectation pairs (see the module docstring)."""

    kinds: tuple[str, ...] = ("teleport", "solidity", "permanence", "continuity", "colour")

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        from ..envs import pusht

        self.p = pusht
        self.porous = copy.copy(env)
        self.porous.pusher_solid = False

    def base(self, rng: np.random.Generator, T: int) -> tuple[np.ndarray, np.ndarray]:
        """A possible clip under the noisy scripted expert: states ``(T, 8)`` from a random start,
        and its actions ``(T - 1, 2)``."""
        expert = self.p.PushTExpert(self.env, rng)
        states, actions = [self.env.sample_state(rng)], []
        for _ in range(T - 1):
            actions.append(expert.act(states[-1], {"state": states[-1]}))
            states.append(self.env.advance(states[-1], actions[-1]))
        return np.stack(states), np.stack(actions).astype(np.float32)

    def untouched(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the pusher, moving straight from ``a[:2]`` to ``b[:2]`` in a step, stays more
        than ``MARGIN`` from the block at its pose in ``a`` and in ``b``."""
        n = 2 + int(math.hypot(*(b[:2] - a[:2])) // 2.0)
        points = a[:2] + np.linspace(0.0, 1.0, n)[:, None] * (b[:2] - a[:2])  # every <= 2 units
        return min(self.p.block_sdf(s, q) for s in (a, b) for q in points) > self.p.PUSHER_R + MARGIN

    def calm(self, states: np.ndarray) -> bool:
        """Whether no step of ``states`` ``(n, 8)`` brings the pusher near the block."""
        return all(self.untouched(a, b) for a, b in zip(states[:-1], states[1:]))

    # -- the violations ------------------------------------------------------------------
    def teleport(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions = self.base(rng, T)
        for _ in range(100):
            s = p[event].copy()
            s[2:5] = self.env.sample_state(rng)[2:5]
            if math.hypot(*(s[2:4] - p[event, 2:4])) >= JUMP and self.untouched(p[event - 1], s):
                break
        else:
            raise Retry
        if not self.untouched(p[event - 1], p[event]):
            raise Retry  # the possible block is pushed at the event: a jump would hide among the push
        return Clips(p, np.concatenate([p[:event], roll(self.env, s, actions[event:])]), actions)

    def solidity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        """A push that starts between ``event - 4`` and ``event``; from that contact on, its twin's
        pusher goes through the block."""
        p, actions = self.base(rng, T)
        contact = next((t for t in range(max(event - 4, 1), event + 1) if not np.allclose(
            p[t], self.porous.advance(p[t - 1], actions[t - 1]))), None)
        if contact is None:
            raise Retry
        i = np.concatenate([p[:contact], roll(self.porous, p[contact - 1], actions[contact - 1:])[1:]])
        if min(self.p.block_sdf(s, s[:2]) for s in i[contact:]) > 0.0:
            raise Retry  # the pusher only grazed the block: its centre never got inside
        return Clips(p, i, actions)

    def permanence(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        return self.redrawn(rng, event, T, lambda t, s, f: self.env.draw(s, block=False))

    def colour(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        return self.redrawn(rng, event, T, lambda t, s, f: self.env.draw(s, colour=YELLOW))

    def continuity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions = self.base(rng, T)
        angle = rng.uniform(-np.pi, np.pi)
        step = rng.uniform(*DRIFT_SPEED) * np.array([math.cos(angle), math.sin(angle)])  # (2,) units per step
        if math.hypot(*(step - (p[event - 1, 2:4] - p[event - 2, 2:4]))) < DRIFT_SPEED[0]:
            raise Retry  # v0: close to how the block slid already
        i = [p[event - 1]]
        for t in range(event - 1, event - 1 + DRIFT):
            s = self.env.advance(i[-1], actions[t])  # the pusher moves; the block, untouched, would not
            s[2:4] = i[-1][2:4] + step
            s[5:7] = step / self.p.DT  # the block's velocity in the state is the slide's
            i.append(s)
        i = np.stack(i)  # (DRIFT + 1, 8): steps event - 1 .. event - 1 + DRIFT
        if not (self.calm(i) and self.calm(p[event - 1:event + DRIFT])):
            raise Retry  # the pusher comes near the block around the slide, in one of the clips
        if not (EDGE < i[-1, 2:4]).all() or not (i[-1, 2:4] < self.p.TABLE - EDGE).all():
            raise Retry  # the slide would take the block into the table's edge
        tail = roll(self.env, i[-1], actions[event - 1 + DRIFT:])[1:]
        return Clips(p, np.concatenate([p[:event - 1], i, tail]), actions)


__all__ = ["DRIFT", "JUMP", "PushTScene"]
