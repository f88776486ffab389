"""worldjepa/Reacher-v0's violations: twins identical before the event, each impossible clip breaks its rule."""

import numpy as np
import pytest

from tests.physics.twins import check_twins, of
from worldjepa.envs import reacher as R
from worldjepa.physics.balls import YELLOW
from worldjepa.physics.reacher import JUMP, ReacherScene
from worldjepa.physics.voe import generate_pairs, scene_for

SIZE = 32
ENV = "worldjepa/Reacher-v0"
# the most a joint speed can change in one step: full torque against the damping at top speed
MAX_DV = R.DT * (R.TORQUE_GAIN + R.DAMPING * R.MAX_VEL) + 1e-9


@pytest.fixture(scope="module")
def scene():
    s = scene_for(ENV, SIZE)
    assert isinstance(s, ReacherScene)
    return s


@pytest.fixture(scope="module")
def pairs():
    return generate_pairs(ENV, 3, SIZE, seed=1)


def test_twins_are_identical_before_the_event_and_the_possible_one_is_the_physics(scene, pairs):
    check_twins(scene, pairs, 3)


def test_teleport_jumps_the_fingertip_far_and_the_twin_moves_little(pairs):
    most = (R.LINKS[0] + R.LINKS[1]) * R.MAX_VEL * R.DT * 2  # the fingertip's largest move in one step
    for p in of(pairs, "teleport"):
        ps, imp = p.states
        tips = lambda s: np.stack([R.fingertip(x) for x in s])  # noqa: E731
        jump = np.hypot(*(tips(imp[p.event:p.event + 1]) - tips(ps[p.event:p.event + 1]))[0])
        assert jump >= JUMP > most
        assert np.hypot(*np.diff(tips(ps), axis=0).T).max() <= most


def test_permanence_shows_the_base_alone_and_the_twin_always_shows_the_arm(scene, pairs):
    empty = scene.env.draw(np.zeros(4), arm=False)
    for p in of(pairs, "permanence"):
        assert all(np.array_equal(f, empty) for f in p.impossible[p.event:])
        assert not any(np.array_equal(f, empty) for f in p.possible)


def test_colour_repaints_only_the_fingertip(scene, pairs):
    for p in of(pairs, "colour"):
        for t in range(p.event, len(p.possible)):
            s = p.states[0][t]
            assert np.array_equal(p.impossible[t], scene.env.draw(s, tip=YELLOW))
            assert np.array_equal(scene.env.draw(s, tip=R.TIP), p.possible[t])  # repainted red: the twin


def test_continuity_changes_the_speed_more_than_any_torque_can(pairs):
    for p in of(pairs, "continuity"):
        ps, imp = p.states
        jump = np.abs(imp[p.event, 2:] - imp[p.event - 1, 2:]).max()
        assert jump > 2 * MAX_DV  # the flip, beyond the torque's reach
        assert (np.abs(np.diff(ps[:, 2:], axis=0)) <= MAX_DV).all()  # the twin never does
        assert (np.abs(np.diff(imp[p.event:, 2:], axis=0)) <= MAX_DV).all()  # then the same physics
