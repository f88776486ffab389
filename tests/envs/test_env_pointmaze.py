import numpy as np
import pytest

from worldjepa.envs.pointmaze import (
    AGENT_R,
    HELDOUT_LAYOUT_SEEDS,
    MAX_SPEED,
    TRAIN_LAYOUT_SEEDS,
    PointMazeEnv,
    is_heldout_layout,
    procedural_layout,
)


def overlaps_wall(walls, x, y):
    """Whether the agent's collision square (half-width AGENT_R) overlaps a wall cell or leaves the grid."""
    rows, cols = walls.shape
    if not (AGENT_R <= x <= cols - AGENT_R and AGENT_R <= y <= rows - AGENT_R):
        return True
    eps = 1e-9  # touching a face is allowed
    r0, r1 = int(np.floor(y - AGENT_R + eps)), int(np.floor(y + AGENT_R - eps))
    c0, c1 = int(np.floor(x - AGENT_R + eps)), int(np.floor(x + AGENT_R - eps))
    return bool(walls[r0 : r1 + 1, c0 : c1 + 1].any())


@pytest.mark.parametrize("layout", ["umaze", "medium", "large", "procedural"])
def test_full_force_into_walls_never_enters_them(layout):
    env = PointMazeEnv(layout=layout, layout_seed=7)
    rng = np.random.default_rng(0)
    touches = 0
    for episode in range(8):
        env.reset(seed=episode)
        for t in range(150):
            if t % 25 == 0:  # full force in a fresh direction (axis-aligned or diagonal)
                action = rng.choice([-1.0, 0.0, 1.0], size=2)
                action[0] = action[0] or 1.0
            state = env.step(action)[4]["state"]
            assert not overlaps_wall(env.walls, state[0], state[1]), (layout, state)
            touches += bool(state[2] == 0.0 and action[0] != 0.0) or bool(state[3] == 0.0 and action[1] != 0.0)
    assert touches > 20  # the agent spent many steps pressed against walls


def test_double_integrator_dynamics():
    env = PointMazeEnv(layout="umaze")
    env.reset(options={"state": np.array([1.5, 1.5, 0.0, 0.0])})
    s1 = env.step(np.array([1.0, 0.0]))[4]["state"]
    np.testing.assert_allclose(s1, [1.5 + 0.45 * 0.1, 1.5, 0.45, 0.0])  # v = 5 * 1 * 0.1 * (1 - 0.1)
    for _ in range(60):
        s = env.step(np.array([1.0, 1.0]))[4]["state"]
        assert np.hypot(s[2], s[3]) <= MAX_SPEED + 1e-12


def test_procedural_layouts_are_seeded_perfect_mazes_with_a_fixed_split():
    np.testing.assert_array_equal(procedural_layout(3), procedural_layout(3))
    assert not np.array_equal(procedural_layout(3), procedural_layout(4))
    assert set(TRAIN_LAYOUT_SEEDS).isdisjoint(HELDOUT_LAYOUT_SEEDS)
    assert len(TRAIN_LAYOUT_SEEDS) == 80 and len(HELDOUT_LAYOUT_SEEDS) == 20
    assert all(is_heldout_layout(s) for s in HELDOUT_LAYOUT_SEEDS)
    assert not any(is_heldout_layout(s) for s in TRAIN_LAYOUT_SEEDS)
    assert not is_heldout_layout(PointMazeEnv(layout="procedural").layout_seed)  # the default trains
    train = {procedural_layout(s).tobytes() for s in TRAIN_LAYOUT_SEEDS}
    assert not any(procedural_layout(s).tobytes() in train for s in HELDOUT_LAYOUT_SEEDS)
    walls = procedural_layout(12)
    free = {tuple(p) for p in np.argwhere(~walls)}
    # perfect maze on 4 x 4 rooms: 16 rooms + 15 passages, all connected
    assert len(free) == 31
    seen, todo = set(), [next(iter(free))]
    while todo:
        r, c = todo.pop()
        if (r, c) in seen:
            continue
        seen.add((r, c))
        todo += [(r + dr, c + dc) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)) if (r + dr, c + dc) in free]
    assert seen == free


def test_oracle_reaches_a_goal_in_the_same_corridor():
    env = PointMazeEnv(layout="umaze")
    goal = np.array([3.5, 1.5, 0.0, 0.0])
    env.reset(options={"state": np.array([1.5, 1.5, 0.0, 0.0])})
    for _ in range(60):
        state = env.step(env.oracle_action(env.state, goal))[4]["state"]
    assert env.distance(state, goal) < 0.05
    assert env.success(state, goal)


def test_layout_seed_changes_the_frame_and_unknown_layout_is_an_error():
    a = PointMazeEnv(layout="procedural", layout_seed=0).render_state(np.array([1.5, 1.5, 0, 0]))
    b = PointMazeEnv(layout="procedural", layout_seed=1).render_state(np.array([1.5, 1.5, 0, 0]))
    assert not np.array_equal(a, b)
    from worldjepa.errors import EnvError

    with pytest.raises(EnvError, match="unknown layout"):
        PointMazeEnv(layout="spiral")
