"""The diagnostic scripts BENCHMARKS.md quotes still run (tiny settings: they check wiring, not numbers)."""

import os
import subprocess
import sys

import pytest

from worldjepa.config import from_dict
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.configs import PRESETS, TrainConfig
from worldjepa.training.trainer import Trainer

from tests.conftest import ROOT

SMALL = PRESETS["train"]["small"]


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
    collect(CollectConfig(env="worldjepa/PushT-v1", out=str(data), episodes=12, steps=40, size=32), progress=False)
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


def test_planner_ceiling_of_a_memory_on_far_goals(pusht, tmp_path):
    """The ceiling of the memory's guidance: it runs with a memory among its agent options, and the goal
    offset and budget reach the protocol."""
    from worldjepa.cli import main

    data, run = pusht
    mem = tmp_path / "mem.db"
    assert main(["memory", "build", "--run", str(run), "--data", str(data), "--out", str(mem), "--no-progress"]) == 0
    proc = _script("diag_planner_ceiling.py", "--run", str(run), "--data", str(data), "--episodes", "1",
                   "--goal-offset", "30", "--budget", "6",
                   "--agent", f"memory={mem} route_learn=false samples=4 iterations=1 elites=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "over 1 pairs (goal +30 steps, budget 6)" in proc.stdout, proc.stdout


def test_latent_cost_perturbations_are_measured_on_the_model_latent(pusht):
    data, run = pusht
    proc = _script("diag_latent_cost.py", "--run", str(run), "--data", str(data), "--perturb", "--episodes", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in proc.stdout.splitlines()
            if line.startswith("| block") or line.startswith("| pusher")}
    assert set(rows) == {"block moved 20 units", "block turned pi/9", "pusher moved 40 units"}
    assert rows["block moved 20 units"][1].strip() == "1.00"
    assert all(float(mse) > 0 for mse, _ in rows.values())  # every change moves the latent (proprio included)
    plain = _script("diag_latent_cost.py", "--run", str(run), "--data", str(data))
    assert plain.returncode != 0 and "--parts" in plain.stderr


def test_latent_saturation_table(pusht):
    data, run = pusht
    proc = _script("diag_latent_cost.py", "--run", str(run), "--data", str(data), "--saturation", "--episodes", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split("|")[1:5] for line in proc.stdout.splitlines() if line[:2] == "| " and line[2].isdigit()]
    assert [int(r[0]) for r in rows] == [10, 20, 40, 80, 160, 240]
    assert all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows if int(r[1]) > 0)  # a moved block moves both


@pytest.mark.parametrize("variant", [(), ("--frame", "block", "--augment", "d4", "--frameskip", "1"),
                                     ("--model", "sim", "--frameskip", "1"),
                                     ("--frameskip", "1", "--aggregate", "1", "--aggregate-pairs", "1",
                                      "--aggregate-steps", "2")])
def test_state_model_learns_and_plans(pusht, variant):
    data, _ = pusht
    proc = _script("diag_state_model.py", "--data", str(data), "--steps", "3", "--episodes", "1",
                   "--samples", "8", "--iterations", "1", *variant)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "protocol (1 pairs" in proc.stdout
    learned = "sim" not in variant
    assert ("| 5 |" in proc.stdout) == learned  # the learned model's error table on recorded actions ...
    assert ("along the" in proc.stdout and "plans CEM chose" in proc.stdout) == learned  # ... and on its plans
    if "--aggregate" in variant:  # the planner's own val-split episodes were added and the model retrained
        assert "after aggregation round 1 (+1 planner episodes from val pairs" in proc.stdout


def test_d4_augmentation_maps_push_t_transitions_to_transitions():
    """The state check's `--augment d4` is only honest if Push-T's physics is symmetric under it:
    a transformed recording must be exactly what the env does from the transformed start."""
    pytest.importorskip("pymunk")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import numpy as np
    from diag_state_model import d4

    from worldjepa.envs.pusht import PushTEnv, wrap

    env, rng = PushTEnv(), np.random.default_rng(0)
    seen = set()
    for i in range(24):
        s = env.sample_state(rng)
        s[0:2] = s[2:4] + rng.uniform(-60, 60, 2)  # pusher near the block: contacts
        acts = rng.uniform(-1, 1, (4, 2))
        states = [s]
        for a in acts:
            states.append(env.advance(states[-1], a))
        g_rng = np.random.default_rng(i)
        gs, ga = d4(np.array(states), acts, g_rng)
        g_rng = np.random.default_rng(i)
        seen.add(tuple(g_rng.random(3) < 0.5))  # which of the 8 symmetries this case drew
        replay = [gs[0]]
        for a in ga:
            replay.append(env.advance(replay[-1], a))
        replay = np.array(replay)
        angle = np.array([wrap(x) for x in replay[:, 4] - gs[:, 4]])
        assert np.abs(np.delete(replay - gs, 4, axis=1)).max() < 1e-6 and np.abs(angle).max() < 1e-6, i
    assert len(seen) >= 6  # most of the group was exercised
