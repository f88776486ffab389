"""worldjepa/Balls-v0 and its violations: the physics is right, and each impossible clip breaks its rule."""

import numpy as np
import pytest

from worldjepa.envs import balls as B
from worldjepa.physics.balls import YELLOW, BallsScene
from worldjepa.physics.scenes import recolour, roll
from worldjepa.physics.voe import generate_pairs, scene_for

SIZE = 32
ENV = "worldjepa/Balls-v0"


@pytest.fixture(scope="module")
def scene():
    s = scene_for(ENV, SIZE)
    assert isinstance(s, BallsScene)
    return s


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(ENV, 3, SIZE, seed=1)


def balls(states):
    return np.asarray(states).reshape(len(states), B.BALLS, 4)  # (T, BALLS, x y vx vy)


def free_steps(scene, states, i):
    """Steps t whose move t -> t+1 had nothing near ball i."""
    return [t for t in range(len(states) - 1) if scene.clear(states[t:t + 2], i)]


def test_balls_fall_bounce_and_collide(scene):
    env = scene.env
    s = np.array([5, 2, 1, 0, 2, 8, 0, 0, 8, 8, 0, 0], np.float64)  # ball 0 in the air, 1 and 2 resting low
    nxt = env.simulate(s)
    assert nxt[3] == pytest.approx(B.GRAVITY * B.DT, rel=1e-6)  # vy grows by g dt in free fall
    assert nxt[0] - s[0] == pytest.approx(1 * B.DT)
    up = env.simulate(s, gravity=[-1, 1, 1])
    assert up[3] == pytest.approx(-B.GRAVITY * B.DT, rel=1e-6)
    drop = roll(env, np.array([5, 5, 0, 0, 1, 1.5, 0, 0, 9, 1.5, 0, 0], np.float64), np.zeros((60, 1)))
    b0 = balls(drop)[:, 0]
    assert (b0[:, 1] <= B.BOX).all() and b0[:, 3].min() < -1  # it hit the floor and bounced back up
    top = [b0[t, 1] for t in range(1, 59) if b0[t - 1, 3] < 0 <= b0[t + 1, 3]]  # apexes after bounces
    assert top and 5 < top[0] < B.BOX - B.RADIUS  # lower than where it fell from (restitution < 1)
    head_on = np.array([3, 5, 4, 0, 7, 5, -4, 0, 5, 9.4, 0, 0], np.float64)
    after = balls(roll(env, head_on, np.zeros((10, 1))))
    assert after[-1, 0, 2] < 0 < after[-1, 1, 2]  # they bounced off each other
    through = balls(np.stack([head_on] + [env.simulate(head_on, ghosts=(0, 1))]))
    assert through[-1, 0, 2] == pytest.approx(4) and through[-1, 1, 2] == pytest.approx(-4)  # ghosts: untouched


def test_twins_identical_before_the_event_and_possible_is_the_physics(scene, pairs):
    assert {p.kind for p in pairs} == set(scene.kinds)
    for p in pairs:
        assert np.array_equal(p.possible[:p.event], p.impossible[:p.event])
        assert not np.array_equal(p.possible[p.event], p.impossible[p.event])
        assert p.actions.shape == (len(p.possible) - 1, 1) and not p.actions.any()
        np.testing.assert_array_equal(p.states[0], roll(scene.env, p.states[0][0], p.actions))


def test_gravity_pulls_one_ball_up_and_the_twins_balls_down(scene, pairs):
    for p in (q for q in pairs if q.kind == "gravity"):
        ps, imp = balls(p.states[0]), balls(p.states[1])
        i = int(np.argmax(np.abs(imp - ps)[p.event, :, 3]))  # the ball that went astray
        assert np.allclose(np.delete(imp - ps, i, axis=1)[p.event], 0)  # the others are untouched at first
        for states, sign in ((p.states[0], 1), (p.states[1], -1)):
            steps = [t for t in free_steps(scene, states, i) if p.event - 1 <= t < p.event + 4]
            dv = [balls(states)[t + 1, i, 3] - balls(states)[t, i, 3] for t in steps]
            assert len(dv) == 5 and np.allclose(dv, sign * B.GRAVITY * B.DT, rtol=1e-6)


def test_collision_the_pair_passes_through_and_the_twin_never_overlaps(pairs):
    def closest(states):
        pos = balls(states)[:, :, :2]
        return min(np.hypot(*(pos[:, i] - pos[:, j]).T).min() for i in range(3) for j in range(i + 1, 3))

    for p in (q for q in pairs if q.kind == "collision"):
        assert closest(p.states[1]) < 1.5 * B.RADIUS  # centres closer than 1.5 radii: through each other
        assert closest(p.states[0]) > 2 * B.RADIUS - 0.2  # contact, at most pymunk's small overlap


def test_teleport_continuity_permanence_colour(scene, pairs):
    step = B.MAX_SPEED * B.DT
    for p in pairs:
        ps, imp, e = balls(p.states[0]), balls(p.states[1]), p.event
        if p.kind == "teleport":
            jump = np.hypot(*(imp[e, :, :2] - imp[e - 1, :, :2]).T)  # (BALLS,)
            assert jump.max() >= 3.0 - step and (np.hypot(*np.diff(ps[:, :, :2], axis=0).T) <= step).all()
        elif p.kind == "continuity":
            i = int(np.argmax(np.abs(imp[e, :, 2] - ps[e, :, 2])))
            assert imp[e, i, 2] == pytest.approx(-ps[e, i, 2], abs=1e-9) and abs(ps[e, i, 2]) >= 2.0
            assert scene.clear(p.states[0][e - 1:e + 5], i) and scene.clear(p.states[1][e - 1:e + 5], i)
        elif p.kind in ("permanence", "colour"):
            np.testing.assert_array_equal(p.states[0], p.states[1])
            s = p.states[0]
            hidden = [i for i in range(B.BALLS) if np.array_equal(
                p.impossible[e], scene.env.render_state(scene.hide(s[e], i)) if p.kind == "permanence" else
                recolour(p.possible[e], scene.env.render_state(scene.hide(s[e], i)), B.COLOURS[i], YELLOW))]
            assert len(hidden) == 1
