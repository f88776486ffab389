import numpy as np
import pytest

from worldjepa.envs.tworoom import AGENT_R, DOOR_HALF, MAX_STEP, WALL_HALF, WALL_X, TwoRoomEnv


def inside_solid(env, state):
    boxes = env.solid_boxes(env.door_y(state))
    x, y = state[0], state[1]
    return bool(np.any((boxes[:, 0] < x) & (x < boxes[:, 2]) & (boxes[:, 1] < y) & (y < boxes[:, 3])))


@pytest.mark.parametrize("random_door", [False, True])
def test_wall_blocks_the_agent(random_door):
    env = TwoRoomEnv(random_door=random_door)
    rng = np.random.default_rng(0)
    face = WALL_X - WALL_HALF - AGENT_R
    for _ in range(20):
        _, info = env.reset(seed=int(rng.integers(1 << 30)))
        door = env.door_y(info["state"])
        # start in the left room, on rows the door does not span (on its roomier side), push right
        y = door + (-1 if door > 32 else 1) * rng.uniform(DOOR_HALF + 4, DOOR_HALF + 8)
        s = info["state"].copy()
        s[:2] = [rng.uniform(5, 25), y]
        env.reset(options={"state": s})
        for _ in range(60):
            state = env.step(np.array([MAX_STEP, 0.0]))[4]["state"]
            assert state[0] <= face and not inside_solid(env, state)
        assert state[0] == face  # it did reach the wall, and stopped at its face
        assert abs(state[1] - y) < 1e-12  # a purely horizontal push does not slide


def test_random_walk_never_enters_a_wall_and_crosses_only_through_the_door():
    env = TwoRoomEnv(random_door=True)
    _, info = env.reset(seed=1)
    rng = np.random.default_rng(1)
    prev, crossings = info["state"], 0
    for t in range(3000):
        if t % 300 == 0:  # new episode, new door
            _, info = env.reset(seed=t)
            prev = info["state"]
        state = env.step(rng.uniform(-MAX_STEP, MAX_STEP, 2))[4]["state"]
        assert not inside_solid(env, state)
        if (prev[0] < WALL_X) != (state[0] < WALL_X):
            crossings += 1
            assert abs(state[1] - state[2]) < DOOR_HALF - AGENT_R + 1e-9
        prev = state
    assert crossings > 0  # the test exercised the door


def test_actions_are_scaled_to_the_max_norm():
    env = TwoRoomEnv()
    env.reset(options={"state": np.array([10.0, 10.0])})
    state = env.step(np.array([2.45, 2.45]))[4]["state"]
    assert np.hypot(state[0] - 10.0, state[1] - 10.0) == pytest.approx(MAX_STEP)
    assert state[0] == pytest.approx(state[1])  # direction kept
    state = env.step(np.array([1.0, 0.0]))[4]["state"]  # small actions are not scaled up
    assert state[0] == pytest.approx(10.0 + MAX_STEP / np.sqrt(2) + 1.0)


def test_oracle_reaches_a_goal_in_the_other_room_through_the_door():
    env = TwoRoomEnv(random_door=True)
    for seed in range(5):
        _, info = env.reset(seed=seed)
        s = info["state"].copy()
        s[:2] = [8.0, 8.0 + 48.0 * (seed % 2)]
        goal = s.copy()
        goal[:2] = [56.0, 56.0 - 48.0 * (seed % 2)]
        env.reset(options={"state": s})
        for _ in range(80):
            state = env.step(env.oracle_action(env.state, goal))[4]["state"]
            if env.success(state, goal):
                break
        assert env.success(state, goal), (seed, state, goal)


def test_random_door_is_part_of_the_state_and_drawn():
    env = TwoRoomEnv(random_door=True, size=64)
    doors = {round(env.reset(seed=s)[1]["state"][2], 6) for s in range(10)}
    assert len(doors) == 10
    a = env.render_state(np.array([10.0, 10.0, 20.0]))
    b = env.render_state(np.array([10.0, 10.0, 40.0]))
    col = int(WALL_X)  # the wall column: floor (bright) at the door, wall (dark) elsewhere
    assert a[20, col].mean() > 150 > b[20, col].mean()
    assert b[40, col].mean() > 150 > a[40, col].mean()
