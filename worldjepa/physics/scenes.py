"""The violations each built-in env can show, made from its own physics and renderer.

A scene wraps one env (at the model's frame size) and has a method per violation it can
show, ``kind(rng, event, T) -> Clips``: two state sequences of ``T`` steps (and an edit of
the impossible clip's frames) meant to part at env step ``event``; :func:`~worldjepa.physics.voe.make_pair`
renders them and finds where they really part. Actions come from the recordings' ``smooth``
exploration policy (:class:`~worldjepa.data.policies.SmoothPolicy`), so the clips look like
what the model was trained on until something impossible happens.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from ..data.policies import SmoothPolicy
from ..envs.adapter import ActionSpec


@dataclass
class Clips:
    """What a scene makes for one pair, before rendering: the two state sequences ``(T, N)``,
    the actions ``(T - 1, A)`` and an optional edit of the impossible clip's frames
    ``edit(t, state, frame) -> frame``, applied from step ``edit_from`` on."""

    possible: np.ndarray
    impossible: np.ndarray
    actions: np.ndarray
    edit: Callable[[int, np.ndarray, np.ndarray], np.ndarray] | None = None
    edit_from: int = 0


class Retry(Exception):
    """A drawn clip does not show its violation cleanly (e.g. a wall touched): draw again."""


def roll(env: Any, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """States ``(len(actions) + 1, N)`` of ``env``'s physics from ``start`` under ``actions``."""
    out = [np.asarray(start, np.float64)]
    for a in actions:
        out.append(env.advance(out[-1], a))
    return np.stack(out)


AGENT_COLOUR = (0.85, 0.1, 0.1)  # the agent's red in TwoRoom and PointMaze
OTHER_COLOUR = (0.1, 0.35, 0.9)  # the colour it turns to (constancy)
CALM = 5  # env steps after a velocity change in which nothing may touch the agent, in either clip
HIDDEN = -1e3  # a position far off the canvas: nothing of the agent is drawn


def recolour(frame: np.ndarray, background: np.ndarray, old: tuple[float, ...], new: tuple[float, ...]) -> np.ndarray:
    """``frame`` with the object of colour ``old`` drawn over ``background`` repainted ``new``:
    the renderer blends ``bg + alpha (old - bg)``, so alpha is recovered per pixel and reused."""
    f, bg = frame.astype(np.float32) / 255, background.astype(np.float32) / 255  # (S, S, 3)
    d = np.asarray(old, np.float32) - bg
    alpha = np.clip(((f - bg) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-6), 0.0, 1.0)  # (S, S)
    out = bg + alpha[..., None] * (np.asarray(new, np.float32) - bg)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class ActedScene:
    """A scene of an env moved by actions: possible clips from random starts under the
    recordings' smooth exploration policy."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.spec = ActionSpec.from_space(env.action_space)

    def actions(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, A)`` actions of the recordings' smooth exploration policy."""
        policy = SmoothPolicy(SimpleNamespace(action_spec=self.spec), rng)
        return np.stack([policy.act(None, {}) for _ in range(n)])

    def start(self, rng: np.random.Generator) -> np.ndarray:
        """Where a possible clip starts: a random state of the env."""
        return self.env.sample_state(rng)

    def base(self, rng: np.random.Generator, T: int) -> tuple[np.ndarray, np.ndarray]:
        """A possible clip: states ``(T, N)`` from a random start, and its actions ``(T - 1, A)``."""
        actions = self.actions(rng, T - 1)
        return roll(self.env, self.start(rng), actions), actions

    def redrawn(self, rng: np.random.Generator, event: int, T: int,
                edit: Callable[[int, np.ndarray, np.ndarray], np.ndarray]) -> Clips:
        """A possible clip and its twin with the same physics, whose frames from ``event`` on are
        ``edit(t, state, frame)`` (an object vanished or recoloured)."""
        p, actions = self.base(rng, T)
        return Clips(p, p.copy(), actions, edit=edit, edit_from=event)


class PointScene(ActedScene):
    """An agent drawn as a disk at ``state[:2]``, moved through walls by its actions.

    Subclasses say how the walls are removed from the physics (``without_walls``), how far a
    jump goes (``jump``), how a velocity changes (``swerve``) and how a wall is approached
    (``solidity``, their own).
    """

    kinds: tuple[str, ...] = ("teleport", "solidity", "permanence", "continuity", "colour")

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.open = self.without_walls(interior_only=False)  # no walls at all: contact shows as a difference
        self.porous = self.without_walls()  # the interior walls drawn but not solid

    # -- what a subclass provides ------------------------------------------------------
    def without_walls(self, interior_only: bool = True) -> Any:
        """A copy of the env whose physics has no interior walls (or none at all)."""
        raise NotImplementedError

    def jump(self, rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
        """``state`` with the agent moved to a far free point (``Retry`` if none)."""
        raise NotImplementedError

    # -- shared pieces -----------------------------------------------------------------
    def hide(self, state: np.ndarray) -> np.ndarray:
        """``state`` with the agent off the canvas (what its frame looks like without it)."""
        s = np.array(state, np.float64)
        s[:2] = HIDDEN
        return s

    def empty_frame(self, state: np.ndarray) -> np.ndarray:
        """The frame of ``state`` without the agent."""
        return self.env.render_state(self.hide(state))

    colours = (AGENT_COLOUR, OTHER_COLOUR)  # the agent's colour, and the one it turns to (constancy)

    def free(self, states: np.ndarray, actions: np.ndarray) -> bool:
        """Whether the physics moved ``states[0]`` under ``actions`` as it would with no wall at all
        (nothing touched the agent)."""
        return bool(np.allclose(states, roll(self.open, states[0], actions), atol=1e-9))

    def swerve(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """States after ``state`` when its motion changes for no reason, with nothing touching it
        for ``CALM`` steps (else ``Retry``): the agent moves against its actions (TwoRoom: it has
        no inertia, its velocity is its action)."""
        tail = roll(self.env, state, -actions)
        if not self.free(tail[:CALM + 1], -actions[:CALM]):
            raise Retry
        return tail[1:]

    # -- the violations ------------------------------------------------------------------
    def teleport(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions = self.base(rng, T)
        i = np.concatenate([p[:event], roll(self.env, self.jump(rng, p[event]), actions[event:])])
        return Clips(p, i, actions)

    def permanence(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        return self.redrawn(rng, event, T, lambda t, s, f: self.empty_frame(s))

    def colour(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        def edit(t: int, s: np.ndarray, f: np.ndarray) -> np.ndarray:
            return recolour(f, self.empty_frame(s), *self.colours)

        return self.redrawn(rng, event, T, edit)

    def continuity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        p, actions = self.base(rng, T)
        tail = self.swerve(p[event - 1], actions[event - 1:])  # (T - event, N)
        i = np.concatenate([p[:event], tail])
        if not self.free(p[event - 1:event + CALM], actions[event - 1:event - 1 + CALM]):
            raise Retry  # something touched the possible twin around the change
        if np.hypot(*(i[event, :2] - p[event, :2])) < self.min_change:
            raise Retry  # too slow for the change to show
        return Clips(p, i, actions)

    min_change = 1.0  # the least distance (state units) between the twins one step after the change

    def walk_through(self, rng: np.random.Generator, start: np.ndarray, side: int, speed: float, T: int,
                     wall_x: float, door_y: float, clearance: float, door_clearance: float) -> Clips:
        """From ``start``, ``T`` steps at ``speed`` toward the vertical wall at ``wall_x`` (``side``
        -1: from its left), with a little sideways noise; the impossible twin passes through it
        from the first contact. ``Retry`` unless that twin ends on the far side (beyond
        ``clearance`` from the wall's centre line) without ever coming within ``door_clearance``
        of the door at ``door_y``: through the wall, not the door."""
        actions = np.stack([-side * speed + 0.1 * rng.standard_normal(T - 1), 0.25 * rng.standard_normal(T - 1)], 1)
        actions = actions.astype(np.float32)
        p = roll(self.env, start, actions)
        contact = next((t for t in range(1, T) if not np.allclose(
            self.env.advance(p[t - 1], actions[t - 1]), self.porous.advance(p[t - 1], actions[t - 1]))), None)
        if contact is None:
            raise Retry
        i = self.pass_through(p, actions, contact)
        near_door = (np.abs(i[:, 1] - door_y) < door_clearance).any()
        crossed = -side * (i[-1, 0] - wall_x) > clearance
        if near_door or not crossed:
            raise Retry
        return Clips(p, i, actions)

    def pass_through(self, p: np.ndarray, actions: np.ndarray, contact: int) -> np.ndarray:
        """The impossible twin of ``p``: the same until step ``contact``, then moved by physics whose
        interior walls are not solid."""
        return np.concatenate([p[:contact], roll(self.porous, p[contact - 1], actions[contact - 1:])[1:]])


class TwoRoomScene(PointScene):
    """``worldjepa/TwoRoom*``: the agent, the wall between the rooms and its door (state ``(x, y[, door_y])``)."""

    def without_walls(self, interior_only: bool = True) -> Any:
        from ..envs import tworoom as tr

        env = copy.copy(self.env)
        env.solid_boxes = (lambda door: tr.TwoRoomEnv.solid_boxes(door)[2:]) if interior_only else \
            (lambda door: np.zeros((0, 4)))
        return env

    def jump(self, rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
        """A free point of the same room at least 16 units away (more than a model step moves)."""
        from ..envs.tworoom import WALL_X

        for _ in range(100):
            s = self.env.sample_state(rng)
            s[2:] = state[2:]
            if (s[0] < WALL_X) == (state[0] < WALL_X) and np.hypot(*(s[:2] - state[:2])) >= 16.0:
                return s
        raise Retry

    def solidity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        """The agent walks into the wall away from the door, reaching it near ``event``."""
        from ..envs.tworoom import AGENT_R, ARENA, DOOR_HALF, WALL_HALF, WALL_X

        start = self.env.sample_state(rng)
        door = self.env.door_y(start)
        side = -1 if rng.random() < 0.5 else 1  # -1: from the left room, walking right
        face = WALL_X + side * (WALL_HALF + AGENT_R)
        speed = rng.uniform(1.0, 1.6)
        start[0] = face + side * speed * (event - 0.5)
        start[1] = rng.uniform(AGENT_R + 2, ARENA - AGENT_R - 2)
        if not AGENT_R + 1 < start[0] < ARENA - AGENT_R - 1:
            raise Retry
        return self.walk_through(rng, start, side, speed, T, WALL_X, door, WALL_HALF + AGENT_R, DOOR_HALF + AGENT_R + 1)


class TwoRoomSwitchScene(TwoRoomScene):
    """``worldjepa/TwoRoomSwitch-v0``: TwoRoom's violations where the door is shut until the
    switch is touched (state ``(x, y, door_open)``). Clips start where the env's episodes do
    (the left room with the door closed, or anywhere with it open), so the closed door is in
    many of them; a closed door is solid like the wall, and a porous wall lets the agent through
    it too. A teleport keeps the door's state and never lands on the switch."""

    def start(self, rng: np.random.Generator) -> np.ndarray:
        return self.env.sample_start(rng)

    def without_walls(self, interior_only: bool = True) -> Any:
        env = copy.copy(self.env)
        borders = self.env._boxes[True][2:] if interior_only else np.zeros((0, 4))  # [2:]: not the wall's two parts
        env._boxes = {True: borders, False: borders}
        return env

    def jump(self, rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
        """A free point of the same room at least 16 units away, off the switch, the door as it was."""
        from ..envs.tworoom import AGENT_R, ARENA, WALL_X
        from ..envs.tworoom_switch import LEFT_X, RIGHT_X

        span = LEFT_X if state[0] < WALL_X else RIGHT_X
        for _ in range(100):
            s = np.array([rng.uniform(*span), rng.uniform(AGENT_R, ARENA - AGENT_R), state[2]])
            if np.hypot(*(s[:2] - state[:2])) >= 16.0 and not self.env.touches_switch(s[:2]):
                return s
        raise Retry


class PointMazeScene(PointScene):
    """``worldjepa/PointMaze*``: a point mass with inertia in a maze (state ``(x, y, vx, vy)``, cells)."""

    min_change = 0.1  # cells: a flip at >= 0.5 cells/s

    def without_walls(self, interior_only: bool = True) -> Any:
        env = copy.copy(self.env)
        rows, cols = env.walls.shape
        cells = np.floor(env._centres).astype(int)  # (K, 2) col, row of each wall cell
        border = (cells[:, 0] == 0) | (cells[:, 1] == 0) | (cells[:, 0] == cols - 1) | (cells[:, 1] == rows - 1)
        keep = border if interior_only else np.zeros(len(cells), bool)
        env._boxes, env._centres = env._boxes[keep], env._centres[keep]
        return env

    def jump(self, rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
        """A free point at least 2 cells away, the velocity kept."""
        for _ in range(100):
            s = self.env.sample_state(rng)
            if np.hypot(*(s[:2] - state[:2])) >= 2.0:
                return np.concatenate([s[:2], state[2:]])
        raise Retry

    def swerve(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The velocity flips (inertia broken), then the physics goes on under the same actions."""
        flipped = np.concatenate([state[:2], -state[2:]])
        out = roll(self.env, flipped, actions)[1:]
        if not self.free(np.concatenate([flipped[None], out[:CALM]]), actions[:CALM]):
            raise Retry
        return out

    def solidity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        """A random walk that touches an interior wall between ``event - 4`` and ``event``; from then
        on it keeps pushing the same way, and its twin passes into the wall."""
        p, actions = self.base(rng, T)
        contact = next((t for t in range(max(event - 4, 1), event + 1) if not np.allclose(
            self.env.advance(p[t - 1], actions[t - 1]), self.porous.advance(p[t - 1], actions[t - 1]))), None)
        if contact is None:
            raise Retry
        push = actions[contact - 1] / max(float(np.abs(actions[contact - 1]).max()), 1e-6)  # full push that way
        actions = np.concatenate([actions[:contact - 1], np.repeat(push[None], T - contact, 0)]).astype(np.float32)
        p = roll(self.env, p[0], actions)
        i = self.pass_through(p, actions, contact)
        cells = np.floor(i[:, [1, 0]]).astype(int)  # (T, 2) row, col
        rows, cols = self.env.walls.shape
        inside = self.env.walls[np.clip(cells[:, 0], 0, rows - 1), np.clip(cells[:, 1], 0, cols - 1)]
        if not inside.any():
            raise Retry  # it never got into the wall
        return Clips(p, i, actions)


SCENES: dict[str, str] = {"worldjepa/TwoRoom-v0": "worldjepa.physics.scenes:TwoRoomScene",
                          "worldjepa/TwoRoomRandomDoor-v0": "worldjepa.physics.scenes:TwoRoomScene",
                          "worldjepa/TwoRoomSwitch-v0": "worldjepa.physics.scenes:TwoRoomSwitchScene",
                          "worldjepa/PointMaze": "worldjepa.physics.scenes:PointMazeScene",
                          "worldjepa/Rooms-v0": "worldjepa.physics.rooms:RoomsScene",
                          "worldjepa/Balls-v0": "worldjepa.physics.balls:BallsScene",
                          "worldjepa/Reacher-v0": "worldjepa.physics.reacher:ReacherScene",
                          "worldjepa/PushT": "worldjepa.physics.pusht:PushTScene"}
"""Env id (or id prefix) -> ``module:Class`` of the scene that makes its violations."""

__all__ = ["ActedScene", "CALM", "Clips", "PointMazeScene", "PointScene", "Retry", "SCENES", "TwoRoomScene",
           "TwoRoomSwitchScene", "recolour", "roll"]
