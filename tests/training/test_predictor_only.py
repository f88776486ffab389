"""`train --init-from RUN --predictor-only`: a new predictor in RUN's latent, so that the two plan as
an ensemble with RUN's long-term memory (and, with `disagreement`, avoid what they disagree on)."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from worldjepa.config import from_dict
from worldjepa.configs import PRESETS, TrainConfig
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.errors import ConfigError, WorldJepaError
from worldjepa.training.trainer import Trainer
from worldjepa.world_model import latent_fingerprint, load_world_model, model_fingerprint

SMALL = PRESETS["train"]["small"]
pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(data, out, **kw):
    return from_dict(TrainConfig, {**SMALL, "data": data, "out": str(out), "progress": False, "device": "cpu",
                                   "val_every": 1000, "save_every": 1000, **kw})


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread):
    """A tiny TwoRoom run, a predictor trained in its latent (seed 1), and a whole run of seed 1."""
    root = tmp_path_factory.mktemp("po")
    data = str(root / "tworoom.h5")
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=data, episodes=24, steps=30, size=32), progress=False)
    Trainer(_cfg(data, root / "base", steps=12)).fit()
    Trainer(_cfg(data, root / "member", steps=8, seed=1, init_from=str(root / "base"), predictor_only=True)).fit()
    Trainer(_cfg(data, root / "other", steps=8, seed=1)).fit()
    return data, root


def test_a_predictor_only_run_keeps_the_latent_exactly_and_learns_its_own_predictor(runs):
    _, root = runs
    base, member = (load_file(str(root / r / "model.safetensors")) for r in ("base", "member"))
    latent = [k for k in base if k.split("/", 1)[1].split(".", 1)[0] in ("encoder", "projector", "proprio_enc")]
    assert any("running_mean" in k for k in latent)  # the projector's BatchNorm statistics are among them
    for k in latent:
        assert torch.equal(base[k], member[k]), k  # weights and BatchNorm statistics untouched by training
    pred = [k for k in base if ".predictor." in k or k.startswith("model/predictor.")]
    assert pred and any(not torch.equal(base[k], member[k]) for k in pred)
    (b, _), (m, meta), (o, _) = (load_world_model(root / r) for r in ("base", "member", "other"))
    assert meta["config"]["predictor_only"] is True
    assert latent_fingerprint(b) == latent_fingerprint(m) != latent_fingerprint(o)
    assert model_fingerprint(b) != model_fingerprint(m)
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        torch.testing.assert_close(b.encode(frames), m.encode(frames), rtol=0, atol=0)


def test_the_new_predictor_starts_from_its_seed_not_from_the_run(runs):
    data, root = runs
    t = Trainer(_cfg(data, root / "fresh", steps=1, seed=1, init_from=str(root / "base"), predictor_only=True))
    base, _ = load_world_model(root / "base")
    fresh = t.model.state_dict()
    assert all(not torch.equal(fresh[k], v) for k, v in base.state_dict().items()
               if k.startswith("predictor.") and v.ndim == 2 and v.abs().sum() > 0)
    assert [n for n, p in t.model.named_parameters() if p.requires_grad] == \
        [n for n, _ in t.model.predictor.named_parameters(prefix="predictor")]
    with pytest.raises(ConfigError, match="--predictor-only .* --init-from RUN"):
        _cfg(data, root / "x", predictor_only=True)


def test_an_ensemble_sharing_the_latent_plans_with_one_memory_and_disagreement(runs, tmp_path):
    from worldjepa.agent import Agent
    from worldjepa.envs.adapter import make_env
    from worldjepa.memory.build import build_memory

    data, root = runs
    mem = tmp_path / "mem.db"
    build_memory(root / "base", data, mem, device="cpu")
    env = make_env("worldjepa/TwoRoom-v0", 32)
    env.reset(seed=4)
    goal = env.render()
    env.reset(seed=3)
    agent = Agent.load([root / "base", root / "member"], memory=str(mem), disagreement=1.0, samples=16,
                       iterations=2, elites=4)
    agent.reset(goal)
    env.step(agent.act(env.render()))
    assert agent.goals[0] is agent.goals[1]  # the memory's subgoal (or the goal) for both members
    costs = [agent.latent_cost().costs[i](torch.zeros(1, 4, agent.horizon, agent.k * 2)) for i in (0, 1)]
    both = agent.latent_cost()(torch.zeros(1, 4, agent.horizon, agent.k * 2))
    each = torch.stack(costs)
    torch.testing.assert_close(both, each.mean(0) + each.std(0))
    with pytest.raises(WorldJepaError, match="share it .*--predictor-only"):
        Agent.load([root / "base", root / "other"], memory=str(mem))
    with pytest.raises(WorldJepaError, match="disagreement .* two or more runs"):
        Agent.load(root / "base", disagreement=1.0)
