"""Action-free world models: trained on video alone, they forecast; fine-tuned with actions they plan."""

import numpy as np
import pytest
import torch

from worldjepa import checkpoint as ckpt
from worldjepa.config import from_dict
from worldjepa.configs import PRESETS, EncoderConfig, ModelConfig, TrainConfig
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.errors import CheckpointError, ConfigError, WorldJepaError
from worldjepa.nn import build_predictor
from worldjepa.training.trainer import Trainer
from worldjepa.world_model import build_world_model, load_world_model

SMALL = PRESETS["train"]["small"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=30, steps=30, size=32), progress=False)
    return str(out)


@pytest.fixture(scope="module")
def action_free_run(tworoom, tmp_path_factory, one_thread):
    """A tiny action-free TwoRoom model: the recordings' actions hidden from it."""
    out = tmp_path_factory.mktemp("runs") / "af"
    cfg = _cfg(tworoom, out, steps=40, model={**SMALL["model"], "action_free": True})
    Trainer(cfg).fit()
    return out


def _cfg(data, out, **kw):
    return from_dict(TrainConfig, {**SMALL, "data": data, "out": str(out), "progress": False, "device": "cpu",
                                   "val_every": 1000, "save_every": 1000, **kw})


@pytest.mark.parametrize("name,kw", [("mlp", {"hidden": 16}), ("gru", {"hidden": 16}),
                                     ("transformer", {"preset": "tiny"})])
def test_zeroed_action_input_makes_every_predictor_ignore_actions(name, kw):
    torch.manual_seed(0)
    p = build_predictor(name, dim=8, action_dim=3, **kw).eval()
    for m in p.modules():  # AdaLN-zero and the residual heads start at zero: wake them so actions could matter
        if isinstance(m, torch.nn.Linear) and not m.weight.abs().sum():
            torch.nn.init.normal_(m.weight, std=0.3)
    z, a1, a2 = torch.randn(2, 5, 8), torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    acts1, acts2 = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    assert not torch.allclose(p(z, a1), p(z, a2))  # before: the actions matter
    with torch.no_grad():
        for w in p.action_input():
            w.zero_()
    assert torch.equal(p(z, a1), p(z, a2))
    assert torch.equal(p.rollout(z, a1[:, :-1], acts1), p.rollout(z, a2[:, :-1], acts2))


def test_action_free_training_keeps_the_action_pathway_at_zero_and_forecasts(action_free_run):
    model, meta = load_world_model(action_free_run)
    assert meta["model"]["action_free"] is True and model.action_free
    assert all(not w.abs().sum() for w in model.predictor.action_input())  # still exactly zero after training
    assert any(w.abs().sum() > 0 for n, w in model.predictor.named_parameters() if "weight" in n)  # the rest learned
    z = torch.randn(3, 3, model.latent_dim)
    with torch.no_grad():
        f = model.forecast(z, 4)  # (B, H, D)
        assert f.shape == (3, 4, model.latent_dim)
        a = torch.randn(3, 1, 4, model.macro_dim)  # any actions: the same future
        assert torch.equal(model.rollout(z, torch.randn(3, 2, model.macro_dim), a)[:, 0], f)
    with pytest.raises(WorldJepaError, match="horizon"):
        model.forecast(z, 0)


def test_forecast_is_refused_by_an_action_conditioned_model():
    cfg = ModelConfig(latent_dim=8, projector_hidden=16, predictor_hidden=16, sigreg_slices=16, frame_size=16,
                      action_dim=2, encoder=EncoderConfig(channels=(4, 8), dim=16))
    with pytest.raises(WorldJepaError, match="action-conditioned"):
        build_world_model(cfg).forecast(torch.zeros(1, 1, 8), 2)
    with pytest.raises(ConfigError, match="action_free"):
        ModelConfig(action_free=True, inverse_weight=1.0)


def test_finetuned_with_actions_starts_as_the_action_free_model_and_plans(tworoom, action_free_run, tmp_path):
    from worldjepa.agent import Agent
    from worldjepa.envs.adapter import make_env

    with pytest.raises(WorldJepaError, match="trained action-free.*--init-from"):
        Agent.load(action_free_run, samples=8, iterations=1)
    free, _ = load_world_model(action_free_run)
    trainer = Trainer(_cfg(tworoom, tmp_path / "ft", steps=6, init_from=str(action_free_run)))
    tuned = trainer.model.eval()
    assert not tuned.action_free and trainer.model_cfg.action_free is False
    z = torch.randn(2, 3, free.latent_dim)
    a_hist, acts = torch.randn(2, 2, free.macro_dim), torch.randn(2, 5, 3, free.macro_dim)
    with torch.no_grad():  # before fine-tuning: the action-free model's predictions, whatever the actions
        assert torch.allclose(tuned.rollout(z, a_hist, acts), free.rollout(z, a_hist, acts), atol=1e-6)
    trainer.fit()
    model, meta = load_world_model(tmp_path / "ft")
    assert meta["config"]["init_from"] == str(action_free_run) and meta["model"]["action_free"] is False
    assert all(w.abs().sum() > 0 for w in model.predictor.action_input())  # the actions now condition it
    with torch.no_grad():
        assert not torch.allclose(model.rollout(z, a_hist, acts), model.rollout(z, a_hist, -acts))
    env = make_env("worldjepa/TwoRoom-v0", 32)
    env.reset(seed=4)
    goal = env.render()
    env.reset(seed=3)
    agent = Agent.load(tmp_path / "ft", samples=16, iterations=2)
    agent.reset(goal)
    for _ in range(3):
        action = agent.act(env.render())
        assert env.env.action_space.contains(np.asarray(action, np.float32))
        env.step(action)


def test_init_from_is_checked(tworoom, action_free_run, tmp_path):
    with pytest.raises(ConfigError, match="not both"):
        _cfg(tworoom, tmp_path / "x", init_from=str(action_free_run), encoder_init=str(action_free_run))
    small = tmp_path / "other.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(small), episodes=6, steps=12, size=16), progress=False)
    with pytest.raises(CheckpointError, match="--init-from .* expects 32x32 frames"):
        Trainer(_cfg(str(small), tmp_path / "y", init_from=str(action_free_run)))
    from worldjepa.training import pretrain as P

    P.pretrain(P.PretrainConfig(data=tworoom, out=str(tmp_path / "pre"), steps=1, batch_size=8, sigreg_slices=16,
                                projector_hidden=16, projector_dim=4, probe_every=100, save_every=100,
                                eval_frames=0, progress=False))
    with pytest.raises(CheckpointError, match="not a `worldjepa train` run"):
        Trainer(_cfg(tworoom, tmp_path / "z", init_from=str(tmp_path / "pre")))


def test_an_action_conditioned_run_made_action_free_loses_its_action_input(tworoom, tmp_path):
    Trainer(_cfg(tworoom, tmp_path / "ac", steps=3)).fit()
    t = Trainer(_cfg(tworoom, tmp_path / "af", steps=1, init_from=str(tmp_path / "ac"),
                     model={**SMALL["model"], "action_free": True}))
    assert t.model.action_free and all(not w.abs().sum() for w in t.model.predictor.action_input())


def test_action_free_flags_and_surprise_without_actions(action_free_run):
    from worldjepa.cli import build_parser
    from worldjepa.cli.train import train_config_from_args
    from worldjepa.physics import surprise

    args = build_parser().parse_args(["train", "--data", "d.h5", "--action-free", "--init-from", "runs/af"])
    cfg = train_config_from_args(args)
    assert cfg.model.action_free is True and cfg.init_from == "runs/af"
    frames = np.random.default_rng(0).integers(0, 256, (9, 32, 32, 3), dtype=np.uint8)
    s, steps = surprise(action_free_run, frames)  # no actions needed
    s2, _ = surprise(action_free_run, frames, np.ones((9, 2), np.float32))
    assert len(s) == len(steps) == 9 - SMALL["model"]["frameskip"] and np.array_equal(s, s2)
    assert ckpt.read_meta(action_free_run)["model"]["action_free"] is True
