"""The evaluation protocol: held-out pairs, sound restores (replay ~100%), floors and ceilings."""

import dataclasses
import json

import numpy as np
import pytest

from worldjepa.data.collect import CollectConfig, collect
from worldjepa.data.dataset import Dataset
from worldjepa.errors import ConfigError, WorldJepaError
from worldjepa.metrics import wilson_interval
from worldjepa.eval.protocol import EvalConfig, draw_pairs, run_protocol


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("tw") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=30, steps=60, size=32), progress=False)
    return out


def test_pairs_come_only_from_held_out_episodes(tworoom):
    cfg = EvalConfig(data=str(tworoom), episodes=200, goal_offset=25)
    with Dataset(tworoom) as ds:
        pairs = draw_pairs(ds, cfg)
        test, train = set(ds.episode_ids("test").tolist()), set(ds.episode_ids("train").tolist())
        assert {e for e, _ in pairs} <= test and not ({e for e, _ in pairs} & train)
        assert all(0 <= t and t + 25 < ds.lengths[e] for e, t in pairs)
    assert draw_pairs(Dataset(tworoom), cfg) == pairs  # fixed by the seed


def test_replay_succeeds_random_is_far_lower_oracle_is_high(tworoom):
    res = {p: run_protocol(EvalConfig(data=str(tworoom), policy=p, episodes=40), progress=False)["summary"]
           for p in ("replay", "random", "oracle")}
    assert res["replay"]["success_rate"] >= 0.95
    assert res["oracle"]["success_rate"] >= 0.95
    assert res["random"]["success_rate"] <= res["replay"]["success_rate"] - 0.3


def test_far_goals_and_seed_changes_pairs(tworoom):
    r = run_protocol(EvalConfig(data=str(tworoom), policy="oracle", episodes=10, far=True), progress=False)
    assert r["protocol"]["budget"] == 200 and r["summary"]["episodes"] == 10
    with Dataset(tworoom) as ds:
        assert draw_pairs(ds, EvalConfig(data=str(tworoom), seed=1)) != draw_pairs(ds, EvalConfig(data=str(tworoom), seed=2))


def test_straight_baseline_on_pointmaze_and_refused_without_straight_oracle_action(tworoom, tmp_path):
    from worldjepa.errors import WorldJepaError

    out = tmp_path / "maze.h5"
    collect(CollectConfig(env="worldjepa/PointMaze-Medium-v0", out=str(out), episodes=10, steps=40, size=16),
            progress=False)
    res = {p: run_protocol(EvalConfig(data=str(out), policy=p, episodes=20, far=True, seed=3), progress=False)
           for p in ("oracle", "straight")}
    assert res["oracle"]["summary"]["success_rate"] == 1.0  # the path-following oracle is the ceiling
    assert res["straight"]["summary"]["success_rate"] <= 0.75  # heading straight at the goal runs into walls
    assert res["straight"]["config"]["policy"] == "straight"
    with pytest.raises(WorldJepaError, match="straight_oracle_action"):
        run_protocol(EvalConfig(data=str(tworoom), policy="straight", episodes=2), progress=False)


def test_third_party_env_starts_by_replaying_actions(tmp_path):
    out = tmp_path / "pendulum.h5"
    collect(CollectConfig(env="Pendulum-v1", out=str(out), episodes=20, steps=40, size=16), progress=False)
    with pytest.raises(ConfigError, match="success-threshold"):
        run_protocol(EvalConfig(data=str(out), policy="replay", episodes=5, goal_offset=10, budget=20), progress=False)
    r = run_protocol(EvalConfig(data=str(out), policy="replay", episodes=10, goal_offset=10, budget=20,
                                success_threshold=1e-3), progress=False)
    assert r["protocol"]["restore"] == "replay of recorded actions"
    assert r["summary"]["success_rate"] == 1.0
    # success on chosen obs entries only (Pendulum: cos, sin of the angle; not its rate)
    r = run_protocol(EvalConfig(data=str(out), policy="replay", episodes=5, goal_offset=10, budget=20,
                                success_threshold=1e-3, success_dims="0,1"), progress=False)
    assert r["summary"]["success_rate"] == 1.0
    with pytest.raises(ConfigError, match="out of range"):
        run_protocol(EvalConfig(data=str(out), policy="replay", episodes=5, goal_offset=10,
                                success_threshold=1e-3, success_dims="0,7"), progress=False)
    with pytest.raises(ConfigError, match="integers"):
        run_protocol(EvalConfig(data=str(out), policy="replay", episodes=5, goal_offset=10,
                                success_threshold=1e-3, success_dims="cos"), progress=False)


def test_far_goals_of_a_third_party_env_come_from_other_held_out_episodes(tmp_path, tworoom):
    """An env that cannot draw a state gets far goals from the recordings: a frame of another test
    episode, at least --far-min-distance from the start in the judged distance."""
    out = tmp_path / "pendulum.h5"
    collect(CollectConfig(env="Pendulum-v1", out=str(out), episodes=30, steps=30, size=16), progress=False)
    cfg = EvalConfig(data=str(out), policy="random", episodes=8, far=True, far_budget=5, success_threshold=0.05,
                     success_dims="0,1", far_min_distance=1.0)
    r = run_protocol(cfg, progress=False)
    assert r["protocol"]["far_goals"] == "recorded" and r["protocol"]["budget"] == 5
    with Dataset(out) as ds:
        test = set(ds.episode_ids("test").tolist())
        for rec in r["records"]:
            assert rec["goal_episode"] in test and rec["goal_episode"] != rec["episode"]
            start = ds.episode(rec["episode"])["obs"][rec["start"]]
            goal = ds.episode(rec["goal_episode"])["obs"][rec["goal_step"]]
            assert np.linalg.norm(start[:2] - goal[:2]) >= 1.0
    with pytest.raises(WorldJepaError, match="far-min-distance"):
        run_protocol(EvalConfig(data=str(out), policy="random", episodes=2, far=True, success_threshold=0.05,
                                success_dims="0,1", far_min_distance=5.0), progress=False)  # cos, sin: never 5 apart
    r = run_protocol(EvalConfig(data=str(tworoom), policy="random", episodes=6, far=True, far_min_distance=40.0),
                     progress=False)  # a built-in env draws them, as far in a straight line
    assert r["protocol"]["far_goals"] == "sampled"
    assert all(np.hypot(*np.subtract(rec["start_state"][:2], rec["goal_state"][:2])) >= 40 for rec in r["records"])
    with pytest.raises(ConfigError, match="add --far"):
        EvalConfig(data="x.h5", far_min_distance=1.0)


def test_success_dims_select_the_obs_entries_judged():
    from worldjepa.envs.adapter import make_env
    from worldjepa.eval.judge import Judge as _Judge

    env = make_env("Pendulum-v1", 16)
    cfg = EvalConfig(data="x.h5", success_threshold=0.5, success_dims="0,1")
    judge = _Judge(env, cfg, has_state=False)
    ok, d = judge(np.array([1.0, 0.0, 8.0]), np.array([1.0, 0.3, -8.0]))  # rates differ by 16, angle barely
    assert ok and abs(d - 0.3) < 1e-12
    ok, d = _Judge(env, EvalConfig(data="x.h5", success_threshold=0.5), has_state=False)(
        np.array([1.0, 0.0, 8.0]), np.array([1.0, 0.3, -8.0]))
    assert not ok and d > 16
    env.close()


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and abs(hi - 0.2775) < 1e-3
    lo, hi = wilson_interval(10, 10)
    assert abs(lo - 0.7225) < 1e-3 and hi == 1.0
    lo, hi = wilson_interval(25, 50)
    assert abs(lo - 0.3664) < 1e-3 and abs(hi - 0.6336) < 1e-3


def test_cli_prints_table_and_writes_json(cli, tworoom, tmp_path):
    out = tmp_path / "r.json"
    gif = tmp_path / "r.gif"
    proc = cli("eval", "--data", str(tworoom), "--policy", "replay", "--episodes", "5", "--json", str(out), "--gif", str(gif),
               check=True)
    assert "success" in proc.stdout and "replay" in proc.stdout and "95% CI" in proc.stdout
    res = json.loads(out.read_text())
    assert len(res["records"]) == 5 and res["summary"]["episodes"] == 5
    assert gif.read_bytes()[:3] == b"GIF"
    bad = cli("eval", "--data", str(tworoom), "--policy", "no/such/run")
    assert bad.returncode == 2 and "neither" in bad.stderr
    bad = cli("eval", "--data", str(tworoom), "--env", "worldjepa/Reacher-v0")
    assert bad.returncode == 2 and "does not match" in bad.stderr


def test_agent_options_parse_and_reach_the_agent():
    from worldjepa.config import parse_agent_options as agent_options

    assert agent_options("horizon=8 samples=500,reduce=final warm_start=false") == {
        "horizon": 8, "samples": 500, "reduce": "final", "warm_start": False}
    assert agent_options("") == {}
    with pytest.raises(ConfigError, match="key=value"):
        agent_options("horizon")


def test_threads_option_sets_torch_threads(tworoom):
    import torch

    n = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run_protocol(EvalConfig(data=str(tworoom), policy="random", episodes=2, threads=1), progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)


def test_run_protocol_refuses_a_policy_trained_on_another_env(tworoom, tmp_path):
    """From Python as from the CLI: a TwoRoom model is not scored on PointMaze without a word."""
    from worldjepa.agent import Agent
    from worldjepa.configs import ModelConfig
    from worldjepa.envs.adapter import make_env
    from worldjepa.errors import CheckpointError
    from worldjepa.world_model import build_world_model

    env = make_env("worldjepa/TwoRoom-v0", 32)
    meta = {"env_id": "worldjepa/TwoRoom-v0", "frame_size": 32, "action_space": env.describe()["action_space"]}
    env.close()
    model = build_world_model(ModelConfig(frame_size=32, action_dim=2, latent_dim=8, projector_hidden=16,
                                          predictor_hidden=16, frameskip=2))
    agent = Agent(model, meta, samples=8, iterations=1, horizon=2)
    maze = tmp_path / "maze.h5"
    collect(CollectConfig(env="worldjepa/PointMaze-UMaze-v0", out=str(maze), episodes=8, steps=30, size=32),
            progress=False)
    with pytest.raises(CheckpointError, match="trained on worldjepa/TwoRoom-v0, not worldjepa/PointMaze-UMaze-v0"):
        run_protocol(EvalConfig(data=str(maze), episodes=1), policy=agent, progress=False)
    r = run_protocol(EvalConfig(data=str(tworoom), episodes=1, budget=2), policy=agent, progress=False)
    assert r["summary"]["episodes"] == 1  # its own env: evaluated


def test_pairs_solved_at_step_0_are_redrawn_and_counted(tworoom):
    """A start that already meets its goal says nothing of a policy: it is replaced by a fresh draw."""
    from worldjepa.envs.adapter import make_env

    cfg = EvalConfig(data=str(tworoom), policy="replay", episodes=40, goal_offset=2, budget=5)
    env = make_env("worldjepa/TwoRoom-v0", 32)
    with Dataset(tworoom) as ds:
        first = draw_pairs(ds, cfg)
        solved = [env.unwrapped.success(ds.episode(e)["state"][t], ds.episode(e)["state"][t + 2]) for e, t in first]
    assert sum(solved) >= 5  # 2 steps apart: often within the success radius
    r = run_protocol(cfg, progress=False)
    assert r["protocol"]["solved_at_start_redrawn"] >= sum(solved)
    assert all(rec["steps"] >= 1 for rec in r["records"])  # none counted as a free success
    for rec, (e, t), was_solved in zip(r["records"], first, solved):
        if not was_solved:  # the other draws stay where they were
            assert (rec["episode"], rec["start"]) == (e, t)
        assert not env.unwrapped.success(np.array(rec["start_state"]), np.array(rec["goal_state"]))
    again = run_protocol(dataclasses.replace(cfg, policy="random"), progress=False)  # the same pairs for any policy
    assert [(x["episode"], x["start"]) for x in again["records"]] == [(x["episode"], x["start"]) for x in r["records"]]


def test_results_record_format_dataset_and_checkpoint_identity(tworoom, tmp_path):
    from worldjepa.agent import Agent
    from worldjepa.config import from_dict
    from worldjepa.configs import PRESETS, TrainConfig
    from worldjepa.training.trainer import Trainer
    from worldjepa.world_model import load_world_model, model_fingerprint

    run = tmp_path / "run"
    Trainer(from_dict(TrainConfig, {**PRESETS["train"]["small"], "data": str(tworoom), "out": str(run), "steps": 2,
                                    "progress": False, "device": "cpu"})).fit()
    agent = Agent.load(run, samples=8, iterations=1, horizon=2)
    r = run_protocol(EvalConfig(data=str(tworoom), episodes=1, budget=2), policy=agent, progress=False)
    assert r["format"] == "worldjepa-eval-results" and r["format_version"] == 3
    with Dataset(tworoom) as ds:
        assert r["dataset"] == ds.fingerprint()
    (ck,) = r["checkpoints"]
    assert ck["path"] == str((run / "model.safetensors").resolve()) and ck["step"] == 2
    assert ck["weights_sha256"] == model_fingerprint(load_world_model(run)[0]) and len(ck["weights_sha256"]) == 16
    next(agent.model.predictor.parameters()).data += 1  # other weights: another identity
    other = run_protocol(EvalConfig(data=str(tworoom), episodes=1, budget=2), policy=agent, progress=False)
    assert other["checkpoints"][0]["weights_sha256"] != ck["weights_sha256"]
    assert run_protocol(EvalConfig(data=str(tworoom), episodes=1), progress=False)["checkpoints"] == []


def test_mcnemar_exact_and_the_paired_comparison():
    from scipy.stats import binomtest

    from worldjepa.metrics import mcnemar_exact, paired_comparison

    for b, c in ((0, 0), (5, 1), (10, 2), (3, 3), (0, 7), (20, 9)):
        assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue if b + c else 1.0, abs=1e-12)
    rec = lambda e, s, ok: {"episode": e, "start": s, "success": ok}  # noqa: E731
    a = [rec(0, 1, True), rec(0, 1, True), rec(1, 2, False), rec(2, 3, True), rec(3, 0, True)]
    b = [rec(0, 1, False), rec(0, 1, True), rec(1, 2, True), rec(2, 3, True), rec(4, 0, False)]  # last: another pair
    c = paired_comparison(a, b)
    assert c == {"shared": 4, "both": 2, "neither": 0, "only_a": 1, "only_b": 1, "p_value": 1.0}


def test_cli_compares_policies_on_their_shared_pairs(cli, tworoom, tmp_path):
    from worldjepa.metrics import paired_comparison

    out = tmp_path / "r.json"
    proc = cli("eval", "--data", str(tworoom), "--policy", "replay,random,oracle", "--episodes", "12", "-q",
               "--json", str(out), check=True)
    res = json.loads(out.read_text())
    assert "exact McNemar test" in proc.stdout
    lines = {tuple(line.split()[:2]): line.split() for line in proc.stdout.splitlines()[-4:-1]}
    assert set(lines) == {("replay", "random"), ("replay", "oracle"), ("random", "oracle")}
    for (a, b), cols in lines.items():
        c = paired_comparison(res[a]["records"], res[b]["records"])
        assert [int(x) for x in cols[2:7]] == [c["shared"], c["both"], c["only_a"], c["only_b"], c["neither"]]
        assert float(cols[7]) == pytest.approx(c["p_value"], rel=1e-2)
    assert lines[("replay", "random")][2] == "12"  # every pair shared
