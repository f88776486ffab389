"""The Agent: a goal-conditioned policy from a checkpoint, on a third-party Gymnasium env."""

import numpy as np
import pytest
import torch

from tests.conftest import cuda_only
from worldjepa.agent import Agent, load_checkpoint
from worldjepa.config import from_dict
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.envs.adapter import make_env
from worldjepa.errors import CheckpointError, ConfigError, WorldJepaError
from worldjepa.protocols import Policy
from worldjepa.configs import PRESETS, TrainConfig
from worldjepa.training.trainer import Trainer

SMALL = PRESETS["train"]["small"]

PLAN = dict(samples=32, iterations=3, elites=4)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """Pendulum-v1 (classic control, rendered by pygame): tiny data, ~40 training steps."""
    pytest.importorskip("pygame")
    root = tmp_path_factory.mktemp("pendulum")
    data = root / "pendulum.h5"
    collect(CollectConfig(env="Pendulum-v1", out=str(data), episodes=10, steps=20, size=32, policy="random"),
            progress=False)
    cfg = from_dict(TrainConfig, {**SMALL, "data": str(data), "out": str(root / "run"), "steps": 40,
                                  "progress": False, "device": "cpu"})
    Trainer(cfg).fit()
    return root / "run"


def test_agent_acts_in_a_third_party_env(pendulum_run):
    env = make_env("Pendulum-v1", 96)  # other frame size than the checkpoint's 32: resized inside
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    agent = Agent.load(pendulum_run, planner="cem", env_id="Pendulum-v1", **PLAN)
    assert isinstance(agent, Policy)
    assert agent.k == 2  # the --small preset's frame-skip: macro-actions of 2 x 1 values
    agent.reset(goal, goal_state=np.zeros(3))  # extra info is accepted and ignored
    actions = []
    for _ in range(6):
        a = agent.act(obs, state=None)
        assert isinstance(a, np.ndarray) and a.shape == (1,) and a.dtype == np.float32
        assert -2.0 <= a[0] <= 2.0 and np.isfinite(a).all()
        actions.append(a)
        obs, _, done = env.step(a)
        assert not done
    assert agent.imagined is not None and agent.imagined.shape == (5, 16)  # horizon 5, latent 16
    assert len(agent.z_hist) == 3 and len(agent.a_hist) == 2  # history window of 3 boundaries
    env.close()


@cuda_only
def test_agent_on_cuda_sees_and_imagines_what_the_cpu_does(pendulum_run):
    device = "cuda"  # on the CPU this would compare a model with itself: the CPU path has its own tests
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    agent = Agent.load(pendulum_run, device=device, **PLAN)
    agent.reset(goal)
    for _ in range(3):  # plans on the device, acts on the host
        a = agent.act(obs)
        assert isinstance(a, np.ndarray) and a.shape == (1,) and -2.0 <= a[0] <= 2.0 and np.isfinite(a).all()
        obs, _, _ = env.step(a)
    assert agent.imagined.device.type == device
    cpu, _ = load_checkpoint(pendulum_run)
    dim = agent.k * agent.spec.dim  # macro-action size
    g = torch.Generator().manual_seed(0)
    acts = torch.rand(1, 8, 5, dim, generator=g) * 4 - 2  # (B, S, H, k*A)
    with torch.no_grad():
        z = cpu.encode(np.stack([obs, goal]))  # (2, D)
        torch.testing.assert_close(agent.model.encode(np.stack([obs, goal])).cpu(), z, rtol=1e-4, atol=1e-4)
        z_hist, a_hist = z[None], acts[:, 0, :1]  # two observed embeddings, one action between them
        want = cpu.rollout(z_hist, a_hist, acts)  # (1, S, H, D)
        got = agent.model.rollout(z_hist.to(device), a_hist.to(device), acts.to(device)).cpu()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    env.close()


def test_agent_is_deterministic_and_takes_rgba(pendulum_run):
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    rgba = np.concatenate([goal, np.full(goal.shape[:2] + (1,), 255, np.uint8)], axis=2)
    first = []
    for g in (goal, rgba):
        agent = Agent.load(pendulum_run, **PLAN)
        agent.reset(g)
        first.append(agent.act(obs))
    np.testing.assert_array_equal(first[0], first[1])  # alpha dropped, same seed, same action


def test_final_weight_weighs_the_last_step_of_the_path_cost(pendulum_run):
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    acts = torch.rand(1, 6, 5, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2  # (B, S, H, k*A)
    costs = {}
    for w in (1.0, 4.0, 0.0):
        agent = Agent.load(pendulum_run, final_weight=w, **PLAN)
        agent.reset(goal)
        agent.act(obs)  # one observed embedding in the history
        with torch.no_grad():
            costs[w] = agent.latent_cost()(acts)  # (1, S)
            z = torch.stack(agent.z_hist)[None]
            dist = (agent.model.rollout(z, z.new_zeros(1, 0, 2), acts) - agent.goal).square().mean(-1)  # (1, S, H)
    torch.testing.assert_close(costs[1.0], dist.sum(-1))
    torch.testing.assert_close(costs[4.0], dist.sum(-1) + 3 * dist[..., -1])
    torch.testing.assert_close(costs[0.0], dist[..., :-1].sum(-1))
    with pytest.raises(WorldJepaError, match="final_weight"):
        Agent.load(pendulum_run, final_weight=-1, **PLAN)
    with pytest.raises(WorldJepaError, match="final_weight"):
        Agent.load(pendulum_run, final_weight=3, reduce="final", **PLAN)
    env.close()


@pytest.fixture(scope="module")
def pendulum_run_seed1(pendulum_run):
    """A second run on the same data, another seed: an ensemble member."""
    root = pendulum_run.parent
    cfg = from_dict(TrainConfig, {**SMALL, "data": str(root / "pendulum.h5"), "out": str(root / "run1"), "steps": 40,
                                  "progress": False, "device": "cpu", "seed": 1})
    Trainer(cfg).fit()
    return root / "run1"


def test_an_ensemble_plans_on_the_mean_of_its_members_costs(pendulum_run, pendulum_run_seed1):
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    acts = torch.rand(1, 6, 5, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2  # (B, S, H, k*A)
    costs = []
    for run in (pendulum_run, pendulum_run_seed1, [pendulum_run, pendulum_run_seed1]):
        agent = Agent.load(run, **PLAN)
        agent.reset(goal)
        agent.act(obs)
        with torch.no_grad():
            costs.append(agent.latent_cost()(acts))  # (1, S)
    assert not torch.allclose(costs[0], costs[1])  # two seeds, two latent spaces
    torch.testing.assert_close(costs[2], (costs[0] + costs[1]) / 2)
    assert len(agent.models) == 2 and agent.model is agent.models[0]
    assert agent.goal.shape == (1, 16) and len(agent.z_hist) == 1 and len(agent.history.z[1]) == 1
    # an ensemble of one model twice plans exactly as the model alone
    single, twice = Agent.load(pendulum_run, **PLAN), Agent.load([pendulum_run, pendulum_run], **PLAN)
    for a in (single, twice):
        a.reset(goal)
    for _ in range(4):
        np.testing.assert_allclose(single.act(obs), twice.act(obs), rtol=1e-5, atol=1e-6)
    env.close()


def test_ensemble_members_must_agree(pendulum_run, tmp_path):
    from worldjepa import checkpoint as ckpt
    from worldjepa.world_model import ModelConfig, build_world_model

    tensors, meta = ckpt.load(pendulum_run)
    meta = {k: v for k, v in meta.items() if not k.startswith("_")}
    ckpt.save(tmp_path / "other.safetensors", tensors, {**meta, "env_id": "MountainCarContinuous-v0"})
    with pytest.raises(CheckpointError, match="ensemble member .*other.safetensors.*MountainCarContinuous-v0"):
        Agent.load([pendulum_run, tmp_path / "other.safetensors"])
    with pytest.raises(WorldJepaError, match="empty list"):
        Agent.load([])
    model, meta = load_checkpoint(pendulum_run)
    other = build_world_model(from_dict(ModelConfig, {**meta["model"], "frameskip": 3}))
    with pytest.raises(WorldJepaError, match="member 1 has frame-skip 3"):
        Agent([model, other], meta)


def test_act_steps_replans_within_a_macro_step(pendulum_run):
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    agent = Agent.load(pendulum_run, act_steps=1, **PLAN)  # frame-skip 2: replan at every env step
    assert agent.sub_step and agent.k == 2 and agent.history_len == 3
    agent.reset(goal)
    obs, _ = env.reset(seed=1)
    plans, actions = [], []
    for _ in range(6):
        before = agent.mpc.last_result
        actions.append(agent.act(obs))
        plans.append(agent.mpc.last_result is not before)
        obs, _, _ = env.step(actions[-1])
    assert all(plans)  # a fresh plan at every env step
    assert agent.t == 6 and len(agent.z_hist) == 3  # observed at step 5: the boundaries are steps 1, 3, 5
    torch.testing.assert_close(agent.a_hist[0], torch.as_tensor(np.concatenate(actions[1:3])))
    torch.testing.assert_close(agent.a_hist[1], torch.as_tensor(np.concatenate(actions[3:5])))
    assert agent.imagined is not None and agent.imagined.shape == (5, 16)  # still 5 macro-steps imagined
    same = Agent.load(pendulum_run, act_steps=2, **PLAN)  # = k: the plain macro-step agent
    assert not same.sub_step
    # the first plan is the plain agent's: the same candidates, laid out by env step
    sub = Agent.load(pendulum_run, act_steps=1, **PLAN)
    first, _ = env.reset(seed=1)
    for a in (same, sub):
        a.reset(goal)
    np.testing.assert_array_equal(same.act(first), sub.act(first))
    for bad in (dict(act_steps=3), dict(act_steps=0), dict(act_steps=1, replan_every=2)):
        with pytest.raises(WorldJepaError, match="act_steps"):
            Agent.load(pendulum_run, **bad, **PLAN)
    env.close()


def test_keypoint_weight_weighs_the_encoders_keypoints_in_the_cost(pendulum_run):
    from worldjepa.world_model import ModelConfig, build_world_model

    _, meta = load_checkpoint(pendulum_run)
    torch.manual_seed(0)
    model = build_world_model(from_dict(ModelConfig, {**meta["model"], "encoder": "cnn", "channels": (4, 8, 8),
                                                      "encoder_dim": 12, "keypoints": 2, "projector_layers": 0}))
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    acts = torch.rand(1, 6, 5, 2, generator=torch.Generator().manual_seed(0)) * 4 - 2  # (B, S, H, k*A)
    costs = {}
    for w in (1.0, 9.0):
        agent = Agent(model, meta, keypoint_weight=w, **PLAN)
        agent.reset(goal)
        agent.act(obs)
        with torch.no_grad():
            costs[w] = agent.latent_cost()(acts)  # (1, S)
            z = torch.stack(agent.z_hist)[None]
            sq = (agent.model.rollout(z, z.new_zeros(1, 0, 2), acts) - agent.goal).square()  # (1, S, H, 12)
    assert agent.model.latent_dim == 12  # no projector: the latent is the encoder's output; its last 4: keypoints
    torch.testing.assert_close(costs[1.0], sq.mean(-1).sum(-1))
    torch.testing.assert_close(costs[9.0], ((sq[..., :8].sum(-1) + 9 * sq[..., 8:].sum(-1)) / 12).sum(-1))
    with pytest.raises(WorldJepaError, match="keypoint_weight must be >= 0"):
        Agent(model, meta, keypoint_weight=-1, **PLAN)
    with pytest.raises(WorldJepaError, match="keypoint_weight needs .*model 0 has 0 keypoints"):
        Agent.load(pendulum_run, keypoint_weight=2, **PLAN)  # no keypoints in its latent
    env.close()


def test_eval_takes_an_ensemble_policy(pendulum_run, pendulum_run_seed1):
    from worldjepa.eval.protocol import EvalConfig, make_policy

    env = make_env("Pendulum-v1", 32)
    data = str(pendulum_run.parent / "pendulum.h5")
    agent = make_policy(EvalConfig(data=data, policy=f"{pendulum_run}+{pendulum_run_seed1}"), env)
    assert isinstance(agent, Agent) and len(agent.models) == 2
    with pytest.raises(ConfigError, match="'nope' is neither"):
        make_policy(EvalConfig(data=data, policy=f"{pendulum_run}+nope"), env)
    env.close()


def test_bad_frames_and_wrong_env_are_clear_errors(pendulum_run):
    with pytest.raises(CheckpointError, match="Pendulum-v1.*not worldjepa/TwoRoom-v0"):
        Agent.load(pendulum_run, env_id="worldjepa/TwoRoom-v0")
    agent = Agent.load(pendulum_run, **PLAN)
    with pytest.raises(WorldJepaError, match="reset"):
        agent.act(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(WorldJepaError, match=r"goal frame .*\(32, 32, 1\)"):
        agent.reset(np.zeros((32, 32, 1), np.uint8))
    with pytest.raises(WorldJepaError, match="goal frame"):
        agent.reset(np.zeros((32, 32), np.uint8))
    agent.reset(np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(WorldJepaError, match="observation"):
        agent.act(np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(WorldJepaError, match="planner"):
        Agent.load(pendulum_run, planner="nope")
    with pytest.raises(WorldJepaError, match="reduce"):
        Agent.load(pendulum_run, reduce="last", **PLAN)


def test_plan_command_replays_actions_when_the_dataset_has_no_state(pendulum_run, cli):
    import json

    data = pendulum_run.parent / "pendulum.h5"  # Pendulum records "obs", no restorable "state"
    out = cli("plan", "--run", str(pendulum_run), "--data", str(data), "--start", "3", "--goal-offset", "5",
              "--budget", "3", "--samples", "16", "--iterations", "2", "--threads", "1", "--json", check=True)
    res = json.loads(out.stdout)
    assert res["steps"] == 3 and res["success"] is None and res["distance"] is None  # no success() to judge by
    assert res["latent_distance"] >= 0
    again = cli("plan", "--run", str(pendulum_run), "--data", str(data), "--start", "3", "--goal-offset", "5",
                "--budget", "3", "--samples", "16", "--iterations", "2", "--threads", "1", "--json",
                "--agent", "final_weight=3", check=True)
    assert json.loads(again.stdout)["steps"] == 3
    for opt, msg in (("final_weight=-1", "final_weight must be >= 0"), ("nope=1", "nope")):  # they reach the Agent
        bad = cli("plan", "--run", str(pendulum_run), "--data", str(data), "--goal-offset", "5", "--agent", opt)
        assert bad.returncode != 0 and msg in bad.stderr


def test_discrete_actions_come_back_as_ints(tmp_path):
    pytest.importorskip("pygame")
    data = tmp_path / "cartpole.h5"
    collect(CollectConfig(env="CartPole-v1", out=str(data), episodes=10, steps=15, size=32, policy="random"),
            progress=False)
    cfg = from_dict(TrainConfig, {**SMALL, "data": str(data), "out": str(tmp_path / "run"), "steps": 4,
                                  "progress": False, "device": "cpu", "num_frames": 2, "val_horizon": 1})
    Trainer(cfg).fit()
    env = make_env("CartPole-v1", 32)
    obs, _ = env.reset(seed=0)
    agent = Agent.load(tmp_path / "run", **PLAN)
    agent.reset(obs)
    for _ in range(3):
        a = agent.act(obs)
        assert isinstance(a, int) and a in (0, 1)
        obs, _, _ = env.step(agent.spec.encode(a))


@pytest.mark.parametrize("planner,opts", [("gd", dict(samples=4, iterations=3)),
                                          ("cem_gd", dict(samples=16, iterations=2, elites=4, gd_iterations=2)),
                                          ("mppi", dict(samples=16, iterations=2)),
                                          ("icem", dict(samples=16, iterations=2, elites=4))])
def test_every_planner_drives_the_agent(pendulum_run, planner, opts):
    """Gradient planners need autograd through the predictor, which act() must allow."""
    env = make_env("Pendulum-v1", 32)
    obs, _ = env.reset(seed=0)
    goal, _ = env.reset(seed=1)
    agent = Agent.load(pendulum_run, planner=planner, **opts)
    agent.reset(goal)
    for _ in range(3):
        a = agent.act(obs)
        assert np.all(np.abs(a) <= 2.0 + 1e-6) and np.all(np.isfinite(a))
        obs, _, _ = env.step(a)
    assert all(p.grad is None for p in agent.model.parameters())  # planning never touches the weights
    env.close()


def test_goal_as_an_embedding_plans_as_the_goal_frame(pendulum_run):
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    by_frame, by_embedding = Agent.load(pendulum_run, **PLAN), Agent.load(pendulum_run, **PLAN)
    by_frame.reset(goal)
    by_embedding.reset(by_frame.encode(goal, "goal frame"))  # (D,) in the model's latent
    for _ in range(4):
        np.testing.assert_array_equal(by_frame.act(obs), by_embedding.act(obs))
    # a new subgoal mid-episode keeps the history (set_goal), reset starts over
    t = by_embedding.t
    by_embedding.set_goal(np.zeros(16, np.float32))
    assert by_embedding.t == t and torch.equal(by_embedding.goal, torch.zeros(1, 16))
    with pytest.raises(WorldJepaError, match="16 finite values"):
        by_embedding.set_goal(np.zeros(5, np.float32))
    with pytest.raises(WorldJepaError, match="2 model"):
        Agent.load([pendulum_run, pendulum_run], **PLAN).set_goal(np.zeros(16, np.float32))
    env.close()


def test_observe_returns_the_one_step_prediction_error_as_surprise(pendulum_run):
    """Surprise at step t: the error of the embedding predicted from the context k steps back
    and the macro-action executed since; nan at the first model step."""
    from worldjepa.losses import prediction_error

    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    agent = Agent.load(pendulum_run, **PLAN)
    agent.reset(goal)
    k, frames, actions, surprises = agent.k, [obs], [], []
    for t in range(3 * k):
        actions.append(agent.act(obs))  # observes at steps 0, k, 2k
        if t % k == 0:
            surprises.append(agent.surprise)
        obs, _, _ = env.step(actions[-1])
        frames.append(obs)
    z, s = agent.observe(obs)  # step 3k, by hand
    assert np.isnan(surprises[0]) and np.isfinite(surprises[1:]).all() and s > 0
    model = agent.model
    with torch.no_grad():
        zs = model.encode(np.stack(frames[0:3 * k + 1:k]))  # (4, D): steps 0, k, 2k, 3k
        a = torch.as_tensor(np.stack([np.concatenate(actions[i:i + k]) for i in range(0, 3 * k, k)]))  # (3, k*A)
        pred = model.rollout(zs[None, :3], a[None, :2], a[None, None, 2:3])[0, 0, 0]  # context of step 2k -> 3k
    torch.testing.assert_close(z, zs[3], rtol=1e-5, atol=1e-5)
    assert s == pytest.approx(float(prediction_error(pred, zs[3])), rel=1e-4)
    fresh = Agent.load(pendulum_run, **PLAN)
    fresh.reset(goal)
    assert np.isnan(fresh.observe(obs)[1])  # nothing to predict from yet
    env.close()


def test_an_injected_cost_replaces_the_latent_cost(pendulum_run):
    """Agent(cost=...) plans on any cost of the candidates: here, one that wants the largest torque."""
    model, meta = load_checkpoint(pendulum_run)
    env = make_env("Pendulum-v1", 32)
    goal, _ = env.reset(seed=5)
    obs, _ = env.reset(seed=1)
    seen = []

    def factory(agent):
        seen.append(len(agent.history.z[0]))
        return lambda acts: -acts.sum(dim=(-1, -2))  # (1, S): lower for larger actions

    agent = Agent(model, meta, cost=factory, samples=64, iterations=5, elites=8)
    agent.reset(goal)
    a = agent.act(obs)
    assert seen == [1] and a[0] > 1.5  # built after the first observation; pushed to the bound 2
    env.close()
