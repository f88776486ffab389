"""A point mass in a grid maze (the D4RL / DINO-WM PointMaze task, without MuJoCo).

Coordinates are in maze cells: cell ``(row, col)`` covers x in [col, col + 1] and y in
[row, row + 1] (y grows downwards, as in frames). The agent is a double integrator:
each 0.1 s step, ``v += 5 * a * dt``, then ``v *= 1 - 1.0 * dt`` (damping), the speed is
capped at 2 cells/s and the position moves by ``v * dt`` through the walls' sweep (walls
stop the agent and zero the blocked velocity component; no tunnelling).

Layouts: ``umaze``, ``medium``, ``large`` (the D4RL maps) and ``procedural``: a perfect
maze carved by a depth-first search seeded by ``layout_seed`` (the layout is fixed for the
env's life: make one env per layout). Layouts are split once and for all:
:func:`is_heldout_layout` marks the one maze in five kept for evaluation, and
``TRAIN_LAYOUT_SEEDS`` / ``HELDOUT_LAYOUT_SEEDS`` list the first 80 / 20 seeds of each side.
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from worldjepa.envs.base import Canvas, WorldEnv, move_point
from worldjepa.errors import EnvError

LAYOUTS: dict[str, str] = {
    "umaze": """
#####
#...#
###.#
#...#
#####""",
    "medium": """
########
#..##..#
#..#...#
##...###
#..#...#
#.#..#.#
#...#..#
########""",
    "large": """
############
#....#.....#
#.##.#.#.#.#
#......#...#
#.####.###.#
#..#.#.....#
##.#.#.#.###
#..#...#...#
############""",
}

DT = 0.1  # seconds per step
ACCEL = 5.0  # cells/s^2 at |a| = 1
DAMPING = 1.0  # 1/s
MAX_SPEED = 2.0  # cells/s
AGENT_R = 0.2  # agent half-width for collisions and radius when drawn (cells)
SUBSTEPS = 4
ORACLE_KP, ORACLE_KD = 3.0, 2.0  # PD gains of the reference controller (1/cell, s/cell)
SIGHT_MARGIN = 0.35  # clearance (cells) the oracle wants between its aim line and the walls


def is_heldout_layout(seed: int, rooms: int = 4) -> bool:
    """Whether procedural ``layout_seed`` gives a maze reserved for evaluation (one in five).

    The split hashes the maze itself (CRC-32 of its wall grid), not the seed: two seeds that
    happen to carve the same maze always fall on the same side of the split.
    """
    return zlib.crc32(procedural_layout(seed, rooms).tobytes()) % 5 == 4


def _first_seeds(heldout: bool, count: int) -> tuple[int, ...]:
    out, seed = [], 0
    while len(out) < count:
        if is_heldout_layout(seed) == heldout:
            out.append(seed)
        seed += 1
    return tuple(out)


def procedural_layout(layout_seed: int, rooms: int = 4) -> np.ndarray:
    """Perfect maze on ``rooms x rooms`` rooms: a ``(2 rooms + 1)``-square bool grid, True = wall.

    Iterative depth-first search (recursive backtracker) from room (0, 0) with neighbours
    visited in an order drawn from ``np.random.default_rng(layout_seed)``.
    """
    rng = np.random.default_rng(layout_seed)
    n = 2 * rooms + 1
    wall = np.ones((n, n), bool)
    seen = np.zeros((rooms, rooms), bool)
    stack = [(0, 0)]
    seen[0, 0] = True
    wall[1, 1] = False
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))
                   if 0 <= r + dr < rooms and 0 <= c + dc < rooms and not seen[r + dr, c + dc]]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        seen[nr, nc] = True
        wall[2 * nr + 1, 2 * nc + 1] = False
        wall[r + nr + 1, c + nc + 1] = False  # the wall cell between the two rooms
        stack.append((nr, nc))
    return wall


TRAIN_LAYOUT_SEEDS: tuple[int, ...] = _first_seeds(False, 80)  # the first 80 training layout seeds
HELDOUT_LAYOUT_SEEDS: tuple[int, ...] = _first_seeds(True, 20)  # the first 20 held-out ones


def parse_layout(text: str) -> np.ndarray:
    """``'#'`` / ``'.'`` map to a ``(rows, cols)`` bool grid, True = wall."""
    return np.array([[ch == "#" for ch in line] for line in text.strip().splitlines()], bool)


_MOVES = ((1, 0), (-1, 0), (0, 1), (0, -1))  # 4-connected neighbours (row, col), in tie-breaking order


def _neighbours(shape: tuple[int, ...], r: int, c: int) -> list[tuple[int, int]]:
    return [(r + dr, c + dc) for dr, dc in _MOVES if 0 <= r + dr < shape[0] and 0 <= c + dc < shape[1]]


def cell_distances(walls: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Breadth-first search from ``goal``: ``(rows, cols)`` int grid of the number of moves
    between 4-adjacent free cells from each cell to ``goal``; -1 for walls and cut-off cells."""
    dist = np.full(walls.shape, -1, np.int64)
    todo: deque[tuple[int, int]] = deque()
    if not walls[goal]:
        dist[goal] = 0
        todo.append(goal)
    while todo:
        r, c = todo.popleft()
        for q in _neighbours(walls.shape, r, c):
            if not walls[q] and dist[q] < 0:
                dist[q] = dist[r, c] + 1
                todo.append(q)
    return dist


def shortest_path(dist: np.ndarray, start: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells ``(row, col)`` from ``start`` to the goal of ``dist`` (:func:`cell_distances`), both
    included, each one move closer (the first such neighbour in ``_MOVES`` order); [] if cut off."""
    path = [start] if dist[start] >= 0 else []
    while path and dist[path[-1]] > 0:
        path.append(next(q for q in _neighbours(dist.shape, *path[-1]) if dist[q] == dist[path[-1]] - 1))
    return path


class PointMazeEnv(WorldEnv):
    """Point-mass navigation in a maze.

    State / observation: ``(x, y, vx, vy)`` in cells and cells/s. Action: ``Box(-1, 1, (2,))``,
    the acceleration as a fraction of 5 cells/s^2 (out-of-range values are clipped).
    Success: distance between positions < 0.5 cells (DINO-WM's maze threshold).
    """

    success_threshold: ClassVar[float] = 0.5  # cells

    def __init__(
        self,
        render_mode: str | None = None,
        size: int = 64,
        layout: str = "umaze",
        layout_seed: int | str | None = None,
        rooms: int = 4,
    ) -> None:
        super().__init__(render_mode, size)
        # layout_seed "train": a training layout drawn per episode (reset), for a world model that
        # must carry over to held-out layouts; the recorded states then cannot be restored alone
        self.per_episode = layout == "procedural" and layout_seed == "train"
        if layout_seed == "train" and not self.per_episode:
            raise EnvError(f"PointMazeEnv: layout_seed='train' draws procedural layouts; layout is {layout!r}")
        try:
            layout_seed = TRAIN_LAYOUT_SEEDS[0] if layout_seed is None or self.per_episode else int(layout_seed)
        except (TypeError, ValueError):
            raise EnvError(f"PointMazeEnv: layout_seed must be an int or 'train', got {layout_seed!r}") from None
        if layout == "procedural":
            walls = procedural_layout(layout_seed, rooms)
        elif layout in LAYOUTS:
            walls = parse_layout(LAYOUTS[layout])
        else:
            raise EnvError(f"PointMazeEnv: unknown layout {layout!r}; expected one of {[*LAYOUTS, 'procedural']}")
        self.layout, self.layout_seed, self.rooms = layout, layout_seed, rooms
        names = {"umaze": "UMaze", "medium": "Medium", "large": "Large", "procedural": "Procedural"}
        self.default_id = f"worldjepa/PointMaze-{names[layout]}-v0"
        self._set_walls(walls)
        rows, cols = self.walls.shape
        low = np.array([0, 0, -MAX_SPEED, -MAX_SPEED], np.float32)
        high = np.array([cols, rows, MAX_SPEED, MAX_SPEED], np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def _set_walls(self, walls: np.ndarray) -> None:
        """Use the ``(rows, cols)`` wall grid ``walls`` (True = wall) and what is derived from it."""
        self.walls = walls
        r = AGENT_R
        wr, wc = np.nonzero(walls)
        self._boxes = np.stack([wc - r, wr - r, wc + 1 + r, wr + 1 + r], axis=1).astype(np.float64)  # (K, 4)
        self._centres = np.stack([wc + 0.5, wr + 0.5], axis=1)  # (K, 2)
        self._free = np.argwhere(~walls)  # (F, 2) rows, cols
        self._wall_lo = np.stack([wc, wr], axis=1).astype(np.float64)  # (K, 2) x, y of each wall cell's corner
        self._dist: dict[tuple[int, int], np.ndarray] = {}  # goal cell -> BFS distances (of this layout)
        self._background: Canvas | None = None

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """As :meth:`WorldEnv.reset`; with per-episode layouts (``layout_seed='train'``) a new
        training layout is drawn first, and restoring a state is refused (it names no layout)."""
        if self.per_episode and (options or {}).get("state") is not None:
            raise EnvError("PointMazeEnv: a state cannot be restored with per-episode layouts (layout_seed='train'); "
                           "evaluate on recordings of one layout (collect --env-kwargs layout_seed=N)")
        return super().reset(seed=seed, options=options)

    def sample_start(self, rng: np.random.Generator) -> np.ndarray:
        """With per-episode layouts, draw the episode's training layout, then the start in it."""
        if self.per_episode:
            self.layout_seed = TRAIN_LAYOUT_SEEDS[int(rng.integers(len(TRAIN_LAYOUT_SEEDS)))]
            self._set_walls(procedural_layout(self.layout_seed, self.rooms))
        return self.sample_state(rng)

    # -- physics ------------------------------------------------------------------------
    def _advance(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        v = (state[2:] + ACCEL * DT * action) * (1.0 - DAMPING * DT)
        speed = float(np.hypot(v[0], v[1]))
        if speed > MAX_SPEED:
            v = v * (MAX_SPEED / speed)
        near = np.all(np.abs(self._centres - state[:2]) < 2.0, axis=1)  # moves are <= 0.2 cells
        pos, hit_x, hit_y = move_point(state[:2], v * DT, self._boxes[near], SUBSTEPS)
        v = np.array([0.0 if hit_x else v[0], 0.0 if hit_y else v[1]])
        return np.concatenate([pos, v])

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform position in a uniformly drawn free cell (clear of its walls), at rest."""
        row, col = self._free[int(rng.integers(len(self._free)))]
        x, y = rng.uniform(AGENT_R, 1.0 - AGENT_R, size=2)
        return np.array([col + x, row + y, 0.0, 0.0])

    # -- goals --------------------------------------------------------------------------
    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Euclidean distance between positions (cells); velocities are ignored."""
        return float(np.hypot(state[0] - goal_state[0], state[1] - goal_state[1]))

    def cell(self, pos: np.ndarray) -> tuple[int, int]:
        """The ``(row, col)`` of the cell containing position ``pos`` (cells), clipped to the grid."""
        rows, cols = self.walls.shape
        return min(max(int(np.floor(pos[1])), 0), rows - 1), min(max(int(np.floor(pos[0])), 0), cols - 1)

    def path(self, state: np.ndarray, goal_state: np.ndarray) -> list[tuple[int, int]]:
        """Shortest free-cell path (:func:`shortest_path`) from the state's cell to the goal's; [] if none."""
        goal = self.cell(goal_state)
        if goal not in self._dist:
            self._dist[goal] = cell_distances(self.walls, goal)
        return shortest_path(self._dist[goal], self.cell(state))

    def path_length(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Length (cells) of the polyline from the position of ``state`` through the centres of
        the cells strictly between its cell and the goal's on :meth:`path`, to the goal position.

        ``n`` moves measure ``n - 2`` plus the two end pieces, about ``n`` (the straight distance
        in one cell, inf with no path): never below the straight-line distance, and symmetric
        up to the end pieces (ties between shortest paths are broken by the cell order).
        """
        cells = self.path(state, goal_state)
        if not cells:
            return float("inf")
        pts = np.array([state[:2]] + [(c + 0.5, r + 0.5) for r, c in cells[1:-1]] + [goal_state[:2]], np.float64)
        return float(np.hypot(*np.diff(pts, axis=0).T).sum())

    def oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """PD controller along the shortest free-cell path (:meth:`path`) to the goal: the ceiling.

        It aims at the farthest of the path's next cell centres, and last the goal position,
        seen along a line 0.35 cells clear of the walls (the agent's half-width when pressed on
        a wall; else the next centre), so it never cuts a corner into a wall. Pairs drawn with
        ``sample_state``, :meth:`path_length` >= 6 cells: 180 of 180 reached on Medium and on Large
        within the far-goal budget of 200 steps (78 and 120 at most), at 6.5 and 6.3 steps per
        cell of path length on average (the speed cap is 0.2 cells a step). With no path it is
        :meth:`straight_oracle_action`.
        """
        p, v = np.asarray(state[:2], np.float64), np.asarray(state[2:4], np.float64)
        cells = self.path(state, goal_state)
        if not cells:
            return self.straight_oracle_action(state, goal_state)
        targets = np.array([(c + 0.5, r + 0.5) for r, c in cells[1:-1]] + [goal_state[:2]], np.float64)
        aim = targets[0]
        for margin in (SIGHT_MARGIN, AGENT_R):
            seen = np.nonzero(self._clear(p, targets, margin))[0]
            if seen.size:
                aim = targets[seen[-1]]
                break
        return np.clip(ORACLE_KP * (aim - p) - ORACLE_KD * v, -1.0, 1.0).astype(np.float32)

    def straight_oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """PD controller toward the goal position, blind to walls (the ``straight`` baseline)."""
        a = ORACLE_KP * (np.asarray(goal_state[:2]) - state[:2]) - ORACLE_KD * np.asarray(state[2:4])
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def _clear(self, p: np.ndarray, targets: np.ndarray, margin: float) -> np.ndarray:
        """``(n,)`` whether each segment ``p -> targets[i]`` stays out of every wall cell grown by ``margin``."""
        d = targets - p  # (n, 2)
        lo, hi = self._wall_lo - margin, self._wall_lo + 1.0 + margin  # (K, 2)
        with np.errstate(divide="ignore", invalid="ignore"):  # slab test; axes with d = 0 are handled below
            t0, t1 = (lo - p) / d[:, None], (hi - p) / d[:, None]  # (n, K, 2)
        flat = d[:, None, :] == 0
        inside = (lo < p) & (p < hi)  # (K, 2) whether p lies within each slab
        t_in = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(t0, t1))
        t_out = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(t0, t1))
        enter, leave = np.maximum(t_in.max(axis=2), 0.0), np.minimum(t_out.min(axis=2), 1.0)  # (n, K)
        return ~np.any(enter < leave, axis=1)

    # -- drawing ------------------------------------------------------------------------
    def _draw(self, state: np.ndarray) -> np.ndarray:
        if self._background is None:
            self._background = self._draw_walls()
        canvas = self._background.copy()
        canvas.disk(float(state[0]), float(state[1]), AGENT_R, (0.85, 0.1, 0.1))
        return canvas.to_uint8()

    def _draw_walls(self, ss: int = 4) -> Canvas:
        """Maze centred in the frame; wall coverage from ``ss x ss`` samples per pixel (drawn once)."""
        rows, cols = self.walls.shape
        extent = float(max(rows, cols))
        canvas = Canvas(self.size, -(extent - cols) / 2, -(extent - rows) / 2, extent, (0.94, 0.94, 0.92))
        sub = canvas.scale * ((np.arange(ss) + 0.5) / ss - 0.5)  # sample offsets inside a pixel
        xs = (canvas.xs[:, None] + sub[None, :]).ravel()  # (W * ss,)
        ys = (canvas.ys[:, None] + sub[None, :]).ravel()
        ci, ri = np.floor(xs).astype(int), np.floor(ys).astype(int)
        inside = (ri[:, None] >= 0) & (ri[:, None] < rows) & (ci[None, :] >= 0) & (ci[None, :] < cols)
        solid = np.where(inside, self.walls[np.clip(ri, 0, rows - 1)][:, np.clip(ci, 0, cols - 1)], True)
        cover = solid.reshape(self.size, ss, self.size, ss).mean(axis=(1, 3)).astype(np.float32)
        wall = np.array((0.15, 0.15, 0.2), np.float32)
        canvas.image += cover[..., None] * (wall - canvas.image)
        return canvas
