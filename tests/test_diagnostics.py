"""The diagnostic scripts BENCHMARKS.md quotes still run (tiny settings: they check wiring, not numbers)."""

import os
import subprocess
import sys

import pytest

from worldjepa.config import from_dict
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.training.config import SMALL, TrainConfig
from worldjepa.training.trainer import Trainer

from tests.conftest import ROOT


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def pusht(tmp_path_factory):
    """12 expert Push-T episodes of 40 steps at 32 px, and a tiny world model with the pusher as proprio."""
    pytest.importorskip("pymunk")
    root = tmp_path_factory.mktemp("diag")
    data = root / "pusht.h5"
    collect(CollectConfig(env="worldjepa/PushT-v0", out=str(data), episodes=12, steps=40, size=32), progress=False)
    model = {**SMALL["model"], "proprio": "state[0:2]", "proprio_emb": 4}
    cfg = from_dict(TrainConfig, {**SMALL, "data": str(data), "out": str(root / "run"), "steps": 4, "model": model,
                                  "progress": False, "device": "cpu"})
    Trainer(cfg).fit()
    return data, root / "run"


@pytest.mark.parametrize("cost", ["latent", "state"])
def test_planner_ceiling_runs_the_protocol_on_the_true_env(pusht, cost):
    data, run = pusht
    proc = _script("diag_planner_ceiling.py", "--run", str(run), "--data", str(data), "--episodes", "1",
                   "--agent", "samples=4 iterations=1 elites=2", "--cost", cost)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"true env as the predictor, {cost} cost" in proc.stdout and "over 1 pairs" in proc.stdout
    refused = _script("diag_planner_ceiling.py", "--run", str(run), "--data", str(data), "--planner", "gd")
    assert refused.returncode != 0 and "not differentiable" in refused.stderr


def test_state_model_learns_and_plans(pusht):
    data, _ = pusht
    proc = _script("diag_state_model.py", "--data", str(data), "--steps", "3", "--episodes", "1",
                   "--samples", "8", "--iterations", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| 5 |" in proc.stdout and "protocol (1 pairs" in proc.stdout
