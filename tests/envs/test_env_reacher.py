import numpy as np
import pytest

from worldjepa.envs.reacher import LINKS, MAX_VEL, ReacherEnv, fingertip, wrap


def test_fingertip_geometry():
    np.testing.assert_allclose(fingertip(np.array([0.0, 0.0, 0, 0])), [0.21, 0.0], atol=1e-12)
    np.testing.assert_allclose(fingertip(np.array([np.pi / 2, -np.pi / 2, 0, 0])), [LINKS[1], LINKS[0]], atol=1e-12)


def test_angles_stay_wrapped_and_speeds_capped():
    env = ReacherEnv()
    env.reset(options={"state": np.array([3.1, -3.1, 0.0, 0.0])})
    states = np.stack([env.step(np.array([1.0, -1.0]))[4]["state"] for _ in range(300)])
    assert np.all(states[:, :2] >= -np.pi) and np.all(states[:, :2] < np.pi)
    assert np.all(np.abs(states[:, 2:]) <= MAX_VEL)
    # full torque spins the shoulder forwards and the elbow backwards, across the +-pi seam
    assert states[5, 0] < 0 < states[0, 0] and states[5, 1] > 0 > states[0, 1]


def test_wrapped_angle_error_counts_for_distance():
    env = ReacherEnv()
    a = np.array([np.pi - 0.01, 0.0, 0, 0])
    b = np.array([-np.pi + 0.01, 0.0, 0, 0])  # 0.02 rad apart across the seam
    assert env.distance(a, b) == pytest.approx(2 * 0.21 * np.sin(0.01), rel=1e-9)
    assert wrap(np.pi) == pytest.approx(-np.pi)


@pytest.mark.parametrize("seed", range(4))
def test_oracle_pd_reaches_the_goal_pose(seed):
    env = ReacherEnv()
    env.reset(seed=seed)
    goal = env.sample_state(np.random.default_rng(100 + seed))
    for _ in range(150):
        state = env.step(env.oracle_action(env.state, goal))[4]["state"]
    assert np.all(np.abs(wrap(state[:2] - goal[:2])) < 0.01)
    assert env.success(state, goal)


def test_mirror_pose_succeeds_but_looks_different():
    env = ReacherEnv(size=64)
    t1, t2 = 0.3, 1.0
    up = np.array([t1, t2, 0, 0])
    # the other inverse-kinematics solution: same fingertip, elbow on the other side
    down = np.array([t1 + 2 * np.arctan2(LINKS[1] * np.sin(t2), LINKS[0] + LINKS[1] * np.cos(t2)), -t2, 0, 0])
    assert env.distance(up, down) < 1e-12 and env.success(up, down)
    assert np.abs(env.render_state(up).astype(int) - env.render_state(down)).sum() > 1000
