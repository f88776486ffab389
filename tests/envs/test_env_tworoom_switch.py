import numpy as np
import pytest

from worldjepa.envs.tworoom import AGENT_R, DOOR_HALF, DOOR_Y, MAX_STEP, WALL_HALF, WALL_X, TwoRoomEnv
from worldjepa.envs.tworoom_switch import LEFT_X, RIGHT_X, SWITCH_R, SWITCH_XY, TwoRoomSwitchEnv

FACE = WALL_X - WALL_HALF - AGENT_R  # the left face of the wall (and of the closed door) for the agent's centre


def test_closed_door_blocks_pushes_and_random_walks():
    env = TwoRoomSwitchEnv()
    for y in np.linspace(DOOR_Y - DOOR_HALF, DOOR_Y + DOOR_HALF, 7):  # straight at the door, across its span
        env.reset(options={"state": np.array([20.0, y, 0.0])})
        for _ in range(20):
            state = env.step(np.array([MAX_STEP, 0.0]))[4]["state"]
        np.testing.assert_array_equal(state, [FACE, y, 0.0])  # stopped at the face, no slide, still closed
    rng = np.random.default_rng(0)
    at_wall = 0
    for episode in range(20):
        env.reset(options={"state": np.array([rng.uniform(15, LEFT_X[1]), rng.uniform(20, 44), 0.0])})
        for t in range(100):
            if t % 20 == 0:  # a fresh bias toward the door (mostly rightwards, some up or down)
                bias = np.array([rng.uniform(0.5, 1.0), rng.uniform(-0.5, 0.5)]) * MAX_STEP
            state = env.step(bias + rng.uniform(-1.0, 1.0, 2))[4]["state"]
            if state[2] == 0.0:
                assert state[0] <= FACE, (episode, t, state)
            at_wall += bool(state[0] == FACE)
    assert at_wall > 200  # the walks spent many steps pressed against the wall and the door


def test_touching_the_switch_opens_the_door_for_good():
    env = TwoRoomSwitchEnv()
    reach = SWITCH_R + AGENT_R
    s = np.array([SWITCH_XY[0] + reach + 0.2, SWITCH_XY[1], 0.0])
    assert env.advance(s, np.array([-0.1, 0.0]))[2] == 0.0  # 0.1 short of the pad's reach
    np.testing.assert_allclose(env.advance(s, np.array([-0.3, 0.0])), [s[0] - 0.3, s[1], 1.0], atol=1e-12)  # the pure step
    # a quick pass over the pad's edge registers even when the step starts and ends out of reach
    s = np.array([SWITCH_XY[0] - 1.2, SWITCH_XY[1] + reach - 0.1, 0.0])
    e = env.advance(s, np.array([MAX_STEP, 0.0]))
    assert np.hypot(e[0] - SWITCH_XY[0], e[1] - SWITCH_XY[1]) > reach and e[2] == 1.0
    env.reset(options={"state": np.array([20.0, 20.0, 0.0])})
    opened_at = None
    for t in range(20):
        state = env.step(np.asarray(SWITCH_XY) - env.state[:2])[4]["state"]
        if state[2] == 1.0:
            opened_at = state
            break
    assert opened_at is not None and env.touches_switch(opened_at)
    rng = np.random.default_rng(1)
    crossed = False
    for t in range(300):  # wander off through the door and back, noisily: it stays open
        goal = np.array([50.0 if t < 150 else 10.0, rng.uniform(5, 59), 1.0])
        state = env.step(env.oracle_action(env.state, goal) + rng.uniform(-1.5, 1.5, 2))[4]["state"]
        assert state[2] == 1.0
        crossed |= state[0] > WALL_X
    assert crossed


def test_door_and_switch_are_drawn():
    env = TwoRoomSwitchEnv(size=64)
    closed, opened = env.render_state(np.array([20.0, 50.0, 0.0])), env.render_state(np.array([20.0, 50.0, 1.0]))
    door = closed[int(DOOR_Y) - 4 : int(DOOR_Y) + 4, int(WALL_X) - 1 : int(WALL_X) + 1]  # (rows = y, cols = x)
    assert door.mean() < 80 and opened[int(DOOR_Y) - 4 : int(DOOR_Y) + 4, int(WALL_X) - 1 : int(WALL_X) + 1].mean() > 200
    pad = (int(SWITCH_XY[1]), int(SWITCH_XY[0]))
    assert closed[pad][0] > 200 > opened[pad][0] and opened[pad][1] > closed[pad][1]  # amber, then green
    diff = np.any(closed != opened, axis=2)
    rows, cols = np.nonzero(diff)  # only the door and the pad change
    near_pad = np.hypot(cols + 0.5 - SWITCH_XY[0], rows + 0.5 - SWITCH_XY[1]) < SWITCH_R + 1.5
    near_door = (np.abs(cols + 0.5 - WALL_X) < 2) & (np.abs(rows + 0.5 - DOOR_Y) < DOOR_HALF + 1)
    assert np.all(near_pad | near_door) and near_pad.any() and near_door.any()


def test_starts_goals_and_exact_restore():
    env = TwoRoomSwitchEnv()
    starts = np.stack([env.reset(seed=s)[1]["state"] for s in range(200)])
    closed = starts[:, 2] == 0.0  # the task's situation: left room, door closed ...
    assert 0.35 < closed.mean() < 0.65 and np.all((LEFT_X[0] <= starts[closed, 0]) & (starts[closed, 0] <= LEFT_X[1]))
    assert not any(env.touches_switch(s) for s in starts[closed])
    assert np.all(starts[~closed, 2] == 1.0) and np.any(starts[~closed, 0] > WALL_X)  # ... else open, anywhere
    rng = np.random.default_rng(0)
    goals = np.stack([env.sample_state(rng) for _ in range(50)])
    assert np.all(goals[:, 2] == 1.0) and np.all((RIGHT_X[0] <= goals[:, 0]) & (goals[:, 0] <= RIGHT_X[1]))
    for s in (np.array([40.0, 32.0, 1.0]), np.array([10.3, 50.7, 0.0]), np.array([20.0, 32.0, 1.0])):
        _, info = env.reset(seed=3, options={"state": s})
        np.testing.assert_array_equal(info["state"], s)
        np.testing.assert_array_equal(env.render(), env.render_state(s))
    env.step(np.array([MAX_STEP, 0.0]))  # restored open door: the agent goes through
    assert env.state[0] > 20.0 + MAX_STEP - 1e-9


def test_oracle_goes_to_the_switch_first_and_flat_controllers_stay_in_the_left_room():
    env = TwoRoomSwitchEnv()
    rng = np.random.default_rng(0)
    pairs = [(env._left_start(rng, door=0.0), env.sample_state(rng)) for _ in range(100)]
    reached = 0
    for start, goal in pairs:
        env.reset(options={"state": start})
        for _ in range(200):
            state = env.step(env.oracle_action(env.state, goal))[4]["state"]
            if env.success(state, goal):
                reached += 1
                break
    assert reached >= 98
    # heading straight for the goal, or for the door as TwoRoom's oracle does: blocked by the closed door
    flat = {"straight": env.straight_oracle_action, "door": lambda s, g: TwoRoomEnv.oracle_action(env, s, g)}
    for name, act in flat.items():
        stuck = 0
        for start, goal in pairs[:50]:
            env.reset(options={"state": start})
            for _ in range(60):
                state = env.step(act(env.state, goal))[4]["state"]
            stuck += bool(state[0] < WALL_X and state[2] == 0.0 and not env.success(state, goal))
        assert stuck >= 47, name  # only a start right by the pad may press it on the way


def test_with_the_door_open_it_moves_exactly_as_tworoom():
    switch, plain = TwoRoomSwitchEnv(), TwoRoomEnv()
    rng = np.random.default_rng(2)
    s = np.array([20.0, 30.0, 1.0])
    p, sides = s[:2].copy(), set()
    for t in range(400):  # noisy trips between the rooms, with actions past the box (clipped and rescaled alike)
        goal = np.array([55.0 if t // 100 % 2 == 0 else 8.0, 32.0])
        a = plain.oracle_action(p, goal) * 1.5 + rng.uniform(-2.0, 2.0, 2)
        s, p = switch.advance(s, a), plain.advance(p, a)
        np.testing.assert_array_equal(s[:2], p)
        sides.add(bool(p[0] > WALL_X))
    assert sides == {False, True}


@pytest.mark.parametrize("door", [0.0, 1.0])
def test_oracle_in_the_same_room_goes_straight(door):
    env = TwoRoomSwitchEnv()
    s, g = np.array([20.0, 40.0, door]), np.array([25.0, 50.0, 1.0])
    np.testing.assert_allclose(env.oracle_action(s, g), env.straight_oracle_action(s, g))
