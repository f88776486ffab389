import math

import gymnasium as gym
import numpy as np
import pytest

import worldjepa.envs  # noqa: F401  (registers the ids)
from worldjepa.envs.pusht import PUSHER_R, SLIDING, TABLE, PushTEnv, PushTExpert
from worldjepa.errors import EnvError

IDS = ("worldjepa/PushT-v1", "worldjepa/PushT-v0")  # the reference physics, and the sliding block


def block_path_length(env, policy, seed, steps=100):
    obs, info = env.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        prev = info["state"][2:4]
        obs, _, _, _, info = env.step(policy(obs, info))
        total += float(np.hypot(*(info["state"][2:4] - prev)))
    return total


@pytest.mark.parametrize("env_id", IDS)
def test_expert_moves_the_block_much_more_than_random_actions(env_id):
    env = gym.make(env_id)
    expert = PushTExpert(env, np.random.default_rng(0))
    rng = np.random.default_rng(0)
    expert_len, random_len = 0.0, 0.0
    for seed in range(4):
        expert.reset()
        expert_len += block_path_length(env, expert.act, seed)
        random_len += block_path_length(env, lambda o, i: rng.uniform(-1, 1, 2), seed)
    assert expert_len > 400.0  # about 100 units of block travel per 100-step episode at least
    assert expert_len > 5 * random_len


def test_expert_is_seeded_and_redraws_its_target():
    env = PushTEnv()
    a, b = PushTExpert(env, np.random.default_rng(3)), PushTExpert(env, np.random.default_rng(3))
    np.testing.assert_array_equal(a.target, b.target)
    first = a.target.copy()
    a.reset()
    assert not np.array_equal(first, a.target)
    obs, info = env.reset(seed=0)
    quiet = PushTExpert(env, np.random.default_rng(3), noise=0.0)
    np.testing.assert_allclose(quiet.act(obs, info), quiet.act(obs, {"state": None}), atol=1e-3)  # falls back to obs
    noisy = [a.act(obs, info) for _ in range(2)]
    assert not np.array_equal(*noisy) and np.all(np.abs(noisy) <= 1.0)


@pytest.mark.parametrize("env_id", IDS)
def test_pushing_moves_the_block_and_walls_hold_it(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(options={"state": np.array([150.0, 256.0, 256.0, 256.0, 0.0, 0, 0, 0])})
    for _ in range(40):  # push right, into the right wall and beyond
        state = env.step(np.array([1.0, 0.0]))[4]["state"]
        if _ == 8:
            assert state[2] > 280.0  # the block was shoved
        assert PUSHER_R <= state[0] <= TABLE - PUSHER_R
        assert 0.0 < state[2] < TABLE and 0.0 < state[3] < TABLE
    assert state[2] > 400.0  # pressed against the right wall, still on the table


def test_success_needs_position_and_wrapped_angle():
    env = PushTEnv()
    goal = np.array([0, 0, 200.0, 200.0, math.pi - 0.1, 0, 0, 0])
    s = goal.copy()
    s[4] = -math.pi + 0.1  # 0.2 rad away across the seam
    assert env.angle_error(s, goal) == pytest.approx(0.2)
    assert env.success(s, goal)
    s[4] = wrap_to(goal[4] + math.pi / 9 * 1.01)
    assert not env.success(s, goal)
    s[4] = wrap_to(goal[4] + math.pi / 9 * 0.99)
    assert env.success(s, goal)
    s[2] += 20.0 * 1.01
    assert not env.success(s, goal)


def wrap_to(angle):
    return (angle + math.pi) % (2 * math.pi) - math.pi


@pytest.mark.parametrize("env_id", IDS)
def test_oracle_push_usually_reaches_the_goal_pose(env_id):
    env = gym.make(env_id).unwrapped
    reached = 0
    for ep in range(6):
        _, info = env.reset(seed=100 + ep)
        goal = env.sample_state(np.random.default_rng(ep))
        for _ in range(300):
            state = env.step(env.oracle_action(info["state"], goal))[4]["state"]
            info = {"state": state}
            if env.success(state, goal):
                reached += 1
                break
    assert reached >= 4


def test_t_is_drawn_with_its_bar_above_the_stem_and_rotates():
    env = PushTEnv(size=64)
    upright = env.render_state(np.array([30.0, 30.0, 256.0, 256.0, 0.0, 0, 0, 0])).astype(int)
    flipped = env.render_state(np.array([30.0, 30.0, 256.0, 256.0, math.pi, 0, 0, 0])).astype(int)
    floor = upright[63, 63]
    bar_tip, beside_stem = (28, 38), (36, 38)  # (row, col): 50 units right of the centre, above / below it
    assert np.abs(upright[bar_tip] - floor).sum() > 100 and np.abs(upright[beside_stem] - floor).sum() < 10
    mirrored_bar = (63 - 28, 63 - 38)  # turning by pi maps pixel (i, j) to (63 - i, 63 - j)
    assert np.abs(flipped[mirrored_bar] - floor).sum() > 100 and np.abs(flipped[bar_tip] - floor).sum() < 10


def test_ids_choose_the_physics():
    v1, v0 = gym.make(IDS[0]).unwrapped, gym.make(IDS[1]).unwrapped
    assert (v1.damping, v1.friction) == (0.0, 0.0) and v1.env_id == IDS[0]
    assert {"damping": v0.damping, "friction": v0.friction} == SLIDING and v0.env_id == IDS[1]
    assert PushTEnv().env_id == IDS[0] and PushTEnv(**SLIDING).env_id == IDS[1]  # also without gym.make
    with pytest.raises(EnvError, match="damping"):
        PushTEnv(damping=1.5)
    with pytest.raises(EnvError, match="friction"):
        PushTEnv(friction=-0.1)


def test_v1_block_moves_only_while_pushed_and_v0_block_slides_on():
    start = np.array([200.0, 256.0, 256.0, 256.0, math.pi / 2, 0, 0, 0])  # pusher left of the bar's end
    after = {}
    for env_id in IDS:
        env = gym.make(env_id).unwrapped
        env.reset(options={"state": start})
        for _ in range(3):  # shove the block to the right
            state = env.step(np.array([1.0, 0.0]))[4]["state"]
        assert state[2] > start[2] + 5.0, env_id
        backed = env.step(np.array([-1.0, 0.0]))[4]["state"]  # the pusher backs off
        still = env.step(np.array([-1.0, 0.0]))[4]["state"]
        after[env_id] = (float(np.hypot(*(backed[2:4] - state[2:4]))), float(np.hypot(*(still[2:4] - backed[2:4]))))
    # quasi-static: one sub-step's drift at the pushing speed (200 units/s x 0.01 s), then nothing
    assert after[IDS[0]][0] < 2.5 and after[IDS[0]][1] < 1e-6
    assert min(after[IDS[1]]) > 5.0  # sliding: it keeps going
