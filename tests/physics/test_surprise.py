"""worldjepa.physics.surprise: the agent's surprise, at every model step of a clip, with clear errors."""

import numpy as np
import pytest
import torch

import worldjepa.physics
from tests.conftest import ROOT
from worldjepa.agent import Agent
from worldjepa.envs.adapter import make_env
from worldjepa.errors import CheckpointError, WorldJepaError
from worldjepa.losses import prediction_error
from worldjepa.physics import surprise
from worldjepa.world_model import load_world_model


@pytest.fixture(scope="module")
def clip():
    """30 frames of TwoRoom at 32 px and the (T, A) actions after each (the last one unused)."""
    env, rng = make_env("worldjepa/TwoRoom-v0", 32), np.random.default_rng(3)
    frame, _ = env.reset(seed=3)
    frames, actions = [frame], rng.uniform(-2, 2, (30, 2)).astype(np.float32)
    for a in actions[:-1]:
        frames.append(env.step(a)[0])
    return np.stack(frames), actions


def test_the_name_is_the_function_after_its_module_is_imported():
    import subprocess
    import sys

    import worldjepa.physics.surprise  # noqa: F401

    assert callable(worldjepa.physics.surprise) and worldjepa.physics.surprise is surprise
    code = "import worldjepa; f = worldjepa.physics.surprise; assert callable(f), f"  # no import of the subpackage
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_surprise_is_what_the_agent_observes_on_its_grid(tworoom_run, clip):
    frames, actions = clip
    s, steps = surprise(tworoom_run, frames, actions)
    agent = Agent.load(tworoom_run)
    k = agent.k
    assert len(s) == len(steps) == len(frames) - k and steps[0] == k and (np.diff(steps) == 1).all()
    assert np.isfinite(s).all() and (s >= 0).all()
    seen = {}
    for t in range(len(frames)):  # what act() does, without planning: observe at every k-th step, record actions
        if t % k == 0:
            seen[t] = agent.observe(frames[t])[1]
        agent.history.record(actions[t])
    grid = [t for t in seen if t >= k]
    assert len(grid) >= 3  # some with a partial context, some with the full history
    np.testing.assert_allclose(s[np.searchsorted(steps, grid)], [seen[t] for t in grid], rtol=1e-4)
    # the T-1 actions of a recording give the same
    np.testing.assert_array_equal(surprise(tworoom_run, frames, actions[:-1])[0], s)


def test_every_step_is_the_prediction_from_its_own_context(tworoom_run, clip):
    """An off-grid step t: the context t - k, t - 2k, t - 3k and the macro-actions between, by hand."""
    frames, actions = clip
    model, meta = load_world_model(tworoom_run)
    k, t = model.frameskip, 3 * model.frameskip + 1
    s, steps = surprise((model, meta), frames, actions, metric="l1", normalize=True)
    with torch.no_grad():
        z = model.encode(frames[[t - 3 * k, t - 2 * k, t - k, t]])  # (4, D)
        macro = torch.as_tensor(np.stack([actions[i:i + k].reshape(-1) for i in (t - 3 * k, t - 2 * k, t - k)]))
        pred = model.rollout(z[None, :3], macro[None, :2], macro[None, None, 2:])[0, 0, 0]
    want = float(prediction_error(pred, z[3], metric="l1", normalize=True))
    assert s[list(steps).index(t)] == pytest.approx(want, rel=1e-4)


def test_a_bare_model_works_and_bad_input_is_a_clear_error(tworoom_run, clip):
    frames, actions = clip
    model, _ = load_world_model(tworoom_run)
    s, _ = surprise(model, frames, actions)
    np.testing.assert_allclose(s, surprise(tworoom_run, frames, actions)[0])
    with pytest.raises(WorldJepaError, match="pass actions=... of shape"):
        surprise(tworoom_run, frames)
    with pytest.raises(WorldJepaError, match="trained on 32x32"):
        surprise(tworoom_run, np.zeros((len(frames), 64, 64, 3), np.uint8), actions)
    with pytest.raises(CheckpointError, match="trained on worldjepa/TwoRoom-v0, not worldjepa/PointMaze"):
        surprise(tworoom_run, frames, actions, env_id="worldjepa/PointMaze-UMaze-v0")
    with pytest.raises(WorldJepaError, match=r"actions must have shape \(\d+, 2\)"):
        surprise(tworoom_run, frames, actions[:, :1])
    with pytest.raises(WorldJepaError, match="uint8"):
        surprise(tworoom_run, frames.astype(np.float32), actions)
    with pytest.raises(WorldJepaError, match="holds no model step"):
        surprise(tworoom_run, frames[:2], actions[:2])
