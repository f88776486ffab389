"""Rooms-v0 and its scripted tours: walls, doors, what a frame shows, and the tours' ground truth."""

import numpy as np
import pytest

from worldjepa.envs.rooms import (
    COLS,
    DOOR_HALF,
    FLOORS,
    KEY_MOD,
    OBJECT_R,
    P_APPEAR,
    P_VANISH,
    ROOM,
    ROWS,
    RoomsEnv,
    move,
    neighbours,
    next_key,
    place_of,
    next_shown,
    room_of,
    rooms_of,
    spot,
)
from worldjepa.envs.rooms_tour import make_tour
from worldjepa.envs.tworoom import MAX_STEP
from worldjepa.errors import EnvError

MAGENTA = np.array([0.92, 0.05, 0.78]) * 255


def floor_colour(frame):
    """The most common colour of a frame (the floor: walls, agent and object cover less)."""
    codes = frame.reshape(-1, 3).astype(np.int64) @ np.array([65536, 256, 1])
    values, counts = np.unique(codes, return_counts=True)
    c = int(values[counts.argmax()])
    return np.array([c >> 16, (c >> 8) & 255, c & 255])


def shows_object(frame, place):
    """Whether ``frame`` has the object's magenta at ``place`` (5 units off its centre, clear of the
    white middle), read from the pixels alone."""
    row, col = divmod(place // 2, COLS)
    x, y = spot(place) - np.array([col * ROOM, row * ROOM]) + np.array([5.0, 0.0])
    px = frame[int(y * frame.shape[0] / ROOM), int(x * frame.shape[1] / ROOM)].astype(float)
    return bool(np.abs(px - MAGENTA).max() < 40)


def test_walls_only_let_the_agent_through_doors():
    env, rng = RoomsEnv(), np.random.default_rng(0)
    pos, goal = np.array([ROOM / 2, ROOM / 2]), np.zeros(2)
    crossings = 0
    for t in range(4000):
        if t % 40 == 0:  # a noisy walk toward a fresh goal now and then, mostly sliding along walls
            goal = env.sample_state(rng)[:2]
        new = move(pos, 0.6 * env.oracle_action(pos, goal) + rng.uniform(-MAX_STEP, MAX_STEP, 2))
        a, b = room_of(pos), room_of(new)
        if a != b:
            crossings += 1
            assert b in neighbours(a), (pos, new)
            # the centre crossed the shared wall inside the door's free span
            mid = (pos + new) / 2
            along = mid[1] if abs(a - b) == 1 else mid[0]
            assert abs(along % ROOM - ROOM / 2) < DOOR_HALF, (pos, new)
        pos = new
    assert crossings > 20
    assert 0 < pos[0] < COLS * ROOM and 0 < pos[1] < ROWS * ROOM


def test_a_frame_shows_its_room_only_and_the_object_at_its_spot_when_shown():
    env = RoomsEnv(size=64)
    colours = {tuple(floor_colour(env.render_state(np.r_[(np.array([r % COLS, r // COLS]) + 0.5) * ROOM, 0, 0])))
               for r in range(ROWS * COLS)}
    assert len(colours) == ROWS * COLS  # every room has its own floor
    for room in range(ROWS * COLS):
        centre = (np.array([room % COLS, room // COLS]) + 0.5) * ROOM
        state = np.r_[centre, 0.0, 0.0]  # the agent in the middle, clear of both spots
        plain = env.render_state(state)
        np.testing.assert_allclose(floor_colour(plain) / 255, FLOORS[room], atol=0.01)
        assert not shows_object(plain, 2 * room) and not shows_object(plain, 2 * room + 1)
        for k in (0, 1):
            assert np.hypot(*(centre - spot(2 * room + k))) > OBJECT_R + 3
            shown = env.render_state(np.r_[centre, 1.0 + k, 0.0])
            assert place_of(np.r_[centre, 1.0 + k, 0.0]) == 2 * room + k
            assert shows_object(shown, 2 * room + k) and not shows_object(shown, 2 * room + 1 - k)
            assert (plain != shown).any(axis=-1).sum() > 150  # the object covers a good part of the frame


def test_the_object_appears_vanishes_and_stays_behind_when_the_agent_leaves():
    assert next_shown(0, True, P_APPEAR / 2 - 1e-9) == 1 and next_shown(0, True, P_APPEAR - 1e-9) == 2
    assert next_shown(0, True, P_APPEAR) == 0
    assert next_shown(2, True, P_VANISH - 1e-9) == 0 and next_shown(2, True, P_VANISH) == 2
    assert next_shown(1, False, 0.99) == 0 and next_shown(0, False, 0.0) == 0  # a new room: out of view
    key, draws = 12345, np.empty(200000)
    for i in range(len(draws)):  # the env's random stream is uniform enough for these rates
        key = next_key(key)
        draws[i] = key / KEY_MOD
    assert (draws < P_APPEAR).mean() == pytest.approx(P_APPEAR, rel=0.05)
    assert (draws < P_VANISH).mean() == pytest.approx(P_VANISH, rel=0.05)
    env, rng = RoomsEnv(), np.random.default_rng(0)
    env.reset(seed=0)
    changes = {"appear": 0, "vanish": 0, "left": 0}
    goal = env.sample_state(rng)
    for t in range(3000):
        if t % 100 == 0:
            goal = env.sample_state(rng)
        before = env.state
        after = env.step(0.6 * env.oracle_action(before, goal) + rng.uniform(-1.0, 1.0, 2))[4]["state"]
        if room_of(after) != room_of(before):
            assert after[2] == 0.0  # it never follows the agent into another room
            changes["left"] += 1
        else:
            changes["appear" if after[2] > before[2] else "vanish"] += after[2] != before[2]
    assert min(changes.values()) > 3, changes


def test_the_oracle_crosses_the_rooms():
    env = RoomsEnv()
    rng = np.random.default_rng(1)
    for _ in range(10):
        start, goal = env.sample_state(rng), env.sample_state(rng)
        s = start
        for _ in range(400):
            s = env.advance(s, env.oracle_action(s, goal))
            if env.success(s, goal):
                break
        assert env.success(s, goal), (start, goal)


def test_a_tour_s_ground_truth_is_what_its_frames_show():
    tour = make_tour(1500, objects=4, seed=3)
    frames, rooms, shown = tour.frames(), tour.rooms, tour.shown
    assert frames.shape == (1500, 64, 64, 3) and tour.actions.shape == (1499, 2)
    # the actions replay the walk through the env's physics
    env = RoomsEnv()
    for t in range(0, 1499, 7):
        np.testing.assert_allclose(env.advance(tour.states[t], tour.actions[t])[:2], tour.states[t + 1, :2])
    # the room each frame shows (its floor) is the room the ground truth says, and changes where it says
    floors = np.array([FLOORS.index(tuple(np.round(floor_colour(f) / 255, 2))) if tuple(np.round(floor_colour(f) / 255, 2))
                       in FLOORS else -1 for f in frames[::5]])
    np.testing.assert_array_equal(floors, rooms[::5])
    np.testing.assert_array_equal(tour.room_changes(), np.flatnonzero(np.diff(rooms_of(tour.states))) + 1)
    # the object is in view exactly during the sightings, at their places, and nowhere else
    assert len(tour.sightings) == 4 and len(set(tour.places.tolist())) == 4
    expect = np.full(1500, -1)
    for place, start, stop in tour.sightings:
        assert (rooms[start - 2:stop + 2] == place // 2).all()  # within one visit of that room, with a margin
        expect[start:stop] = place
    np.testing.assert_array_equal(shown, expect)
    seen = np.array([[shows_object(f, 2 * r), shows_object(f, 2 * r + 1)] for f, r in zip(frames, rooms)])
    truth = np.stack([shown == 2 * rooms, shown == 2 * rooms + 1], 1)
    assert (seen == truth).all(1).mean() > 0.99  # (the agent may stand on the sampled pixel now and then)
    np.testing.assert_array_equal(tour.places, tour.sightings[:, 0])  # one sighting per place, in order


def test_repeats_show_the_same_places_again_on_the_same_walk():
    once, thrice = make_tour(3000, objects=3, seed=5), make_tour(3000, objects=3, repeats=3, seed=5)
    np.testing.assert_array_equal(once.states[:, :2], thrice.states[:, :2])
    np.testing.assert_array_equal(once.places, thrice.places)
    assert len(thrice.sightings) > len(once.sightings)
    assert set(thrice.sightings[:, 0].tolist()) == set(once.places.tolist())
    for row in once.sightings:  # the first sightings are the same
        assert any((row == r).all() for r in thrice.sightings)
    np.testing.assert_array_equal(np.unique(thrice.shown)[1:], np.sort(once.places))
    none = make_tour(500, objects=0, seed=0)
    assert len(none.places) == len(none.sightings) == 0 and (none.shown == -1).all()
    with pytest.raises(EnvError, match="only .* of 9 objects"):
        make_tour(200, objects=9, seed=0)
