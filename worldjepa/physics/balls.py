"""The violations of ``worldjepa/Balls-v0``: one ball breaks a rule, the others go on.

Nothing is controlled (every action is 0), so each pair is a random scene of three falling,
bouncing balls, and one of them (drawn per pair) does the impossible from the event on:

* ``teleport``: it jumps at least 3 units to a free place, its velocity kept;
* ``permanence``: it vanishes from the frames (it is still there for the others to hit);
* ``continuity``: its horizontal velocity flips in mid-air, nothing within reach of it;
* ``colour``: it turns yellow;
* ``gravity``: its gravity reverses (it falls upwards), nothing within reach of it;
* ``collision``: it passes through the ball it was about to hit, both going on as if alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .scenes import CALM, Clips, Retry, recolour, roll

YELLOW = (0.9, 0.75, 0.1)  # a colour no ball has


class BallsScene:
    """The balls env as a source of violation-of-expectation pairs (see the module docstring)."""

    kinds: tuple[str, ...] = ("teleport", "permanence", "continuity", "colour", "gravity", "collision")

    def __init__(self, env: Any) -> None:
        from ..envs import balls

        self.env, self.b = env, balls

    # -- shared pieces -----------------------------------------------------------------
    def base(self, rng: np.random.Generator, T: int) -> tuple[np.ndarray, np.ndarray, int]:
        """A possible clip ``(T, 12)``, its actions ``(T - 1, 1)`` (zeros) and the ball that will misbehave."""
        actions = np.zeros((T - 1, 1), np.float32)
        return roll(self.env, self.env.sample_state(rng), actions), actions, int(rng.integers(self.b.BALLS))

    def sim(self, start: np.ndarray, steps: int, **options: Any) -> np.ndarray:
        """States ``(steps, 12)`` after ``start`` under :meth:`BallsEnv.simulate` with ``options``."""
        out = [np.asarray(start, np.float64)]
        for _ in range(steps):
            out.append(self.env.simulate(out[-1], **options))
        return np.stack(out[1:])

    def hide(self, state: np.ndarray, i: int) -> np.ndarray:
        """``state`` with ball ``i`` off the canvas (not drawn)."""
        s = np.array(state, np.float64)
        s[4 * i:4 * i + 2] = -1e3
        return s

    def clear(self, states: np.ndarray, i: int) -> bool:
        """Whether ball ``i`` stays a radius away from the walls and from the other balls (nothing touches it)."""
        b, r = self.b, self.b.RADIUS
        pos = states.reshape(len(states), b.BALLS, 4)[:, :, :2]  # (T, BALLS, 2)
        mine = pos[:, i]
        if ((mine < 2 * r) | (mine > b.BOX - 2 * r)).any():
            return False
        others = np.delete(pos, i, axis=1)  # (T, BALLS - 1, 2)
        return bool((np.hypot(*(others - mine[:, None]).transpose(2, 0, 1)) > 3 * r).all())

    # -- the violations ------------------------------------------------------------------
    def teleport(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions, i = self.base(rng, T)
        b, s = self.b, p[event].copy()
        others = np.delete(s.reshape(b.BALLS, 4)[:, :2], i, axis=0)
        for _ in range(100):
            q = rng.uniform(1.5 * b.RADIUS, b.BOX - 1.5 * b.RADIUS, 2)
            if np.hypot(*(q - s[4 * i:4 * i + 2])) >= 3.0 and (np.hypot(*(others - q).T) > 2.5 * b.RADIUS).all():
                s[4 * i:4 * i + 2] = q
                return Clips(p, np.concatenate([p[:event], roll(self.env, s, actions[event:])]), actions)
        raise Retry

    def permanence(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions, i = self.base(rng, T)
        return Clips(p, p.copy(), actions, edit=lambda t, s, f: self.env.render_state(self.hide(s, i)), edit_from=event)

    def colour(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions, i = self.base(rng, T)

        def edit(t: int, s: np.ndarray, f: np.ndarray) -> np.ndarray:
            return recolour(f, self.env.render_state(self.hide(s, i)), self.b.COLOURS[i], YELLOW)

        return Clips(p, p.copy(), actions, edit=edit, edit_from=event)

    def continuity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions, i = self.base(rng, T)
        flipped = p[event - 1].copy()
        flipped[4 * i + 2] *= -1  # vx
        if abs(flipped[4 * i + 2]) < 2.0:
            raise Retry  # too slow for the change to show
        tail = roll(self.env, flipped, actions[event - 1:])[1:]
        if not (self.clear(p[event - 1:event + CALM], i) and self.clear(tail[:CALM], i)):
            raise Retry  # something within reach of the ball around the change
        return Clips(p, np.concatenate([p[:event], tail]), actions)

    def gravity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions, i = self.base(rng, T)
        scale = np.ones(self.b.BALLS)
        scale[i] = -1.0
        tail = self.sim(p[event - 1], T - event, gravity=scale)
        if not (self.clear(p[event - 1:event + CALM], i) and self.clear(tail[:CALM], i)):
            raise Retry  # something within reach of the ball when its gravity turns
        return Clips(p, np.concatenate([p[:event], tail]), actions)

    def collision(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        """Two balls that collide between ``event - 4`` and ``event`` pass through each other instead."""
        p, actions, _ = self.base(rng, T)
        pairs = [(i, j) for i in range(self.b.BALLS) for j in range(i + 1, self.b.BALLS)]
        for t in range(max(event - 4, 1), event + 1):
            for pair in pairs:
                if not np.allclose(self.env.simulate(p[t - 1], ghosts=pair), p[t]):
                    ghost = self.sim(p[t - 1], T - t, ghosts=pair)
                    a, b = (ghost.reshape(len(ghost), self.b.BALLS, 4)[:, k, :2] for k in pair)
                    if np.hypot(*(a - b).T).min() > 1.5 * self.b.RADIUS:
                        raise Retry  # they only grazed: not clearly through each other
                    return Clips(p, np.concatenate([p[:t], ghost]), actions)
        raise Retry


__all__ = ["BallsScene", "YELLOW"]
