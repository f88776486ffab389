"""The violations of ``worldjepa/Rooms-v0``: nine rooms seen one at a time (state ``(x, y, shown, key)``).

TwoRoom's five violations (:class:`~worldjepa.physics.scenes.PointScene`) in a world whose
camera follows the agent's room: a vanished or recoloured agent leaves its room in view
(:meth:`~worldjepa.envs.rooms.RoomsEnv.render_empty`); a teleport stays in the room, so the
object's appearances, drawn from the state's own random stream, stay the same in both twins;
``solidity`` walks into a wall between two rooms of a row, away from its door, and the
impossible twin passes into the next room.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..envs import rooms as rm
from .scenes import AGENT_COLOUR, Clips, PointScene, Retry

__all__ = ["RoomsScene"]


class RoomsScene(PointScene):
    """The Rooms env as a source of violation-of-expectation pairs (see the module docstring)."""

    colours = (rm._AGENT, AGENT_COLOUR)  # the agent's blue turns red (TwoRoom's agent colour)

    def without_walls(self, interior_only: bool = True) -> Any:
        env = copy.copy(self.env)
        env.solid = self.env.solid[:4] if interior_only else np.zeros((0, 4))  # [:4]: the world's outer border
        return env

    def empty_frame(self, state: np.ndarray) -> np.ndarray:
        return self.env.render_empty(state)

    def jump(self, rng: np.random.Generator, state: np.ndarray) -> np.ndarray:
        """A free point of the same room at least 16 units away, the object and the stream kept."""
        row, col = divmod(rm.room_of(state), rm.COLS)
        m = rm.WALL_HALF + rm.AGENT_R
        for _ in range(100):
            xy = np.array([col * rm.ROOM, row * rm.ROOM]) + rng.uniform(m, rm.ROOM - m, 2)
            if np.hypot(*(xy - state[:2])) >= 16.0:
                return np.concatenate([xy, state[2:]])
        raise Retry

    def solidity(self, rng: np.random.Generator, event: int, T: int) -> Clips:
        """The agent walks into a wall between two rooms of a row, away from its door, reaching
        it near ``event``; its twin passes through into the next room."""
        col, row = int(rng.integers(1, rm.COLS)), int(rng.integers(rm.ROWS))
        wall_x, mid = col * rm.ROOM, (row + 0.5) * rm.ROOM
        side = -1 if rng.random() < 0.5 else 1  # -1: from the left room, walking right
        face = wall_x + side * (rm.WALL_HALF + rm.AGENT_R)
        speed = rng.uniform(1.0, 1.6)
        start = self.env.sample_state(rng)
        start[0] = face + side * speed * (event - 0.5)
        start[1] = mid + rng.choice([-1, 1]) * rng.uniform(rm.DOOR_HALF + rm.AGENT_R + 4, rm.ROOM / 2 - 8)
        if rm.room_of(start) != row * rm.COLS + col - (side < 0):
            raise Retry  # the start is not in the room beside that wall
        return self.walk_through(rng, start, side, speed, T, wall_x, mid, rm.WALL_HALF + rm.AGENT_R,
                                 rm.DOOR_HALF + rm.AGENT_R + 1)
