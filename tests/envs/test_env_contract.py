"""The contract every built-in environment keeps (parametrised over all registered ids)."""

import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import worldjepa.envs
from worldjepa.envs import BUILTIN_IDS, register
from worldjepa.errors import EnvError

EXPECTED_IDS = {
    "worldjepa/TwoRoom-v0", "worldjepa/TwoRoomRandomDoor-v0", "worldjepa/TwoRoomSwitch-v0", "worldjepa/PointMaze-UMaze-v0",
    "worldjepa/PointMaze-Medium-v0", "worldjepa/PointMaze-Large-v0", "worldjepa/PointMaze-Procedural-v0",
    "worldjepa/Reacher-v0", "worldjepa/PushT-v1", "worldjepa/PushT-v0", "worldjepa/Balls-v0", "worldjepa/Rooms-v0",
}


def make(env_id, **kw):
    return gym.make(env_id, render_mode="rgb_array", **kw)


def rollout(env, seed, n=15):
    """Frames and states of ``n`` seeded random steps."""
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    frames, states = [env.render()], [info["state"]]
    for _ in range(n):
        _, reward, terminated, truncated, info = env.step(rng.uniform(low, high))
        assert reward == 0.0 and not terminated and not truncated
        frames.append(env.render())
        states.append(info["state"])
    return np.stack(frames), np.stack(states)


def test_ids_registered_once_and_import_is_cheap():
    assert set(BUILTIN_IDS) == EXPECTED_IDS
    register()  # a second call must not raise or re-register
    assert all(i in gym.registry for i in BUILTIN_IDS)
    assert all(gym.registry[i].max_episode_steps is None for i in BUILTIN_IDS)
    code = ("import sys, worldjepa.envs; "
            "assert 'pymunk' not in sys.modules, 'pymunk'; "
            "assert not [m for m in sys.modules if m.startswith('worldjepa.envs.') and m != 'worldjepa.envs'], 'modules'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=worldjepa.envs.__path__[0] + "/../..")


@pytest.mark.parametrize("code", [
    "import sys, worldjepa\nassert 'gymnasium' not in sys.modules\nimport gymnasium",  # registered on its import
    "import gymnasium, worldjepa",  # already imported: registered at once
    "import worldjepa, gymnasium.spaces\nimport gymnasium",  # a submodule first
    "import worldjepa, worldjepa.envs, gymnasium",  # worldjepa.envs imports gymnasium itself
    "import gymnasium\ngymnasium.make('worldjepa:worldjepa/Reacher-v0')",  # Gymnasium's own module:id form
])
def test_import_worldjepa_registers_the_envs_with_gymnasium(code):
    """``import worldjepa; gymnasium.make("worldjepa/TwoRoom-v0")`` works whatever the import order."""
    check = ("\nenv = gymnasium.make('worldjepa/TwoRoom-v0', render_mode='rgb_array', size=16)\n"
             "env.reset(seed=0)\n"
             "assert env.render().shape == (16, 16, 3)\n"
             "gymnasium.make('worldjepa/PushT-v1')\n")
    proc = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True,
                          cwd=worldjepa.envs.__path__[0] + "/../..")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_gymnasium_check_env(env_id):
    check_env(make(env_id).unwrapped)


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_spaces_and_render_size(env_id):
    env = make(env_id, size=96)
    obs, info = env.reset(seed=0)
    assert env.observation_space.dtype == np.float32 and env.action_space.dtype == np.float32
    assert obs.dtype == np.float32 and info["state"].dtype == np.float64
    np.testing.assert_array_equal(obs, info["state"].astype(np.float32))
    frame = env.render()
    assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # something is drawn, not a blank image


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_determinism(env_id):
    f1, s1 = rollout(make(env_id), seed=11)
    f2, s2 = rollout(make(env_id), seed=11)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(f1, f2)
    _, s3 = rollout(make(env_id), seed=12)
    assert not np.array_equal(s1, s3)  # the seed matters


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_reset_from_state_is_exact(env_id):
    a, b = make(env_id), make(env_id)
    frames, states = rollout(a, seed=5, n=10)
    _, info = b.reset(seed=99, options={"state": states[-1]})
    np.testing.assert_array_equal(info["state"], states[-1])
    np.testing.assert_array_equal(b.render(), frames[-1])
    action = a.action_space.high * 0.7  # both continue identically from the restored state
    for _ in range(5):
        sa, sb = a.step(action)[4]["state"], b.step(action)[4]["state"]
        np.testing.assert_array_equal(sa, sb)


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_bad_actions_raise_env_error(env_id):
    env = make(env_id)
    env.reset(seed=0)
    for bad in (np.zeros(3), np.zeros((1, 2)), np.array([np.nan, 0.0]), np.array([0.0, np.inf]), "left"):
        with pytest.raises(EnvError) as err:
            env.step(bad)
        assert str(env.action_space.shape) in str(err.value) and env_id in str(err.value)


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_out_of_range_actions_are_clipped(env_id):
    env = make(env_id)
    _, info = env.reset(seed=3)
    start = info["state"]
    high = env.action_space.high
    big = env.step(high * np.resize([10.0, -7.0], high.shape))[4]["state"]
    env.reset(options={"state": start})
    clipped = env.step(high * np.resize([1.0, -1.0], high.shape))[4]["state"]
    np.testing.assert_array_equal(big, clipped)
    assert not np.array_equal(big, start)  # the action (or, in the action-free Balls, gravity) did something


def state_at_distance(env, goal, dist):
    """A state whose ``env.distance`` to ``goal`` is ``dist`` (moving the position the threshold reads)."""
    s = goal.copy()
    name = type(env).__name__
    if name == "ReacherEnv":  # turning the shoulder by phi moves the fingertip along a chord 2 r sin(phi / 2)
        from worldjepa.envs.reacher import fingertip

        s[0] += 2 * math.asin(dist / (2 * np.hypot(*fingertip(goal))))
    else:
        s[2 if name == "PushTEnv" else 0] += dist
    return s


@pytest.mark.parametrize("env_id", BUILTIN_IDS)
def test_success_at_the_threshold(env_id):
    env = make(env_id).unwrapped
    goal = env.sample_state(np.random.default_rng(0))
    thr = env.success_threshold
    inside, outside = state_at_distance(env, goal, thr * 0.999), state_at_distance(env, goal, thr * 1.001)
    assert env.distance(inside, goal) == pytest.approx(thr * 0.999, rel=1e-6)
    assert env.success(inside, goal) and not env.success(outside, goal)
    assert env.success(goal, goal)
