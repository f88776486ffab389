"""The pixel-space predictor control and the action-free forecasting measure."""

import numpy as np
import pytest
import torch

from worldjepa.config import from_dict
from worldjepa.configs import PRESETS, ModelConfig, TrainConfig
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.errors import CheckpointError, ConfigError, WorldJepaError
from worldjepa.nn.pixels import PixelPredictor
from worldjepa.physics.benchmark import pixel_model_surprise, run_voe
from worldjepa.physics.forecast import forecast_clips, forecast_scores, format_forecast_table
from worldjepa.pixel_model import build_pixel_model, load_pixel_model
from worldjepa.training.pixels import PixelTrainer
from worldjepa.training.trainer import Trainer
from worldjepa.world_model import load_world_model

SMALL = PRESETS["train"]["small"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def balls(tmp_path_factory, one_thread):
    """Tiny Balls recordings (32 px), an action-free world model and a pixel predictor trained on them."""
    root = tmp_path_factory.mktemp("balls")
    data = root / "balls.h5"
    collect(CollectConfig(env="worldjepa/Balls-v0", out=str(data), episodes=20, steps=40, size=32), progress=False)
    kw = {**SMALL, "data": str(data), "progress": False, "device": "cpu", "val_every": 1000, "save_every": 1000,
          "val_horizon": 3, "model": {**SMALL["model"], "action_free": True, "predictor": "gru"}}
    Trainer(from_dict(TrainConfig, {**kw, "out": str(root / "wm"), "steps": 20})).fit()
    pix = PixelTrainer(from_dict(TrainConfig, {**kw, "out": str(root / "pix"), "steps": 15, "batch_size": 8,
                                                "pixel_space": True}))
    pix.fit()
    return data, root / "wm", root / "pix", pix


def test_an_untrained_pixel_predictor_copies_the_last_frame():
    net = PixelPredictor(32, 2, 3, (4, 8, 8))
    x, a = torch.rand(2, 2, 3, 32, 32), torch.randn(2, 3)
    assert torch.equal(net(x, a), x[:, -1])
    assert torch.equal(net(x[:, -1:], a), x[:, -1])  # a short context is padded, not refused
    assert net.rollout(x, torch.randn(2, 4, 3)).shape == (2, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="divisible"):
        PixelPredictor(30, 2, 3, (4, 8))
    with pytest.raises(ConfigError, match="multiple of 32 px"):
        build_pixel_model(ModelConfig(frame_size=48, action_dim=1))


def test_the_pixel_predictor_learns_and_is_saved_as_its_own_kind(balls):
    _, wm, pix, trainer = balls
    val = trainer.validate()
    assert val["val/pred_mse_h1"] < val["val/copy_mse_h1"]  # beats copying the frame on held-out windows
    model, meta = load_pixel_model(pix)
    assert meta["kind"] == "pixel_predictor" and model.action_free and model.frameskip == SMALL["model"]["frameskip"]
    with pytest.raises(CheckpointError, match="not a pixel-space predictor"):
        load_pixel_model(wm)
    with pytest.raises(CheckpointError, match="without a world model"):
        load_world_model(pix)
    with pytest.raises(ConfigError, match="world models only"):
        from_dict(TrainConfig, {"data": "d.h5", "pixel_space": True, "model": {"proprio": "state"}})


def test_pixel_surprise_is_the_pixel_error_of_each_step(balls):
    _, _, pix, _ = balls
    model, _ = load_pixel_model(pix)
    k = model.frameskip
    frames = np.random.default_rng(0).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    s, steps = pixel_model_surprise(model, frames, np.zeros((11, 1), np.float32))
    assert len(s) == len(steps) == 12 - k and steps[0] == k
    t = 3 * k  # a step with a whole context: the frames at t - 3k .. t - k
    with torch.no_grad():
        x = torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255
        pred = model.predict(x[[t - 3 * k, t - 2 * k, t - k]][None], torch.zeros(1, k)).clamp(0, 1)[0]
    assert s[t - k] == pytest.approx(float(((pred - x[t]) ** 2).mean()), rel=1e-5)


def test_physics_scores_the_pixel_predictor_beside_the_model(balls):
    data, wm, pix, _ = balls
    result, _ = run_voe(wm, 2, untrained=0, kinds=["teleport", "permanence"], pixel_run=pix)
    assert set(result["results"]["pixel_model"]) == {"teleport", "permanence"} and result["pixel_run"] == str(pix)
    pixel, meta = load_pixel_model(pix)
    with pytest.raises(CheckpointError, match="trained on worldjepa/TwoRoom-v0"):
        run_voe(wm, 1, untrained=0, kinds=["teleport"], pixel_run=(pixel, {**meta, "env_id": "worldjepa/TwoRoom-v0"}))


def test_forecast_scores_against_copy_last_mean_and_pixels(balls):
    data, wm, pix, _ = balls
    model, _ = load_world_model(wm)
    pixel, _ = load_pixel_model(pix)
    clips = forecast_clips(data, model.frameskip, model.history, 3, per_episode=2)
    assert clips["frames"].shape[1:] == (model.history + 3, 32, 32, 3) and len(np.unique(clips["episode"])) == 2
    r = forecast_scores(model, clips, pixel=pixel)
    assert r["horizons"] == [1, 2, 3] and r["clips"] == len(clips["frames"])
    with torch.no_grad():  # copy-last by hand: the last context embedding against the frame h steps later
        z = model.encode(clips["frames"])
        want = ((z[:, model.history - 1] - z[:, model.history + 1]) ** 2).mean().item()
    assert r["copy_last"][1] == pytest.approx(want, rel=1e-4)
    for name in ("copy_last", "mean", "pixel"):
        lo, hi = r["ci"][name][0]
        assert lo <= r[name][0] - r["model"][0] + 1e-9 and r[name][0] - r["model"][0] <= hi + 1e-9
    assert all(v >= 0 for v in r["pixel_mse"] + r["copy_pixel_mse"] + r["median_pixel_mse"])
    assert format_forecast_table(r).count("\n") == 2 + 3 - 1
    with pytest.raises(WorldJepaError, match="action-free"):
        forecast_scores(build_world_model_like(model), clips)


def build_world_model_like(model):
    """An action-conditioned model at the same frame size and frame-skip."""
    from worldjepa.world_model import build_world_model

    return build_world_model(ModelConfig(frame_size=32, action_dim=1, frameskip=model.frameskip))
