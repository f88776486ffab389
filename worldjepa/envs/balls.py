"""Falling and bouncing balls (pymunk): a small action-free physics scene.

Three balls of radius 0.6 in a 10 x 10 box (units; y grows downwards, as in frames) fall
under gravity (9.81 units/s^2), bounce off the walls and off each other (restitution 0.9,
no friction). A step is 0.05 s in 5 pymunk sub-steps; each step rebuilds the space from the
state, so a step is a pure function of the state and ``reset(options={"state": s})``
restores the dynamics exactly. Speeds are capped at 25 units/s.

Nothing is controlled: the action space is ``Box(0, 0, (1,))``, whose only action is 0,
kept so that every pipeline that records and reads actions (collect, train, eval) works
unchanged; a world model trained on it conditions on a constant, i.e. it is action-free.
:meth:`BallsEnv.simulate` also runs the physics with one ball's gravity reversed or two
balls passing through each other (what the violation-of-expectation scenes need).
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
from gymnasium import spaces

from worldjepa.envs.base import Canvas, WorldEnv
from worldjepa.errors import EnvError

BOX = 10.0  # side of the box (units)
RADIUS = 0.6  # ball radius (units)
BALLS = 3
GRAVITY = 9.81  # units/s^2, towards +y (down in frames)
DT, SUBSTEPS = 0.05, 5  # s per step, pymunk sub-steps per step
RESTITUTION = 0.9  # of every bounce (pymunk multiplies the two shapes' elasticities: sqrt on each)
MAX_SPEED = 25.0  # units/s
START_SPEED = 5.0  # start velocities uniform in [-5, 5]^2 units/s
WALL = 0.4  # drawn thickness of the box's walls (units), outside the box
COLOURS = ((0.85, 0.1, 0.1), (0.1, 0.6, 0.2), (0.15, 0.3, 0.85))  # red, green, blue
_FLOOR, _WALL = (0.94, 0.94, 0.92), (0.15, 0.15, 0.2)


class BallsEnv(WorldEnv):
    """Balls in a box under gravity.

    State / observation ``(4 * 3,)``: ``(x, y, vx, vy)`` of each ball (units, units/s).
    Action: ``Box(0, 0, (1,))``, ignored. ``distance``: the root of the summed squared ball
    displacements (units); success below 0.5 (a goal is a whole scene).
    """

    success_threshold: ClassVar[float] = 0.5  # units
    default_id = "worldjepa/Balls-v0"

    def __init__(self, render_mode: str | None = None, size: int = 64) -> None:
        super().__init__(render_mode, size)
        try:
            import pymunk  # only the pymunk scenes need it: keep `import worldjepa.envs` light
        except ImportError as err:
            raise EnvError("worldjepa/Balls-v0 needs pymunk: pip install 'worldjepa[balls]'") from err
        self._pymunk = pymunk
        low = np.tile([0.0, 0.0, -MAX_SPEED, -MAX_SPEED], BALLS).astype(np.float32)
        high = np.tile([BOX, BOX, MAX_SPEED, MAX_SPEED], BALLS).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(0.0, 0.0, shape=(1,), dtype=np.float32)
        self._background: Canvas | None = None

    # -- physics ------------------------------------------------------------------------
    def simulate(self, state: np.ndarray, gravity: Sequence[float] | None = None,
                 ghosts: tuple[int, int] | None = None) -> np.ndarray:
        """The state one step after ``state``; ``gravity`` scales each ball's gravity (1: normal,
        -1: reversed), ``ghosts`` is a pair of balls that pass through each other."""
        pm = self._pymunk
        space = pm.Space()
        space.gravity = (0.0, GRAVITY)
        e = float(np.sqrt(RESTITUTION))
        for a, b in (((0, 0), (BOX, 0)), ((BOX, 0), (BOX, BOX)), ((BOX, BOX), (0, BOX)), ((0, BOX), (0, 0))):
            wall = pm.Segment(space.static_body, (a[0], a[1]), (b[0], b[1]), 0.0)
            wall.elasticity = e
            space.add(wall)
        s = np.asarray(state, np.float64).reshape(BALLS, 4)
        bodies = []
        for i, (x, y, vx, vy) in enumerate(s):
            body = pm.Body(1.0, pm.moment_for_circle(1.0, 0.0, RADIUS))
            body.position, body.velocity = (x, y), (vx, vy)
            scale = 1.0 if gravity is None else float(gravity[i])
            if scale != 1.0:
                body.velocity_func = _scaled_gravity(scale)
            ball = pm.Circle(body, RADIUS)
            ball.elasticity = e
            if ghosts is not None and i in ghosts:
                ball.filter = pm.ShapeFilter(group=1)  # shapes of one group never collide with each other
            space.add(body, ball)
            bodies.append(body)
        for _ in range(SUBSTEPS):
            space.step(DT / SUBSTEPS)
        out = np.array([[*b.position, *b.velocity] for b in bodies])  # (BALLS, 4)
        speed = np.hypot(out[:, 2], out[:, 3])[:, None]
        out[:, 2:] *= np.minimum(1.0, MAX_SPEED / np.maximum(speed, 1e-12))
        out[:, :2] = np.clip(out[:, :2], 0.0, BOX)
        return out.reshape(-1)

    def _advance(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        return self.simulate(state)

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """Balls at uniform positions clear of the walls and of each other, velocities uniform in [-5, 5]^2."""
        pos: list[np.ndarray] = []
        while len(pos) < BALLS:
            p = rng.uniform(RADIUS * 1.5, BOX - RADIUS * 1.5, 2)
            if all(np.hypot(*(p - q)) > 2.5 * RADIUS for q in pos):
                pos.append(p)
        vel = rng.uniform(-START_SPEED, START_SPEED, (BALLS, 2))
        return np.concatenate([np.stack(pos), vel], 1).reshape(-1)

    # -- goals --------------------------------------------------------------------------
    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Root of the summed squared displacements of the balls (units)."""
        d = (np.asarray(state) - np.asarray(goal_state)).reshape(BALLS, 4)[:, :2]
        return float(np.sqrt((d * d).sum()))

    def oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """The only action (nothing is controlled)."""
        return np.zeros(1, np.float32)

    # -- drawing ------------------------------------------------------------------------
    def _draw(self, state: np.ndarray, colours: Sequence[tuple[float, float, float]] = COLOURS) -> np.ndarray:
        if self._background is None:
            bg = Canvas(self.size, -WALL, -WALL, BOX + 2 * WALL, _FLOOR)
            for box in ((-WALL, -WALL, BOX + WALL, 0), (-WALL, BOX, BOX + WALL, BOX + WALL),
                        (-WALL, 0, 0, BOX), (BOX, 0, BOX + WALL, BOX)):
                bg.box(*box, _WALL)
            self._background = bg
        canvas = self._background.copy()
        for (x, y, _, _), colour in zip(np.asarray(state).reshape(BALLS, 4), colours):
            canvas.disk(float(x), float(y), RADIUS, colour)
        return canvas.to_uint8()


def _scaled_gravity(scale: float):
    """A pymunk velocity function applying ``scale`` times the space's gravity to one body."""
    import pymunk

    def update(body, gravity, damping, dt):  # noqa: ANN001 (pymunk's callback signature)
        pymunk.Body.update_velocity(body, (gravity[0] * scale, gravity[1] * scale), damping, dt)

    return update


__all__ = ["BALLS", "BOX", "BallsEnv", "COLOURS", "RADIUS"]
