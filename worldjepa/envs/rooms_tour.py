"""Long scripted streams in the Rooms world, with their ground truth: the streaming recall input.

A :class:`Tour` is an agent wandering the nine rooms of :mod:`worldjepa.envs.rooms` for ``T``
frames (reward-free: random waypoints in a neighbouring room or its own, reached by the env's
oracle with Ornstein-Uhlenbeck noise added), while the object shows up at ``n`` places: each
place is one of the two spots of a room (place ``2 * room + spot``); the object pops into view
there in the middle of one visit of the agent to that room, for ``duration`` steps (Cambrian-S's
VSI-Super inserts its objects into a video the same way: briefly, at a few places spread over a
long stream). With ``repeats = R`` the object shows up again at the same place during the next
``R - 1`` free visits of that room: the same object seen again, which a memory must count once.

Usage::

    tour = make_tour(10_000, objects=4, seed=3)
    tour.places              # (4,) places in the order the object first appeared there
    tour.sightings           # (m, 3): place, first step, stop step of each time it was in view
    frames = tour.frames(0, 1000)   # (1000, 64, 64, 3) uint8, drawn on demand
    tour.actions             # (T - 1, 2) float32: the step from frame t to t + 1

Everything here is ground truth, for making questions and scoring answers; a memory sees only
the frames and actions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldjepa.envs.rooms import AGENT_R, COLS, ROOM, ROWS, WALL_HALF, RoomsEnv, move, neighbours, room_of, rooms_of
from worldjepa.envs.tworoom import MAX_STEP
from worldjepa.errors import EnvError

__all__ = ["Tour", "make_tour"]

MARGIN = 2  # steps of a visit before the object may show up and after it has gone


@dataclass(frozen=True)
class Tour:
    """A scripted stream (see the module docstring). ``states`` (T, 4) float64 are valid
    ``Rooms-v0`` states (``shown`` set by the script), ``actions`` (T - 1, 2) float32,
    ``places`` (n,) int64 places in order of the object's first appearance, ``sightings`` (m, 3)
    int64 rows ``(place, start, stop)`` in time order, ``size`` the frame side in pixels."""

    states: np.ndarray
    actions: np.ndarray
    places: np.ndarray
    sightings: np.ndarray
    size: int = 64

    def __len__(self) -> int:
        return len(self.states)

    @property
    def rooms(self) -> np.ndarray:
        """The room (T,) int64 the agent is in at each frame."""
        return rooms_of(self.states)

    @property
    def shown(self) -> np.ndarray:
        """The place (T,) int64 where the object is in view at each frame (-1: nowhere)."""
        return np.where(self.states[:, 2] >= 0.5, 2 * self.rooms + np.rint(self.states[:, 2]).astype(np.int64) - 1, -1)

    def room_changes(self) -> np.ndarray:
        """The frames (C,) int64 whose room differs from the previous frame's."""
        r = self.rooms
        return np.flatnonzero(r[1:] != r[:-1]) + 1

    def frames(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start:stop`` as ``(L, size, size, 3)`` uint8."""
        return self.frames_at(np.arange(len(self))[start:stop])

    def frames_at(self, rows: np.ndarray) -> np.ndarray:
        """Frames ``rows`` (L,) as ``(L, size, size, 3)`` uint8."""
        env = RoomsEnv(size=self.size)
        out = np.empty((len(rows), self.size, self.size, 3), np.uint8)
        for i, r in enumerate(np.asarray(rows, np.int64)):
            out[i] = env.render_state(self.states[r])
        return out


def _visits(rooms: np.ndarray) -> np.ndarray:
    """(V, 3) rows ``(room, start, stop)`` of the maximal runs of one room."""
    cut = np.flatnonzero(rooms[1:] != rooms[:-1]) + 1
    starts, stops = np.r_[0, cut], np.r_[cut, len(rooms)]
    return np.stack([rooms[starts], starts, stops], 1)


def wander(steps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Positions (T, 2) and actions (T - 1, 2) float32 of a reward-free walk over the rooms: a
    waypoint drawn uniformly in a neighbouring room (80%) or the current one, followed by the
    env's oracle at 70% speed plus Ornstein-Uhlenbeck noise, a new waypoint when within 5 units
    or after 60 steps."""
    env = RoomsEnv()
    m = WALL_HALF + AGENT_R + 2.0
    pos = np.empty((steps, 2))
    acts = np.empty((max(steps - 1, 0), 2), np.float32)
    room = int(rng.integers(ROWS * COLS))
    pos[0] = np.array([room % COLS, room // COLS]) * ROOM + rng.uniform(m, ROOM - m, 2)
    noise, target, age = np.zeros(2), pos[0], 60
    for t in range(steps - 1):
        if age >= 60 or np.hypot(*(pos[t] - target)) < 5.0:
            here = room_of(pos[t])
            room = int(rng.choice(neighbours(here))) if rng.uniform() < 0.8 else here
            target = np.array([room % COLS, room // COLS]) * ROOM + rng.uniform(m, ROOM - m, 2)
            age = 0
        noise = noise - 0.15 * noise + 0.35 * rng.standard_normal(2)
        a = 0.7 * env.oracle_action(pos[t], target) + 0.5 * MAX_STEP * np.clip(noise, -1.0, 1.0)
        acts[t] = np.clip(a, -MAX_STEP, MAX_STEP)
        pos[t + 1] = move(pos[t], acts[t])
        age += 1
    return pos, acts


def make_tour(steps: int, *, objects: int = 4, repeats: int = 1, duration: int = 16, seed: int = 0,
              size: int = 64) -> Tour:
    """A tour of ``steps`` frames where the object shows up at ``objects`` distinct places, each
    during one visit of its room (visits picked uniformly among those long enough for
    ``duration`` steps in view plus a margin, one object per visit, the spot drawn among the
    room's free ones), and again during the next ``repeats - 1`` free long-enough visits of that
    room. The same ``seed`` with another ``repeats`` gives the same walk and the same first
    sightings. Raises :class:`EnvError` when the walk has too few long-enough visits."""
    if steps < 2 or objects < 0 or repeats < 1 or duration < 1:
        raise EnvError(f"make_tour: need steps >= 2, objects >= 0, repeats >= 1, duration >= 1; got {steps}, "
                       f"{objects}, {repeats}, {duration}")
    rng = np.random.default_rng(seed)
    pos, actions = wander(steps, rng)
    visits = _visits(rooms_of(pos))
    long_enough = np.flatnonzero(visits[:, 2] - visits[:, 1] >= duration + 2 * MARGIN)
    hosts: dict[int, int] = {}  # visit -> place shown during it
    for v in rng.permutation(long_enough):
        if len(hosts) == objects:
            break
        room = int(visits[v, 0])
        free = [2 * room + k for k in (0, 1) if 2 * room + k not in hosts.values()]
        if free:
            hosts[int(v)] = int(rng.choice(free))
    if len(hosts) < objects:
        raise EnvError(f"make_tour: a {steps}-step walk (seed {seed}) has room for only {len(hosts)} of {objects} "
                       "objects")
    firsts = sorted(hosts)
    starts = {v: int(rng.integers(visits[v, 1] + MARGIN, visits[v, 2] - duration - MARGIN + 1)) for v in firsts}
    for v in firsts:  # the same place again, in the next free long-enough visits of its room
        later = [int(w) for w in long_enough if w > v and visits[w, 0] == visits[v, 0] and int(w) not in hosts]
        for w in later[:repeats - 1]:
            hosts[w] = hosts[v]
            starts[w] = int(rng.integers(visits[w, 1] + MARGIN, visits[w, 2] - duration - MARGIN + 1))
    states = np.zeros((steps, 4))
    states[:, :2] = pos
    sightings = np.array(sorted((hosts[v], s, s + duration) for v, s in starts.items()), np.int64).reshape(-1, 3)
    sightings = sightings[np.argsort(sightings[:, 1], kind="stable")]
    for place, s, e in sightings:
        states[s:e, 2] = 1.0 + place % 2
    return Tour(states, actions, np.array([hosts[v] for v in firsts], np.int64), sightings, int(size))
