"""Two rooms joined by a door (the PLDM / eb_jepa navigation task).

A 64 x 64 arena (units; 1 unit = 1 pixel at ``size=64``) split by a vertical wall at
x = 32, 2 units thick, with a 12-unit door. The agent is a disk of radius 1.5 moved by 2-D
displacements; walls block it (it slides along them and never crosses).

* ``TwoRoom-v0``: door centred at y = 32; state ``(x, y)``.
* ``TwoRoomRandomDoor-v0``: door centre drawn per episode in [12, 52]; state
  ``(x, y, door_y)`` so that ``reset(options={"state": s})`` restores the door too.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from gymnasium import spaces

from worldjepa.envs.base import Canvas, WorldEnv, move_point

ARENA = 64.0  # side of the square arena (units)
WALL_X = 32.0  # centre of the dividing wall (units)
WALL_HALF = 1.0  # half thickness of the wall (units)
DOOR_HALF = 6.0  # half height of the door (units)
DOOR_Y = 32.0  # door centre in TwoRoom-v0 (units)
DOOR_RANGE = (12.0, 52.0)  # door centre range in the RandomDoor variant (units)
AGENT_R = 1.5  # agent radius (units)
MAX_STEP = 2.45  # largest displacement per step (units), PLDM's setting
SUBSTEPS = 5  # so a sub-move (<= 0.49) follows the straight segment closely

_FLOOR = (0.94, 0.94, 0.92)
_WALL = (0.15, 0.15, 0.2)
_AGENT = (0.85, 0.1, 0.1)


def step_toward(p: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The displacement ``(2,)`` float32 from ``p`` toward ``target``: all the way, at most MAX_STEP."""
    d = np.asarray(target, np.float64)[:2] - np.asarray(p, np.float64)[:2]
    n = float(np.hypot(d[0], d[1]))
    return (d * min(1.0, MAX_STEP / n) if n > 0 else d).astype(np.float32)


class TwoRoomEnv(WorldEnv):
    """Point navigation between two rooms through a door.

    Observation / state: ``(x, y)`` or, with ``random_door``, ``(x, y, door_y)``; float,
    arena units, y grows downwards in frames. Action: ``Box(-2.45, 2.45, (2,))``, a
    displacement in units; it is first clipped to the box, then scaled down to norm
    <= 2.45. Success: Euclidean distance between agent positions < 4.5 units (DINO-WM's
    wall-task threshold).
    """

    success_threshold: ClassVar[float] = 4.5  # units
    default_id = "worldjepa/TwoRoom-v0"

    def __init__(self, render_mode: str | None = None, size: int = 64, random_door: bool = False) -> None:
        super().__init__(render_mode, size)
        self.random_door = bool(random_door)
        if self.random_door:
            self.default_id = "worldjepa/TwoRoomRandomDoor-v0"
        low = [AGENT_R, AGENT_R] + ([DOOR_RANGE[0]] if self.random_door else [])
        high = [ARENA - AGENT_R, ARENA - AGENT_R] + ([DOOR_RANGE[1]] if self.random_door else [])
        self.observation_space = spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)
        self.action_space = spaces.Box(-MAX_STEP, MAX_STEP, shape=(2,), dtype=np.float32)
        self._backgrounds: dict[float, Canvas] = {}

    # -- physics ------------------------------------------------------------------------
    def door_y(self, state: np.ndarray) -> float:
        """Door centre (units) of ``state``."""
        return float(state[2]) if self.random_door else DOOR_Y

    @staticmethod
    def solid_boxes(door_y: float) -> np.ndarray:
        """``(6, 4)`` boxes ``(xmin, ymin, xmax, ymax)`` the agent's centre may not enter."""
        r, big = AGENT_R, 1e3
        x0, x1 = WALL_X - WALL_HALF - r, WALL_X + WALL_HALF + r
        return np.array(
            [
                [x0, -big, x1, door_y - DOOR_HALF + r],  # wall above the door
                [x0, door_y + DOOR_HALF - r, x1, big],  # wall below the door
                [-big, -big, r, big],  # arena borders
                [ARENA - r, -big, big, big],
                [-big, -big, big, r],
                [-big, ARENA - r, big, big],
            ]
        )

    def _advance(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        norm = float(np.hypot(action[0], action[1]))
        delta = action * (MAX_STEP / norm) if norm > MAX_STEP else action
        pos, _, _ = move_point(state[:2], delta, self.solid_boxes(self.door_y(state)), SUBSTEPS)
        out = state.copy()
        out[:2] = pos
        return out

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform free position (and, with ``random_door``, a uniform door centre)."""
        door = float(rng.uniform(*DOOR_RANGE)) if self.random_door else DOOR_Y
        boxes = self.solid_boxes(door)
        while True:
            p = rng.uniform(AGENT_R, ARENA - AGENT_R, size=2)
            inside = (boxes[:, 0] < p[0]) & (p[0] < boxes[:, 2]) & (boxes[:, 1] < p[1]) & (p[1] < boxes[:, 3])
            if not inside.any():
                return np.array([p[0], p[1], door] if self.random_door else [p[0], p[1]])

    # -- goals --------------------------------------------------------------------------
    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Euclidean distance between the agent positions (units)."""
        return float(np.hypot(state[0] - goal_state[0], state[1] - goal_state[1]))

    def oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Full-speed step toward the goal, via the door when the goal is in the other room.

        Heads for a point 3 units past the door's centre on the goal's side; once in the goal's
        room it goes straight. Walls make it slide, so it needs no finer path planning.
        """
        p, g = np.asarray(state[:2], np.float64), np.asarray(goal_state[:2], np.float64)
        if (p[0] < WALL_X) != (g[0] < WALL_X):
            g = np.array([WALL_X + (3.0 if g[0] >= WALL_X else -3.0), self.door_y(state)])
        return step_toward(p, g)

    # -- drawing ------------------------------------------------------------------------
    def _draw(self, state: np.ndarray) -> np.ndarray:
        door = self.door_y(state)
        bg = self._backgrounds.get(door)
        if bg is None:
            if len(self._backgrounds) > 64:  # random doors: keep the cache small
                self._backgrounds.clear()
            bg = Canvas(self.size, 0.0, 0.0, ARENA, _FLOOR)
            bg.box(WALL_X - WALL_HALF, 0.0, WALL_X + WALL_HALF, door - DOOR_HALF, _WALL)
            bg.box(WALL_X - WALL_HALF, door + DOOR_HALF, WALL_X + WALL_HALF, ARENA, _WALL)
            self._backgrounds[door] = bg
        canvas = bg.copy()
        canvas.disk(float(state[0]), float(state[1]), AGENT_R, _AGENT)
        return canvas.to_uint8()
