"""Evaluation at scale: --workers N gives the records of one process, and a killed evaluation
resumes from the records it appended as episodes finished (--resume), to the same result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, tiny_run
from worldjepa.cli import main
from worldjepa.config import from_dict
from worldjepa.errors import ConfigError
from worldjepa.eval.journal import sidecar
from worldjepa.eval.protocol import EvalConfig, run_protocol

AGENT = {"planner": {"samples": 24, "iterations": 3}}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("workers"), episodes=24, steps=40, train_steps=6, threads=1)


def _eval(data, **kw):
    return run_protocol(from_dict(EvalConfig, {"data": data, "goal_offset": 8, "budget": 12, "threads": 1, **kw}),
                        progress=False)


@pytest.mark.parametrize("policy, far", [("random", False), ("random", True), ("run", False)])
def test_two_workers_give_the_records_of_one_process(tiny, policy, far):
    data, run = tiny
    kw = {"policy": run, "agent": AGENT, "episodes": 5} if policy == "run" else {"policy": policy, "episodes": 8}
    one = _eval(data, far=far, far_budget=12, **kw)
    two = _eval(data, far=far, far_budget=12, workers=2, **kw)
    assert one["records"] == two["records"] and one["summary"]["episodes"] == len(one["records"])
    assert one["protocol"]["episode_seeding"] == "per pair" and one["format_version"] == 3


def test_one_pool_serves_every_policy_of_an_evaluation(tiny):
    """`eval --policy a,b --workers 2` starts its workers once: the second policy's episodes run in
    the first one's pool (each worker keeps a setting per policy), with the records of one process."""
    from worldjepa.eval import workers

    data, run = tiny
    settings = [{"policy": "random", "episodes": 6}, {"policy": run, "agent": AGENT, "episodes": 4}]
    one = [_eval(data, **kw) for kw in settings]
    pools = []
    try:
        for kw in settings:
            cfg = from_dict(EvalConfig, {"data": data, "goal_offset": 8, "budget": 12, "threads": 1, "workers": 2, **kw})
            two = run_protocol(cfg, progress=False, keep_workers=True)
            assert two["records"] == one[len(pools)]["records"]
            pools.append(list(workers._POOLS.values()))
        assert len(pools[0]) == 1 and pools[1] == pools[0]  # the same pool, started once
    finally:
        workers.close_pools()
    assert not workers._POOLS
    _eval(data, workers=2, **settings[0])  # from Python, without keep_workers: nothing left running
    assert not workers._POOLS


def test_an_episode_is_the_same_whatever_ran_before_it(tiny):
    """Each episode's randomness is a function of its index: the records of 3 pairs are the first
    3 records of 6 (the pairs are drawn in the same order)."""
    data, run = tiny
    for kw in ({"policy": "random"}, {"policy": run, "agent": AGENT}):
        short, long = _eval(data, episodes=3, **kw), _eval(data, episodes=6, **kw)
        assert long["records"][:3] == short["records"]


def test_a_python_policy_object_runs_in_one_process(tiny):
    from worldjepa.agent import Agent

    agent = Agent.load(tiny[1], device="cpu", **AGENT["planner"])
    with pytest.raises(ConfigError, match="workers"):
        run_protocol(EvalConfig(data=tiny[0], episodes=2, workers=2), policy=agent, progress=False)


def test_a_killed_evaluation_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    data, run = tiny
    args = ["eval", "--data", data, "--policy", f"random,{run}", "--episodes", "6", "--goal-offset", "8",
            "--budget", "12", "--samples", "48", "--iterations", "4", "--threads", "1", "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "whole.json")]) == 0
    assert not sidecar(tmp_path / "whole.json").exists()  # deleted once the results are written
    whole = json.loads((tmp_path / "whole.json").read_text())

    out = tmp_path / "killed.json"
    journal = sidecar(out)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "worldjepa", *args, "--json", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # kill it once the second policy is under way
        lines = journal.read_text().splitlines() if journal.exists() else []
        if sum('"index"' in line for line in lines) >= 8:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(60) == -signal.SIGKILL, "the evaluation ended before it could be killed"
    assert not out.exists() and journal.exists()
    kept = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    assert 8 <= sum("index" in e for e in kept) < 12  # no more lost than the episode in flight

    assert main([*args, "--json", str(out), "--seed", "1", "--resume"]) == 2  # other options: refused, kept
    assert journal.exists()
    assert main([*args, "--json", str(out)]) == 2  # an interrupted evaluation is not overwritten
    assert main([*args, "--json", str(out), "--resume"]) == 0
    resumed = json.loads(out.read_text())
    for name in ("random", run):
        assert resumed[name]["records"] == whole[name]["records"], name
    assert not journal.exists()


def test_resume_needs_the_results_file(tiny, capsys):
    assert main(["eval", "--data", tiny[0], "--policy", "random", "--resume"]) == 2
    assert "--json" in capsys.readouterr().err
