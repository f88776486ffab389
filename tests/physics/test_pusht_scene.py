"""worldjepa/PushT-v1 (and -v0) violations: twins identical before the event, each impossible clip breaks its rule."""

import math

import numpy as np
import pytest

from tests.physics.twins import check_twins, of, proprio_model
from worldjepa.envs import pusht as P
from worldjepa.physics.balls import YELLOW
from worldjepa.physics.pusht import DRIFT, DRIFT_SPEED, JUMP, PushTScene
from worldjepa.physics.voe import generate_pairs, scene_for

SIZE = 64  # the T's parts are 30 units wide: at 64 px some pixels lie wholly inside them
ENV = "worldjepa/PushT-v1"
MOST = P.MAX_DELTA * math.sqrt(2)  # the pusher's largest step (units): no push moves the block farther


@pytest.fixture(scope="module")
def scene():
    s = scene_for(ENV, SIZE)
    assert isinstance(s, PushTScene)
    return s


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(ENV, 3, SIZE, seed=1)


def gap(s):
    """How far the pusher's edge is from the block of ``s`` (units; negative: overlapping)."""
    return P.block_sdf(s, s[:2]) - P.PUSHER_R


def block_pixels(frame):
    """How many pixels show the block's own colour (the renderer's full coverage)."""
    return int((np.abs(frame.astype(float) - 255 * np.array(P.BLOCK)).max(-1) < 8).sum())


def test_twins_are_identical_before_the_event_and_the_possible_one_is_the_physics(scene, pairs):
    check_twins(scene, pairs, 3)


def test_the_possible_block_moves_only_when_pushed_and_never_farther_than_the_pusher(pairs):
    for p in pairs:
        s = p.states[0]
        for a, b in zip(s[:-1], s[1:]):
            step = math.hypot(*(b[2:4] - a[2:4]))
            assert step <= MOST
            if gap(a) > MOST:  # the pusher cannot reach the block in this step
                assert np.array_equal(a[2:5], b[2:5])
            assert gap(b) > -5.0  # pymunk lets contacts overlap a little, never more


def test_teleport_jumps_the_block_far_with_nothing_near_it(pairs):
    for p in of(pairs, "teleport"):
        ps, imp = p.states
        jump = math.hypot(*(imp[p.event, 2:4] - ps[p.event, 2:4]))
        assert jump >= JUMP > 2 * MOST
        for s in (ps[p.event - 1], imp[p.event - 1], imp[p.event]):
            assert gap(s) > 0  # nothing touches the block at the jump
        assert math.hypot(*(imp[p.event, 2:4] - imp[p.event - 1, 2:4])) >= JUMP


def test_solidity_sends_the_pusher_into_the_block_where_its_twin_is_stopped(pairs):
    for p in of(pairs, "solidity"):
        ps, imp = p.states
        np.testing.assert_array_equal(ps[:, :2], imp[:, :2])  # the same pusher path (it is kinematic)
        assert min(P.block_sdf(s, s[:2]) for s in imp[p.event:]) <= 0.0  # its centre inside the T
        assert min(gap(s) for s in ps) > -5.0


def test_permanence_removes_every_block_pixel_and_the_twin_always_shows_the_block(scene, pairs):
    for p in of(pairs, "permanence"):
        for t in range(p.event, len(p.impossible)):
            assert np.array_equal(p.impossible[t], scene.env.draw(p.states[1][t], block=False))
            assert block_pixels(p.impossible[t]) == 0
        assert all(block_pixels(f) > 20 for f in p.possible)


def test_colour_repaints_only_the_block(scene, pairs):
    for p in of(pairs, "colour"):
        for t in range(p.event, len(p.possible)):
            s = p.states[0][t]
            assert np.array_equal(p.impossible[t], scene.env.draw(s, colour=YELLOW))
            assert block_pixels(p.impossible[t]) == 0 and block_pixels(p.possible[t]) > 20


def test_continuity_slides_the_block_untouched_and_the_twin_stays_at_rest(pairs):
    for p in of(pairs, "continuity"):
        ps, imp = p.states
        steps = range(p.event - 1, p.event - 1 + DRIFT)
        for t in steps:
            assert min(gap(imp[t]), gap(imp[t + 1]), gap(ps[t]), gap(ps[t + 1])) > 0  # nothing near it in either clip
            assert math.hypot(*(imp[t + 1, 2:4] - imp[t, 2:4])) >= DRIFT_SPEED[0]  # the impossible block slides
            assert np.array_equal(ps[t, 2:5], ps[t + 1, 2:5])  # v1: the untouched block does not move


def test_pusht_v0_has_the_same_scenes_and_its_slide_changes_the_motion():
    pairs = generate_pairs("worldjepa/PushT-v0", 1, 32, seed=2)
    assert [p.kind for p in pairs] == list(PushTScene.kinds)
    for p in pairs:
        assert np.array_equal(p.possible[:p.event], p.impossible[:p.event])
    p = of(pairs, "continuity")[0]
    ps, imp = p.states
    before, after = ps[p.event - 1, 2:4] - ps[p.event - 2, 2:4], imp[p.event, 2:4] - imp[p.event - 1, 2:4]
    assert math.hypot(*(after - before)) >= DRIFT_SPEED[0]  # untouched, a v0 block only slows down


def test_a_pusht_model_with_the_pusher_as_proprioception_is_scored():
    from worldjepa.physics.benchmark import run_voe

    result, pairs = run_voe(proprio_model(ENV, 512), 1, untrained=1)
    assert set(result["results"]["model"]) == set(PushTScene.kinds) and len(pairs) == len(PushTScene.kinds)
    assert all(np.isfinite(c["impossible"]).all() and np.isfinite(c["possible"]).all() for c in result["curves"])
