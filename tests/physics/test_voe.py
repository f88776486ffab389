"""Violation-of-expectation pairs: twins identical before the event, and the impossible clip
really breaks its rule while the possible one never does."""

import numpy as np
import pytest

from worldjepa.envs import tworoom as tr
from worldjepa.errors import WorldJepaError
from worldjepa.physics.scenes import recolour, roll
from worldjepa.physics.voe import VIOLATIONS, generate_pairs, scene_for

SIZE = 32
ENVS = ["worldjepa/TwoRoom-v0", "worldjepa/PointMaze-Medium-v0", "worldjepa/TwoRoomSwitch-v0", "worldjepa/Rooms-v0"]


@pytest.fixture(scope="module", params=ENVS)
def drawn(request):
    return request.param, scene_for(request.param, SIZE), generate_pairs(request.param, 3, SIZE, seed=1)


def by_kind(pairs, kind):
    out = [p for p in pairs if p.kind == kind]
    assert len(out) == 3
    return out


def test_twins_are_identical_before_the_event_and_differ_at_it(drawn):
    _, scene, pairs = drawn
    assert {p.kind for p in pairs} == set(scene.kinds) and set(scene.kinds) <= set(VIOLATIONS)
    for p in pairs:
        T = len(p.possible)
        assert p.possible.shape == p.impossible.shape == (T, SIZE, SIZE, 3) and p.possible.dtype == np.uint8
        assert p.actions.shape == (T - 1, 2) and p.actions.dtype == np.float32
        assert np.array_equal(p.possible[:p.event], p.impossible[:p.event])
        assert np.array_equal(p.states[0][:p.event], p.states[1][:p.event])
        assert not np.array_equal(p.possible[p.event], p.impossible[p.event])
        assert 16 <= p.event <= T - 16


def test_the_possible_clip_is_the_envs_own_physics_under_the_recorded_actions(drawn):
    _, scene, pairs = drawn
    for p in pairs:
        np.testing.assert_array_equal(p.states[0], roll(scene.env, p.states[0][0], p.actions))
        np.testing.assert_array_equal(p.possible, np.stack([scene.env.render_state(s) for s in p.states[0]]))


def test_the_same_seed_draws_the_same_pairs():
    a, b = (generate_pairs(ENVS[0], 2, SIZE, seed=4, kinds=["teleport", "solidity"]) for _ in range(2))
    assert all(np.array_equal(x.impossible, y.impossible) and x.event == y.event for x, y in zip(a, b))
    c = generate_pairs(ENVS[0], 2, SIZE, seed=5, kinds=["teleport", "solidity"])
    assert not np.array_equal(a[0].impossible, c[0].impossible)


@pytest.mark.parametrize("env_id", [ENVS[0], ENVS[2]])
def test_solidity_tworoom_crosses_the_wall_away_from_the_door_and_the_twin_never_does(env_id):
    pairs = by_kind(generate_pairs(env_id, 3, SIZE, seed=2, kinds=["solidity"]), "solidity")
    for p in pairs:
        (ps, imp), x0 = p.states, p.states[0][0, 0]
        left = x0 < tr.WALL_X  # the side it starts on
        near, far = (tr.WALL_X - tr.WALL_HALF - tr.AGENT_R, tr.WALL_X + tr.WALL_HALF + tr.AGENT_R)[::1 if left else -1]
        side = 1 if left else -1
        assert (side * (ps[:, 0] - near) <= 1e-9).all()  # the possible twin stays on its side of the wall's face
        assert side * (imp[-1, 0] - far) > 0  # the impossible one ends beyond the far face: in the other room
        # ... without ever coming near the door: the wall was in its way all along
        assert (np.abs(imp[:, 1] - tr.DOOR_Y) > tr.DOOR_HALF).all()
        inside = np.abs(imp[:, 0] - tr.WALL_X) < tr.WALL_HALF  # the centre inside the wall itself
        assert inside.any() and not (np.abs(ps[:, 0] - tr.WALL_X) < tr.WALL_HALF + tr.AGENT_R).any()


def test_tworoomswitch_clips_show_the_closed_door_and_a_teleport_keeps_it():
    env_id = ENVS[2]
    scene = scene_for(env_id, SIZE)
    pairs = generate_pairs(env_id, 6, SIZE, seed=3, kinds=["teleport", "permanence"])
    closed = [p for p in pairs if p.states[0][p.event, 2] < 0.5]
    assert 0 < len(closed) < len(pairs)  # the env's own starts: the door closed in some clips, open in others
    for p in pairs:
        ps, imp = p.states
        if (ps[:, 2] < 0.5).all():  # a door closed all along: the possible twin never changes room
            assert ((ps[:, 0] < tr.WALL_X) == (ps[0, 0] < tr.WALL_X)).all()
        if p.kind == "teleport":  # the same room, the same door, never onto the switch
            assert imp[p.event, 2] == imp[p.event - 1, 2]
            assert (imp[p.event, 0] < tr.WALL_X) == (imp[p.event - 1, 0] < tr.WALL_X)
            assert not scene.env.touches_switch(imp[p.event, :2])


def test_solidity_rooms_passes_into_the_next_room_through_a_wall_and_the_twin_never_does():
    from worldjepa.envs import rooms as rm

    for p in generate_pairs(ENVS[3], 3, SIZE, seed=2, kinds=["solidity"]):
        ps, imp = p.states
        assert len(set(rm.rooms_of(ps).tolist())) == 1  # the possible twin stays in its room
        assert rm.room_of(imp[-1]) != rm.room_of(imp[0])  # the impossible one ends in the next
        inside = [((rm.WALLS[:, 0] < x) & (x < rm.WALLS[:, 2]) & (rm.WALLS[:, 1] < y) & (y < rm.WALLS[:, 3])).any()
                  for x, y in imp[:, :2]]
        assert any(inside)  # ... through the wall itself, not a door
        assert not np.array_equal(p.possible[-1], p.impossible[-1])


def test_solidity_pointmaze_enters_a_wall_cell_and_the_twin_never_does():
    scene = scene_for(ENVS[1], SIZE)
    walls = scene.env.walls
    for p in generate_pairs(ENVS[1], 3, SIZE, seed=2, kinds=["solidity"]):
        ps, imp = p.states
        in_wall = [walls[int(y), int(x)] for x, y in imp[:, :2]]
        assert any(in_wall) and not any(walls[int(y), int(x)] for x, y in ps[:, :2])


def test_teleport_jumps_far_and_the_twin_moves_at_most_one_step(drawn):
    env_id, scene, pairs = drawn
    far, step = (2.0, 0.2 + 1e-9) if "PointMaze" in env_id else (16.0, tr.MAX_STEP + 1e-9)  # PointMaze: cells; units
    for p in by_kind(pairs, "teleport"):
        ps, imp = p.states
        assert np.hypot(*(imp[p.event, :2] - imp[p.event - 1, :2])) >= far - step
        assert (np.hypot(*np.diff(ps[:, :2], axis=0).T) <= step).all()


def test_permanence_empties_the_frame_and_the_twin_always_shows_the_agent(drawn):
    _, scene, pairs = drawn
    for p in by_kind(pairs, "permanence"):
        empty = [scene.empty_frame(s) for s in p.states[0]]  # (Rooms: the room the agent is in, without it)
        assert all(np.array_equal(f, e) for f, e in zip(p.impossible[p.event:], empty[p.event:]))
        assert not any(np.array_equal(f, e) for f, e in zip(p.possible, empty))
        np.testing.assert_array_equal(p.states[0], p.states[1])  # it moves on unseen


def test_continuity_changes_the_velocity_with_nothing_touching(drawn):
    env_id, scene, pairs = drawn
    for p in by_kind(pairs, "continuity"):
        ps, imp = p.states
        e = p.event
        window = slice(e - 1, e + 5)
        assert scene.free(ps[window], p.actions[e - 1:e + 4])  # no contact around the change
        if "PointMaze" not in env_id:  # no inertia: velocity is the action; it moves against it
            assert scene.free(imp[window], -p.actions[e - 1:e + 4])
            moved = ps[e, :2] - ps[e - 1, :2]  # the action (its norm capped at MAX_STEP)
            np.testing.assert_allclose(moved, p.actions[e - 1] * min(1, tr.MAX_STEP / np.hypot(*p.actions[e - 1])))
            np.testing.assert_allclose(imp[e, :2] - imp[e - 1, :2], -moved)
        else:  # inertia: the velocity flipped, then the same physics
            flipped = np.concatenate([ps[e - 1, :2], -ps[e - 1, 2:]])
            np.testing.assert_allclose(imp[e], scene.env.advance(flipped, p.actions[e - 1]))
            assert np.hypot(*ps[e - 1, 2:]) > 0


def test_colour_changes_only_the_colour(drawn):
    _, scene, pairs = drawn
    for p in by_kind(pairs, "colour"):
        np.testing.assert_array_equal(p.states[0], p.states[1])
        own, other = np.array(scene.colours)
        for t in range(p.event, len(p.possible)):
            f, g = p.possible[t], p.impossible[t]
            bg = scene.empty_frame(p.states[0][t]).astype(float)
            # the same pixels covered as much, in the other colour: painted back, it is the possible frame
            np.testing.assert_allclose(recolour(g, bg.astype(np.uint8), other, own), f, atol=3)
            mask = np.abs(f - bg).sum(-1) > 0
            was, now = (f - bg)[mask].mean(0), (g - bg)[mask].mean(0)  # (3,) the agent's pull on its pixels
            assert np.dot(now - was, other - own) > 0  # toward the other colour


def test_unsupported_envs_and_kinds_are_clear_errors():
    with pytest.raises(WorldJepaError, match="no violation-of-expectation scenes for CartPole-v1"):
        generate_pairs("CartPole-v1", 1, SIZE)
    with pytest.raises(WorldJepaError, match="cannot show gravity"):
        generate_pairs(ENVS[0], 1, SIZE, kinds=["gravity"])
