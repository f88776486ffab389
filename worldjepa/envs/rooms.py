"""Rooms: a 3 x 3 grid of rooms seen one at a time, where an object now and then shows up.

A world the agent sees only locally, for long streams and memory: every frame shows the room
the agent is in (its floor colour tells which), never the others. Rooms are 64 x 64 units
(1 unit = 1 pixel at ``size=64``); walls 4 units thick run along every room border, and a
16-unit door sits in the middle of each wall between two rooms (12 doors). The agent is a disk
of radius 2 moved by 2-D displacements (TwoRoom's action space and sweep physics). A
distinctive object (a magenta disk with a dark rim and a white centre, radius 10) sometimes
shows up at one of its room's two fixed spots: while the agent is in a room the object appears
with probability :data:`P_APPEAR` per step (at either spot, equally likely) and, once shown,
vanishes with probability :data:`P_VANISH` per step (about 32 steps in view) or as soon as the
agent leaves the room.

``Rooms-v0``: state ``(x, y, shown, key)``: the agent centre in world units (x to the right,
y downwards, over the 192 x 192 world), where the object is in view (0.0: nowhere, 1.0 or 2.0:
at the room's spot 0 or 1), and the integer state of the env's own random stream (a 31-bit
LCG, kept in the state so that a restored state has the same future). Room
``r = row * 3 + col``; place ``p = 2 r + k`` is spot ``k`` of room ``r`` (18 places).

:mod:`worldjepa.envs.rooms_tour` scripts long streams in this world (where and when the
object shows up), with their ground truth: the streaming recall benchmark's input.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

import numpy as np
from gymnasium import spaces

from worldjepa.envs.base import Canvas, WorldEnv, move_point
from worldjepa.envs.tworoom import MAX_STEP, step_toward

ROWS, COLS = 3, 3  # the grid of rooms
ROOM = 64.0  # side of a room (units)
WALL_HALF = 2.0  # walls run along the room borders, 2 * WALL_HALF thick (units)
DOOR_HALF = 8.0  # half width of a door (units), centred on its wall
AGENT_R = 2.0  # agent radius (units)
SUBSTEPS = 5  # sub-moves per step (as TwoRoom)
OBJECT_R = 10.0  # outer radius of the object (units)
P_APPEAR = 0.02  # per step in a room without the object in view: it shows up
P_VANISH = 1.0 / 32.0  # per step with the object in view: it goes (mean ~32 steps in view)
KEY_MOD = 2**31  # the random stream: key <- (1103515245 key + 12345) mod 2^31, u = key / 2^31

# the object's two spots in each room, in room coordinates (units from the room's top-left corner)
SPOTS = (((18.0, 18.0), (46.0, 46.0)), ((46.0, 18.0), (18.0, 46.0)), ((18.0, 20.0), (44.0, 44.0)),
         ((44.0, 18.0), (20.0, 46.0)), ((20.0, 18.0), (46.0, 44.0)), ((46.0, 20.0), (18.0, 44.0)),
         ((18.0, 16.0), (46.0, 46.0)), ((44.0, 20.0), (18.0, 46.0)), ((20.0, 20.0), (46.0, 46.0)))
PLACES = 2 * len(SPOTS)  # place p = 2 * room + spot
FLOORS = ((0.86, 0.84, 0.76), (0.66, 0.82, 0.95), (0.72, 0.90, 0.68), (0.96, 0.78, 0.60), (0.80, 0.74, 0.95),
          (0.58, 0.74, 0.70), (0.95, 0.93, 0.60), (0.93, 0.70, 0.76), (0.70, 0.70, 0.72))
_WALL = (0.15, 0.15, 0.2)
_AGENT = (0.1, 0.2, 0.75)
_RIM, _OBJECT, _CENTRE = (0.1, 0.1, 0.1), (0.92, 0.05, 0.78), (1.0, 1.0, 1.0)
WIDTH, HEIGHT = COLS * ROOM, ROWS * ROOM


def room_of(pos: np.ndarray) -> int:
    """The room index ``row * COLS + col`` of a world position ``(x, y)`` (or of a state)."""
    col = min(max(int(pos[0] // ROOM), 0), COLS - 1)
    row = min(max(int(pos[1] // ROOM), 0), ROWS - 1)
    return row * COLS + col


def rooms_of(states: np.ndarray) -> np.ndarray:
    """Room index (T,) int64 of each row of ``states`` (T, >= 2)."""
    col = np.clip(np.floor(states[:, 0] / ROOM), 0, COLS - 1).astype(np.int64)
    row = np.clip(np.floor(states[:, 1] / ROOM), 0, ROWS - 1).astype(np.int64)
    return row * COLS + col


def spot(place: int) -> np.ndarray:
    """World position ``(2,)`` of place ``place`` (spot ``place % 2`` of room ``place // 2``)."""
    room, k = divmod(int(place), 2)
    row, col = divmod(room, COLS)
    return np.array([col * ROOM + SPOTS[room][k][0], row * ROOM + SPOTS[room][k][1]])


def place_of(state: np.ndarray) -> int:
    """The place where the object is in view in ``state`` (-1: nowhere)."""
    return 2 * room_of(state) + int(round(state[2])) - 1 if state[2] >= 0.5 else -1


def neighbours(room: int) -> list[int]:
    """The rooms a door of ``room`` leads to (every wall between two rooms has one)."""
    row, col = divmod(int(room), COLS)
    out = [(row + dr) * COLS + col + dc for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
           if 0 <= row + dr < ROWS and 0 <= col + dc < COLS]
    return out


def door_between(a: int, b: int) -> np.ndarray:
    """World position ``(2,)`` of the centre of the door between neighbouring rooms ``a`` and ``b``."""
    (ra, ca), (rb, cb) = divmod(a, COLS), divmod(b, COLS)
    if ra == rb:
        return np.array([max(ca, cb) * ROOM, (ra + 0.5) * ROOM])
    return np.array([(ca + 0.5) * ROOM, max(ra, rb) * ROOM])


def _walls() -> np.ndarray:
    """``(K, 4)`` wall boxes ``(xmin, ymin, xmax, ymax)`` in world units, door gaps left open."""
    boxes = [[-WALL_HALF, -WALL_HALF, WALL_HALF, HEIGHT + WALL_HALF], [WIDTH - WALL_HALF, -WALL_HALF, WIDTH + WALL_HALF,
             HEIGHT + WALL_HALF], [-WALL_HALF, -WALL_HALF, WIDTH + WALL_HALF, WALL_HALF],
             [-WALL_HALF, HEIGHT - WALL_HALF, WIDTH + WALL_HALF, HEIGHT + WALL_HALF]]
    for c in range(1, COLS):  # vertical walls between columns, a door in each room's stretch
        x = c * ROOM
        for r in range(ROWS):
            mid = (r + 0.5) * ROOM
            boxes += [[x - WALL_HALF, r * ROOM, x + WALL_HALF, mid - DOOR_HALF],
                      [x - WALL_HALF, mid + DOOR_HALF, x + WALL_HALF, (r + 1) * ROOM]]
    for r in range(1, ROWS):
        y = r * ROOM
        for c in range(COLS):
            mid = (c + 0.5) * ROOM
            boxes += [[c * ROOM, y - WALL_HALF, mid - DOOR_HALF, y + WALL_HALF],
                      [mid + DOOR_HALF, y - WALL_HALF, (c + 1) * ROOM, y + WALL_HALF]]
    return np.array(boxes)


WALLS = _walls()
SOLID = WALLS + np.array([-AGENT_R, -AGENT_R, AGENT_R, AGENT_R])  # what the agent's centre may not enter


def move(pos: np.ndarray, action: np.ndarray, solid: np.ndarray = SOLID) -> np.ndarray:
    """The agent centre ``(2,)`` after one step of displacement ``action`` (clipped to the action box,
    scaled down to norm <= MAX_STEP), sliding along walls (``solid``: the boxes its centre may not enter)."""
    a = np.clip(np.asarray(action, np.float64), -MAX_STEP, MAX_STEP)
    norm = float(np.hypot(a[0], a[1]))
    delta = a * (MAX_STEP / norm) if norm > MAX_STEP else a
    return move_point(np.asarray(pos, np.float64)[:2], delta, solid, SUBSTEPS)[0]


def next_key(key: float) -> int:
    """The random stream's next state (an int below 2^31) after ``key``."""
    return (1103515245 * int(key) + 12345) % KEY_MOD


def next_shown(shown: int, same_room: bool, u: float) -> int:
    """Where the object is in view after a step (0: nowhere, k + 1: spot k), given where it was,
    whether the agent stayed in its room and the step's uniform draw ``u``."""
    if not same_room:
        return 0
    if shown:
        return 0 if u < P_VANISH else shown
    return 1 if u < P_APPEAR / 2 else 2 if u < P_APPEAR else 0


class RoomsEnv(WorldEnv):
    """Nine rooms seen one at a time; an object that shows up now and then at one of its room's spots.

    Observation / state: ``(x, y, shown, key)`` (module docstring). Action:
    ``Box(-2.45, 2.45, (2,))``, a displacement in units (clipped, then scaled down to norm
    <= 2.45). Success: Euclidean distance between agent positions < 4.5 units. The object
    plays no part in goals.
    """

    success_threshold: ClassVar[float] = 4.5  # units
    default_id = "worldjepa/Rooms-v0"

    def __init__(self, render_mode: str | None = None, size: int = 64) -> None:
        super().__init__(render_mode, size)
        low = np.array([AGENT_R, AGENT_R, 0.0, 0.0], np.float32)
        high = np.array([WIDTH - AGENT_R, HEIGHT - AGENT_R, 2.0, KEY_MOD - 1], np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-MAX_STEP, MAX_STEP, shape=(2,), dtype=np.float32)
        self._backgrounds: dict[tuple[int, int], Canvas] = {}
        self.solid = SOLID  # (K, 4) what the agent's centre may not enter (the physics scenes remove walls)

    # -- physics ------------------------------------------------------------------------
    def _advance(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        pos = move(state[:2], action, self.solid)
        key = next_key(state[3])
        shown = next_shown(int(round(state[2])), room_of(pos) == room_of(state), key / KEY_MOD)
        return np.array([pos[0], pos[1], float(shown), float(key)])

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """A uniform free position in a uniform room, the object out of view, a random key."""
        room = int(rng.integers(ROWS * COLS))
        row, col = divmod(room, COLS)
        m = WALL_HALF + AGENT_R
        x, y = rng.uniform(m, ROOM - m, size=2)
        return np.array([col * ROOM + x, row * ROOM + y, 0.0, float(rng.integers(KEY_MOD))])

    # -- goals --------------------------------------------------------------------------
    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Euclidean distance between the agent positions (units)."""
        return float(np.hypot(state[0] - goal_state[0], state[1] - goal_state[1]))

    def oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """Full-speed step toward the goal along the fewest rooms: while the goal is in another room,
        toward a point 4 units past the door to the next room on a shortest room path (walls make
        it slide into the door)."""
        here, there = room_of(state), room_of(goal_state)
        if here == there:
            return step_toward(state, goal_state)
        nxt = route(here, there)[1]
        door = door_between(here, nxt)
        into = np.sign(np.subtract(divmod(nxt, COLS), divmod(here, COLS)))[::-1]  # (dx, dy) toward nxt
        return step_toward(state, door + 4.0 * into)

    # -- drawing ------------------------------------------------------------------------
    def _draw(self, state: np.ndarray, agent: bool = True) -> np.ndarray:
        room, place = room_of(state), place_of(state)
        bg = self._backgrounds.get((room, place))
        if bg is None:
            row, col = divmod(room, COLS)
            bg = Canvas(self.size, col * ROOM, row * ROOM, ROOM, FLOORS[room])
            for box in WALLS:
                bg.box(*box, _WALL)
            if place >= 0:
                cx, cy = spot(place)
                bg.disk(cx, cy, OBJECT_R, _RIM)
                bg.disk(cx, cy, OBJECT_R - 1.5, _OBJECT)
                bg.disk(cx, cy, 0.3 * OBJECT_R, _CENTRE)
            self._backgrounds[(room, place)] = bg
        canvas = bg.copy()
        if agent:
            canvas.disk(float(state[0]), float(state[1]), AGENT_R, _AGENT)
        return canvas.to_uint8()

    def render_empty(self, state: np.ndarray) -> np.ndarray:
        """The frame of ``state`` without the agent: its room and the object, as the camera shows them."""
        return self._draw(self.check_state(state), agent=False)


def route(a: int, b: int) -> list[int]:
    """A shortest path of rooms from ``a`` to ``b`` (both included), breadth-first over the doors."""
    prev = {a: a}
    todo = deque([a])
    while todo:
        r = todo.popleft()
        if r == b:
            break
        for n in neighbours(r):
            if n not in prev:
                prev[n] = r
                todo.append(n)
    path = [b]
    while path[-1] != a:
        path.append(prev[path[-1]])
    return path[::-1]
