"""Dict observations (goal-conditioned envs): each numeric entry is recorded as an extra
(``obs/observation``, ``obs/achieved_goal``, ...), and eval judges success on a chosen one."""

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.eval import dict_obs_env  # noqa: F401  (registers TinyGoal-v0)
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.data.dataset import Dataset
from worldjepa.errors import ConfigError
from worldjepa.eval.protocol import EvalConfig, run_protocol

ENV_MODULE = str(ROOT / "tests" / "eval" / "dict_obs_env.py")


@pytest.fixture(scope="module")
def goal_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("dict") / "goal.h5"
    collect(CollectConfig(env="TinyGoal-v0", out=str(out), episodes=20, steps=30, size=16, policy="random"),
            progress=False)
    return out


def test_each_entry_of_a_dict_observation_is_recorded(goal_data):
    with Dataset(goal_data) as ds:
        assert {"obs/observation", "obs/achieved_goal", "obs/desired_goal"} <= set(ds.extras)
        assert "obs" not in ds.extras
        assert ds.shapes["obs/observation"] == (4,) and ds.shapes["obs/achieved_goal"] == (2,)
        ep = ds.episode(3)
    np.testing.assert_array_equal(ep["obs/achieved_goal"], ep["obs/observation"][:, :2])  # the position, both times
    assert np.ptp(ep["obs/achieved_goal"], axis=0).max() > 0.1  # it moved
    assert np.ptp(ep["obs/desired_goal"], axis=0).max() == 0  # the episode's goal stays


def test_eval_judges_success_on_a_chosen_entry(goal_data):
    base = dict(data=str(goal_data), episodes=20, goal_offset=10, budget=15)
    r = run_protocol(EvalConfig(policy="replay", success_threshold=1e-4, success_key="obs/achieved_goal", **base),
                     progress=False)
    assert r["protocol"]["restore"] == "replay of recorded actions" and r["summary"]["success_rate"] == 1.0
    r = run_protocol(EvalConfig(policy="replay", success_threshold=1e-4, success_key="obs/observation",
                                success_dims="0,1", **base), progress=False)
    assert r["summary"]["success_rate"] == 1.0  # the position's entries of the observation vector
    rnd = run_protocol(EvalConfig(policy="random", success_threshold=0.05, success_key="obs/achieved_goal", **base),
                       progress=False)
    assert rnd["summary"]["success_rate"] <= 0.5  # the judge tells a wrong end from the right one
    with pytest.raises(ConfigError, match="--success-key with one of obs/achieved_goal, obs/desired_goal, obs/observation"):
        run_protocol(EvalConfig(policy="replay", success_threshold=1e-4, **base), progress=False)
    with pytest.raises(ConfigError, match="out of range .* obs/achieved_goal of 2 values"):
        run_protocol(EvalConfig(policy="replay", success_threshold=1e-4, success_key="obs/achieved_goal",
                                success_dims="0,2", **base), progress=False)


def test_cli_collects_and_evaluates_a_dict_observation_env(cli, tmp_path):
    data = str(tmp_path / "g.h5")
    cli("collect", "--env", "TinyGoal-v0", "--env-module", ENV_MODULE, "--out", data, "--episodes", "10",
        "--steps", "30", "--size", "16", "--policy", "random", "-q", check=True)
    proc = cli("eval", "--data", data, "--env-module", ENV_MODULE, "--policy", "replay", "--episodes", "5",
               "--goal-offset", "10", "--success-threshold", "1e-4", "--success-key", "obs/achieved_goal", "-q",
               check=True)
    assert "100.0%" in proc.stdout
    bad = cli("eval", "--data", data, "--env-module", ENV_MODULE, "--policy", "replay", "--success-threshold", "1e-4")
    assert bad.returncode == 2 and "--success-key" in bad.stderr
