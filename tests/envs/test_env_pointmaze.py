import numpy as np
import pytest

from worldjepa.envs.pointmaze import (
    AGENT_R,
    HELDOUT_LAYOUT_SEEDS,
    MAX_SPEED,
    TRAIN_LAYOUT_SEEDS,
    PointMazeEnv,
    cell_distances,
    is_heldout_layout,
    parse_layout,
    procedural_layout,
    shortest_path,
)

# a loop: from S, G is 8 moves down the left side (10 by the right); the cell above G is 8 by the right
# (10 by the left); P is a walled-in pocket
HAND_MADE = """
#######
#S....#
#.###.#
#.#...#
#.#.###
#.#G#P#
#...###
#######"""


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


def test_bfs_finds_the_known_shortest_path_on_a_hand_made_layout():
    lines = HAND_MADE.strip().splitlines()
    find = {ch: (r, line.index(ch)) for r, line in enumerate(lines) for ch in "SGP" if ch in line}
    walls = parse_layout(HAND_MADE.replace("S", ".").replace("G", ".").replace("P", "."))
    dist = cell_distances(walls, find["G"])
    assert dist[find["S"]] == 8 and dist[find["G"]] == 0
    assert dist[find["P"]] == -1 and np.all(dist[walls] == -1)  # cut off, and walls
    path = shortest_path(dist, find["S"])
    assert path == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (6, 2), (6, 3), (5, 3)]  # down the left side
    assert shortest_path(dist, find["P"]) == []
    # the right side this time, though the search tries moving down first
    assert shortest_path(cell_distances(walls, (3, 3)), find["S"]) == [
        (1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (3, 4), (3, 3)]
    assert cell_distances(walls, (0, 0)).max() == -1  # a goal in a wall reaches nothing


def far_pairs(env, n, seed, min_cells=6.0):
    rng = np.random.default_rng(seed)
    pairs = []
    while len(pairs) < n:
        start, goal = env.sample_state(rng), env.sample_state(rng)
        if env.path_length(start, goal) >= min_cells:
            pairs.append((start, goal))
    return pairs


@pytest.mark.parametrize("layout", ["medium", "large"])
def test_path_oracle_reaches_far_goals_round_the_walls(layout):
    env = PointMazeEnv(layout=layout)
    reached, per_cell = 0, []
    for start, goal in far_pairs(env, 60, seed=0):
        state = start
        for t in range(200):  # the far-goal budget of the protocol
            state = env.advance(state, env.oracle_action(state, goal))
            if env.success(state, goal):
                reached += 1
                per_cell.append((t + 1) / env.path_length(start, goal))
                break
    assert reached >= 59, reached  # >= 98% of 60
    assert np.mean(per_cell) < 8.0  # ~6.5 steps per cell (0.2 cells a step at most): no dawdling


def test_straight_controller_is_blocked_by_a_wall_that_the_oracle_goes_round():
    env = PointMazeEnv(layout="medium")
    start, goal = np.array([1.5, 1.5, 0.0, 0.0]), np.array([5.5, 1.5, 0.0, 0.0])  # cells (1, 3), (1, 4) are walls
    assert env.path_length(start, goal) >= 6 and env.distance(start, goal) == 4.0
    results = {}
    for name in ("oracle_action", "straight_oracle_action"):
        state = start
        for t in range(200):
            state = env.advance(state, getattr(env, name)(state, goal))
            if env.success(state, goal):
                break
        results[name] = (env.success(state, goal), state)
    assert results["oracle_action"][0]
    ok, state = results["straight_oracle_action"]
    assert not ok and state[0] < 3.0 - AGENT_R + 1e-9 and abs(state[1] - 1.5) < 0.05  # pressed on the wall


@pytest.mark.parametrize("layout", ["medium", "large"])
def test_path_length_is_nearly_symmetric_and_at_least_the_straight_distance(layout):
    env = PointMazeEnv(layout=layout)
    rng = np.random.default_rng(1)
    for _ in range(300):
        a, b = env.sample_state(rng), env.sample_state(rng)
        ab, ba = env.path_length(a, b), env.path_length(b, a)
        assert ab >= env.distance(a, b) - 1e-12
        assert len(env.path(a, b)) == len(env.path(b, a))  # the same number of moves either way
        assert abs(ab - ba) < 1.0  # only the end pieces of tied shortest paths may differ
        n = len(env.path(a, b)) - 1
        assert max(n - 2, 0) <= ab <= n + 2.0  # about the number of moves
    a = np.array([1.3, 1.7, 0.0, 0.0])
    assert env.path_length(a, np.array([1.8, 1.2, 0, 0])) == pytest.approx(env.distance(a, np.array([1.8, 1.2])))


def test_per_episode_training_layouts():
    """``layout_seed='train'`` draws a training maze at every reset (a world model that must read the
    walls from the frame); a recorded state names no maze, so restoring one is refused."""
    from worldjepa.errors import EnvError

    env = PointMazeEnv(layout="procedural", layout_seed="train")
    seen = set()
    for seed in range(12):
        env.reset(seed=seed)
        assert env.layout_seed in TRAIN_LAYOUT_SEEDS
        assert not env.walls[env.cell(env.state[:2])]  # the start lies in the drawn maze
        seen.add(env.walls.tobytes())
    assert len(seen) > 5
    env.reset(seed=3)
    again = env.layout_seed
    env.reset(seed=3)
    assert env.layout_seed == again  # seeded
    with pytest.raises(EnvError, match="cannot be restored"):
        env.reset(options={"state": np.array([1.5, 1.5, 0.0, 0.0])})
    with pytest.raises(EnvError, match="procedural"):
        PointMazeEnv(layout="medium", layout_seed="train")
    with pytest.raises(EnvError, match="int or 'train'"):
        PointMazeEnv(layout="procedural", layout_seed="x")
