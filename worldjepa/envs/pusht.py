"""Push-T: a round pusher slides a T-shaped block on a 512 x 512 table (pymunk physics).

The T is the Diffusion Policy one: a 120 x 30 bar over a 30 x 90 stem (table units). Its
position is its centre of mass, 40.7 units below the bar's top edge along the stem. The
pusher is a kinematic disk of radius 15: each 0.1 s step it moves in a straight line to
``pusher + 20 * action`` (clipped to the table), in 10 physics sub-steps, and shoves the
block it meets. Each step rebuilds the pymunk space from the state, so a step is a pure
function of ``(state, action)`` and ``reset(options={"state": s})`` restores the dynamics
exactly (no hidden contact cache).

Two variants of the physics, each its own id:

- ``worldjepa/PushT-v1`` (the default): the physics of Diffusion Policy's Push-T, which
  gym-pusht and stable-worldmodel keep and on which DINO-WM, PLDM and LeWM report: pymunk
  damping 0 (a body keeps none of its velocity from one sub-step to the next, so the block
  moves only while it is pushed: quasi-static pushing, as on a table with strong friction)
  and frictionless contacts (their ``body.friction = 1`` sets no pymunk property; shapes
  keep friction 0).
- ``worldjepa/PushT-v0``: the block slides on after a push (damping 0.05: it keeps 5% of its
  speed after 1 s, 74% after one step) and contacts have friction 0.5. Harder to predict and
  to plan in; kept so that v0 datasets and checkpoints stay valid (BENCHMARKS.md compares).

:class:`PushTExpert` is the noisy scripted expert used to record data: random pushes
rarely touch the block, the expert pushes it toward a random pose.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from worldjepa.envs.base import Canvas, WorldEnv
from worldjepa.errors import EnvError

TABLE = 512.0  # table side (units)
PUSHER_R = 15.0  # pusher radius (units)
MAX_DELTA = 20.0  # pusher displacement per step at |action| = 1 (units)
DT, SUBSTEPS = 0.1, 10  # control period (s), physics sub-steps
DAMPING, FRICTION = 0.0, 0.0  # v1 (reference): no velocity kept between sub-steps; frictionless
SLIDING = {"damping": 0.05, "friction": 0.5}  # v0: velocity fraction kept after 1 s; contact friction
_COM = (3600 * 15 + 2700 * 75) / 6300  # centre of mass below the bar's top edge (units)
BAR = (0.0, 15 - _COM, 60.0, 15.0)  # (centre x, centre y, half x, half y) in the block frame
STEM = (0.0, 75 - _COM, 15.0, 45.0)
MAX_SPEED, MAX_SPIN = 2000.0, 50.0  # caps on the block's velocity (units/s, rad/s)
ANGLE_THRESHOLD = math.pi / 9  # success: block angle error (rad)

_FLOOR, BLOCK, _PUSHER = (0.94, 0.94, 0.92), (0.47, 0.53, 0.6), (0.25, 0.41, 0.88)


def wrap(angle: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def block_sdf(state: np.ndarray, point: np.ndarray) -> float:
    """Signed distance (units) from ``point`` to the T of ``state`` (negative inside)."""
    c, s = math.cos(state[4]), math.sin(state[4])
    dx, dy = point[0] - state[2], point[1] - state[3]
    u, v = c * dx + s * dy, -s * dx + c * dy  # point in the block frame
    best = math.inf
    for cx, cy, hx, hy in (BAR, STEM):
        qx, qy = abs(u - cx) - hx, abs(v - cy) - hy
        best = min(best, math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0))
    return best


class PushTEnv(WorldEnv):
    """Push a T-shaped block to a goal pose.

    State / observation ``(8,)``: pusher ``(x, y)``, block ``(x, y, angle)`` and block
    velocity ``(vx, vy, omega)``; units, units/s, rad (angle in [-pi, pi)), y downwards.
    Action: ``Box(-1, 1, (2,))``, the pusher's displacement in units of 20 table units
    (clipped to the box, then the target is clipped to the table).
    Success: block position error < 20 units AND block angle error < pi/9 (DINO-WM / Diffusion
    Policy); :meth:`distance` is the position error.

    ``damping`` (fraction of a body's velocity kept after 1 s, pymunk's meaning) and
    ``friction`` (of every contact) choose the physics: the defaults are ``PushT-v1``'s,
    ``SLIDING`` is ``PushT-v0``'s (module docstring).
    """

    success_threshold: ClassVar[float] = 20.0  # units, block position error
    pusher_solid: bool = True  # False: the pusher passes through the block (the physics scenes' solidity pairs)
    success_angle_threshold: ClassVar[float] = ANGLE_THRESHOLD  # rad
    default_id = "worldjepa/PushT-v1"

    def __init__(self, render_mode: str | None = None, size: int = 64, damping: float = DAMPING,
                 friction: float = FRICTION) -> None:
        super().__init__(render_mode, size)
        try:
            import pymunk  # only Push-T needs it: keep `import worldjepa.envs` light
        except ImportError as err:
            raise EnvError("worldjepa/PushT needs pymunk: pip install 'worldjepa[pusht]'") from err
        if not (0.0 <= damping <= 1.0 and friction >= 0.0):
            raise EnvError(f"PushTEnv: damping must lie in [0, 1] and friction be >= 0, got {damping}, {friction}")

        self._pymunk = pymunk
        self.damping, self.friction = float(damping), float(friction)
        if (self.damping, self.friction) == (SLIDING["damping"], SLIDING["friction"]):
            self.default_id = "worldjepa/PushT-v0"
        v, w = MAX_SPEED, MAX_SPIN
        low = np.array([0, 0, 0, 0, -np.pi, -v, -v, -w], np.float32)
        high = np.array([TABLE, TABLE, TABLE, TABLE, np.pi, v, v, w], np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._background: Canvas | None = None

    # -- physics ------------------------------------------------------------------------
    def _advance(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        pm = self._pymunk
        space = pm.Space()
        space.damping = self.damping
        for x0, y0, x1, y1 in ((-50, -50, 0, TABLE + 50), (TABLE, -50, TABLE + 50, TABLE + 50),
                               (-50, -50, TABLE + 50, 0), (-50, TABLE, TABLE + 50, TABLE + 50)):
            wall = pm.Poly(space.static_body, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            wall.friction = self.friction
            space.add(wall)
        block = pm.Body()
        parts = []
        for cx, cy, hx, hy in (BAR, STEM):
            part = pm.Poly(block, [(cx - hx, cy - hy), (cx + hx, cy - hy), (cx + hx, cy + hy), (cx - hx, cy + hy)])
            part.density, part.friction = 1.0 / 900.0, self.friction  # 1 mass unit per 30 x 30 square
            parts.append(part)
        space.add(block, *parts)
        block.position, block.angle = (state[2], state[3]), state[4]
        block.velocity, block.angular_velocity = (state[5], state[6]), state[7]
        target = np.clip(state[:2] + MAX_DELTA * action, PUSHER_R, TABLE - PUSHER_R)
        pusher = pm.Body(body_type=pm.Body.KINEMATIC)
        pusher.position = (state[0], state[1])
        pusher.velocity = tuple((target - state[:2]) / DT)
        disk = pm.Circle(pusher, PUSHER_R)
        disk.friction = self.friction
        disk.sensor = not self.pusher_solid  # a sensor overlaps bodies without pushing them
        space.add(pusher, disk)
        for _ in range(SUBSTEPS):
            space.step(DT / SUBSTEPS)
        bx, by = block.position
        # caps far above what pushing produces; they only bound a block squeezed against a wall
        vx, vy = np.clip(block.velocity, -MAX_SPEED, MAX_SPEED)
        omega = float(np.clip(block.angular_velocity, -MAX_SPIN, MAX_SPIN))
        return np.array([target[0], target[1], bx, by, wrap(block.angle), vx, vy, omega])

    def sample_state(self, rng: np.random.Generator) -> np.ndarray:
        """Diffusion Policy's reset: pusher in [50, 450]^2, block in [100, 400]^2, any angle, at rest, apart."""
        while True:
            s = np.concatenate([rng.uniform(50, 450, 2), rng.uniform(100, 400, 2), [rng.uniform(-np.pi, np.pi)], np.zeros(3)])
            if block_sdf(s, s[:2]) > PUSHER_R:
                return s

    # -- goals --------------------------------------------------------------------------
    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Block position error (units)."""
        return float(math.hypot(state[2] - goal_state[2], state[3] - goal_state[3]))

    def angle_error(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Absolute wrapped block angle error (rad)."""
        return abs(wrap(float(state[4]) - float(goal_state[4])))

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """Position error < 20 units and angle error < pi/9."""
        return self.distance(state, goal_state) < self.success_threshold and (
            self.angle_error(state, goal_state) < self.success_angle_threshold
        )

    def oracle_action(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """The expert's noiseless push toward the goal block pose (see :func:`push_action`)."""
        return push_action(np.asarray(state, np.float64), np.asarray(goal_state, np.float64)[2:5])

    # -- drawing ------------------------------------------------------------------------
    def _draw(self, state: np.ndarray) -> np.ndarray:
        return self.draw(state)

    def draw(self, state: np.ndarray, block: bool = True, colour: tuple[float, float, float] = BLOCK) -> np.ndarray:
        """The frame of ``state``; ``block=False`` draws the table and the pusher alone, ``colour``
        is the block's (what the physics scenes change: :mod:`worldjepa.physics.pusht`)."""
        if self._background is None:
            self._background = Canvas(self.size, 0.0, 0.0, TABLE, _FLOOR)
        canvas = self._background.copy()
        x, y, th = float(state[2]), float(state[3]), float(state[4])
        c, s = math.cos(th), math.sin(th)
        # the stem is drawn 5 units into the bar so the two soft edges leave no seam
        for cx, cy, hx, hy in (BAR, (STEM[0], STEM[1] - 2.5, STEM[2], STEM[3] + 2.5)) if block else ():
            canvas.oriented_box(x + c * cx - s * cy, y + s * cx + c * cy, th, hx, hy, colour)
        canvas.disk(float(state[0]), float(state[1]), PUSHER_R, _PUSHER)
        return canvas.to_uint8()


def push_action(state: np.ndarray, goal_pose: np.ndarray) -> np.ndarray:
    """Scripted push toward ``goal_pose`` = block ``(x, y, angle)``; action in [-1, 1]^2.

    Pushes along the direction ``d`` from the block to its goal (or, when the block is there
    already, along a fixed direction to turn it), on a contact line offset sideways from the
    centre of mass in proportion to the angle error so that the push also turns the block.
    The pusher first walks to a point 100 units behind the block on that line (beyond the
    T's 79-unit reach), circling the block at 110 units when the straight way would touch it.
    """
    a, c = state[:2], state[2:4]
    err = goal_pose[:2] - c
    dist = float(np.hypot(err[0], err[1]))
    d = err / dist if dist > 10.0 else np.array([1.0, 0.0])
    n = np.array([-d[1], d[0]])
    # a push along d at lateral offset l turns the block by -l (torque = l * (n x d) = -l);
    # |l| <= 25 so the pusher (radius 15) still meets the 30-wide stem in any orientation
    lateral = float(np.clip(-60.0 * wrap(float(goal_pose[2] - state[4])), -25.0, 25.0))
    rel = a - c
    along, side = float(rel @ d), float(rel @ n)
    if along < 0.0 and abs(side - lateral) < 12.0:  # behind the block on the contact line
        target = c + lateral * n + 40.0 * d
    else:
        target = c - 100.0 * d + lateral * n
        samples = np.linspace(0.0, 1.0, 2 + int(np.hypot(*(target - a)) // 5.0))[1:]  # every <= 5 units
        if any(block_sdf(state, a + t * (target - a)) < PUSHER_R + 2.0 for t in samples):
            ang = math.atan2(rel[1], rel[0])
            goal_ang = math.atan2(target[1] - c[1], target[0] - c[0])
            ang += math.copysign(0.5, wrap(goal_ang - ang))
            target = c + 110.0 * np.array([math.cos(ang), math.sin(ang)])
    step = (target - a) / MAX_DELTA
    return (step / max(1.0, float(np.abs(step).max()))).astype(np.float32)  # keep the direction


class PushTExpert:
    """Noisy scripted expert for data collection: pushes the block toward a random pose.

    ``act`` returns :func:`push_action` toward the episode's target pose plus Gaussian noise of
    std ``noise`` (action units), clipped to [-1, 1]. A new target is drawn on ``reset`` and
    whenever the current one is reached, so recordings keep showing the block move.
    """

    def __init__(self, env: Any, rng: np.random.Generator, noise: float = 0.3) -> None:
        self.env = env.unwrapped if hasattr(env, "unwrapped") else env
        self.rng, self.noise = rng, float(noise)
        self.target = self._draw_target()

    def _draw_target(self) -> np.ndarray:
        """Block pose ``(x, y, angle)`` in [100, 400]^2 x [-pi, pi)."""
        return np.array([*self.rng.uniform(100.0, 400.0, 2), self.rng.uniform(-np.pi, np.pi)])

    def reset(self) -> None:
        """Draw a new target pose for the next episode."""
        self.target = self._draw_target()

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """Action ``(2,)`` float32 from the true state (``info["state"]``, else ``obs``)."""
        state = info.get("state") if info else None
        state = np.asarray(obs if state is None else state, np.float64)
        goal = np.concatenate([state[:2], self.target, np.zeros(3)])
        if self.env.success(state, goal):
            self.target = self._draw_target()
        a = push_action(state, self.target) + self.noise * self.rng.standard_normal(2)
        return np.clip(a, -1.0, 1.0).astype(np.float32)
