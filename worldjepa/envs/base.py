"""The base every built-in environment shares, a soft-edged numpy rasteriser, and point sweeps.

* :class:`WorldEnv`: Gymnasium plumbing that is the same everywhere: action checks (wrong
  shape or NaN/inf raise :class:`~worldjepa.errors.EnvError`, out-of-range values are
  clipped to the action space), ``reset(options={"state": s})``, reward-free ``step``, and
  ``render`` drawing the current state at ``size x size`` pixels.
  A subclass writes only its physics (``_advance``), its drawing (``_draw``),
  ``sample_state`` (and ``sample_start`` where episodes start elsewhere) and the goal
  verbs (``success``, ``distance``, ``oracle_action``).
* :class:`Canvas`: paints disks, boxes and segments into a float image with edges weighted
  by coverage, so that sub-pixel motion still changes the frame (world models see it).
* :func:`move_point`: moves a point through axis-aligned solid boxes without ever entering
  one (exact sweep along each axis, in sub-steps so a diagonal move follows the segment).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from worldjepa.errors import EnvError


class WorldEnv(gym.Env):
    """Reward-free, state-restorable Gymnasium environment rendered with numpy.

    ``step`` returns ``(obs, 0.0, False, False, info)``; ``obs`` is the physical state as
    float32 and ``info["state"]`` a float64 copy of it, enough to restore the env exactly
    with ``reset(options={"state": info["state"]})``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}
    success_threshold: ClassVar[float]
    default_id: ClassVar[str] = "worldjepa/?"

    def __init__(self, render_mode: str | None = None, size: int = 64) -> None:
        if render_mode not in (None, "rgb_array"):
            raise EnvError(f"{type(self).__name__}: render_mode must be None or 'rgb_array', got {render_mode!r}")
        if not isinstance(size, (int, np.integer)) or size < 8:
            raise EnvError(f"{type(self).__name__}: size must be an int >= 8 pixels, got {size!r}")
        self.render_mode = render_mode
        self.size = int(size)
        self._state: np.ndarray | None = None

    # -- what a subclass provides ------------------------------------------------------
    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """A valid, reachable state drawn from ``rng`` (float64, shape of the observation)."""
        raise NotImplementedError

    def sample_start(self, rng: np.random.Generator) -> np.ndarray:
        """The start state of ``reset()`` without a given state; ``sample_state`` unless overridden."""
        return self.sample_state(rng)

    def _advance(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        """The next state after one (already checked and clipped) action; must not mutate."""
        raise NotImplementedError

    def _draw(self, state: np.ndarray) -> np.ndarray:
        """The ``(size, size, 3)`` uint8 frame of ``state``."""
        raise NotImplementedError

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Whether ``state`` counts as having reached ``goal_state``."""
        return bool(self.distance(state, goal_state) < self.success_threshold)

    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """The quantity ``success_threshold`` applies to (units in the subclass)."""
        raise NotImplementedError

    def oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """A reference action that reads the true state and heads for the goal."""
        raise NotImplementedError

    # -- the Gymnasium API ------------------------------------------------------------
    @property
    def env_id(self) -> str:
        """The registered id when made by ``gymnasium.make``, else the class's default id."""
        return self.spec.id if self.spec is not None else self.default_id

    @property
    def state(self) -> np.ndarray:
        """A float64 copy of the current physical state."""
        if self._state is None:
            raise EnvError(f"{self._name()}: call reset() first")
        return self._state.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start from ``options["state"]`` if given, else from ``sample_start(self.np_random)``."""
        super().reset(seed=seed)
        options = options or {}
        if "state" in options and options["state"] is not None:
            self._state = self.check_state(options["state"])
        else:
            self._state = self.check_state(self.sample_start(self.np_random))
        return self._obs(), self._info()

    def advance(self, state: np.ndarray, action: Any) -> np.ndarray:
        """The state one step after ``state`` under ``action`` (checked and clipped), without
        touching the env: its physics as a pure function (for models of the true dynamics)."""
        return self._advance(np.asarray(state, np.float64), self.check_action(action))

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one control step. Out-of-range actions are clipped to ``action_space``."""
        if self._state is None:
            raise EnvError(f"{self._name()}: call reset() before step()")
        self._state = self._advance(self._state, self.check_action(action))
        return self._obs(), 0.0, False, False, self._info()

    def render(self) -> np.ndarray:
        """The current frame, ``(size, size, 3)`` uint8 (drawn whatever ``render_mode`` is)."""
        return self.render_state(self.state)

    def render_state(self, state: np.ndarray) -> np.ndarray:
        """The frame of any valid ``state`` (e.g. a goal image), ``(size, size, 3)`` uint8."""
        return self._draw(self.check_state(state))

    # -- checks -------------------------------------------------------------------------
    def check_action(self, action: Any) -> np.ndarray:
        """Float64 action clipped to the action space; EnvError on a wrong shape or NaN/inf."""
        shape = self.action_space.shape
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise EnvError(f"{self._name()}: action must be a float array of shape {shape}, got {action!r}") from err
        if a.shape != shape:
            raise EnvError(f"{self._name()}: action must have shape {shape}, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise EnvError(f"{self._name()}: action of shape {shape} must be finite, got {a.tolist()}")
        return np.clip(a, self.action_space.low, self.action_space.high)

    def check_state(self, state: Any) -> np.ndarray:
        """Float64 copy of ``state``; EnvError on a wrong shape or NaN/inf."""
        shape = self.observation_space.shape
        s = np.array(state, dtype=np.float64)
        if s.shape != shape or not np.all(np.isfinite(s)):
            raise EnvError(f"{self._name()}: state must be a finite array of shape {shape}, got {s.shape}")
        return s

    def _obs(self) -> np.ndarray:
        return self._state.astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {"state": self._state.copy()}

    def _name(self) -> str:
        return f"{type(self).__name__} ({self.env_id})"


class Canvas:
    """Maps world coordinates to a ``size x size`` float32 RGB image in [0, 1].

    Pixel ``(row i, col j)`` covers world x in ``x0 + [j, j + 1] * scale`` and world y in
    ``y0 + [i, i + 1] * scale``: world y grows downwards in every frame.
    """

    def __init__(self, size: int, x0: float, y0: float, extent: float, background: tuple[float, float, float]):
        self.size, self.x0, self.y0 = size, x0, y0
        self.scale = extent / size  # world units per pixel
        self.xs = (x0 + (np.arange(size) + 0.5) * self.scale).astype(np.float32)  # (W,) pixel centres
        self.ys = (y0 + (np.arange(size) + 0.5) * self.scale).astype(np.float32)  # (H,)
        self.image = np.empty((size, size, 3), np.float32)
        self.image[:] = background

    def copy(self) -> Canvas:
        """A canvas with the same mapping and a copy of the pixels (to draw over a cached background)."""
        out = object.__new__(Canvas)
        out.__dict__.update(self.__dict__)
        out.image = self.image.copy()
        return out

    def to_uint8(self) -> np.ndarray:
        """The ``(size, size, 3)`` uint8 frame."""
        return (np.clip(self.image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)

    def _window(self, xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[slice, slice] | None:
        """Rows and columns whose pixels may touch the world box (one pixel of margin)."""
        j0 = max(int(np.floor((xmin - self.x0) / self.scale)) - 1, 0)
        j1 = min(int(np.ceil((xmax - self.x0) / self.scale)) + 1, self.size)
        i0 = max(int(np.floor((ymin - self.y0) / self.scale)) - 1, 0)
        i1 = min(int(np.ceil((ymax - self.y0) / self.scale)) + 1, self.size)
        if j0 >= j1 or i0 >= i1:
            return None
        return slice(i0, i1), slice(j0, j1)

    def _blend(self, rows: slice, cols: slice, alpha: np.ndarray, color: tuple[float, float, float]) -> None:
        patch = self.image[rows, cols]  # (h, w, 3) view
        patch += alpha[..., None] * (np.asarray(color, np.float32) - patch)

    def box(self, xmin: float, ymin: float, xmax: float, ymax: float, color: tuple[float, float, float]) -> None:
        """Axis-aligned box; edge pixels weighted by the exact area they cover."""
        win = self._window(xmin, ymin, xmax, ymax)
        if win is None:
            return
        rows, cols = win
        h = self.scale / 2
        cx = np.clip(np.minimum(self.xs[cols] + h, xmax) - np.maximum(self.xs[cols] - h, xmin), 0, self.scale)
        cy = np.clip(np.minimum(self.ys[rows] + h, ymax) - np.maximum(self.ys[rows] - h, ymin), 0, self.scale)
        self._blend(rows, cols, np.outer(cy, cx) / self.scale**2, color)

    def disk(self, cx: float, cy: float, r: float, color: tuple[float, float, float]) -> None:
        """Filled disk of radius ``r`` (world units)."""
        win = self._window(cx - r, cy - r, cx + r, cy + r)
        if win is None:
            return
        rows, cols = win
        d = np.sqrt((self.xs[cols][None, :] - cx) ** 2 + (self.ys[rows][:, None] - cy) ** 2)  # (h, w)
        self._blend(rows, cols, np.clip((r - d) / self.scale + 0.5, 0.0, 1.0), color)

    def segment(self, p: np.ndarray, q: np.ndarray, half_width: float, color: tuple[float, float, float]) -> None:
        """Thick segment from ``p`` to ``q`` with round caps (a capsule)."""
        lo, hi = np.minimum(p, q) - half_width, np.maximum(p, q) + half_width
        win = self._window(lo[0], lo[1], hi[0], hi[1])
        if win is None:
            return
        rows, cols = win
        px, py = self.xs[cols][None, :] - p[0], self.ys[rows][:, None] - p[1]
        ux, uy = q[0] - p[0], q[1] - p[1]
        t = np.clip((px * ux + py * uy) / max(ux * ux + uy * uy, 1e-12), 0.0, 1.0)
        d = np.sqrt((px - t * ux) ** 2 + (py - t * uy) ** 2)
        self._blend(rows, cols, np.clip((half_width - d) / self.scale + 0.5, 0.0, 1.0), color)

    def oriented_box(
        self, cx: float, cy: float, angle: float, hx: float, hy: float, color: tuple[float, float, float]
    ) -> None:
        """Box of half-sizes ``(hx, hy)`` centred at ``(cx, cy)`` rotated by ``angle`` (radians)."""
        r = float(np.hypot(hx, hy))
        win = self._window(cx - r, cy - r, cx + r, cy + r)
        if win is None:
            return
        rows, cols = win
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = self.xs[cols][None, :] - cx, self.ys[rows][:, None] - cy
        u, v = np.abs(c * dx + s * dy) - hx, np.abs(-s * dx + c * dy) - hy  # box frame, minus half-sizes
        sdf = np.hypot(np.maximum(u, 0), np.maximum(v, 0)) + np.minimum(np.maximum(u, v), 0)
        self._blend(rows, cols, np.clip(0.5 - sdf / self.scale, 0.0, 1.0), color)


def move_point(
    pos: np.ndarray, delta: np.ndarray, boxes: np.ndarray, substeps: int
) -> tuple[np.ndarray, bool, bool]:
    """Move a point by ``delta`` without entering any solid box.

    ``boxes``: ``(K, 4)`` rows ``(xmin, ymin, xmax, ymax)`` of solid regions for the point
    (walls already grown by the agent's radius). Each of ``substeps`` equal sub-moves sweeps
    x then y; a sweep stops exactly at the first face it meets, so the point never tunnels
    and slides along walls. Returns ``(new_pos, hit_x, hit_y)``.
    """
    x, y = float(pos[0]), float(pos[1])
    dx, dy = float(delta[0]) / substeps, float(delta[1]) / substeps
    hit_x = hit_y = False
    for _ in range(substeps):
        if dx != 0.0:
            x, hx = _sweep(x, dx, y, boxes[:, 0], boxes[:, 2], boxes[:, 1], boxes[:, 3])
            hit_x |= hx
        if dy != 0.0:
            y, hy = _sweep(y, dy, x, boxes[:, 1], boxes[:, 3], boxes[:, 0], boxes[:, 2])
            hit_y |= hy
    return np.array([x, y]), hit_x, hit_y


def _sweep(c: float, d: float, o: float, lo: np.ndarray, hi: np.ndarray, olo: np.ndarray, ohi: np.ndarray):
    """Move coordinate ``c`` by ``d`` at fixed other coordinate ``o``; stop at the first face."""
    across = (olo < o) & (o < ohi)  # boxes this line passes through (touching a face is free)
    target = c + d
    if d > 0:
        faces = lo[across & (lo >= c) & (lo < target)]
        return (float(faces.min()), True) if faces.size else (target, False)
    faces = hi[across & (hi <= c) & (hi > target)]
    return (float(faces.max()), True) if faces.size else (target, False)
