"""Kill anywhere: SIGKILL `collect --append`, `train` and `pretrain` at random moments, again and
again; every file must still open and verify, and the runs must end exactly where uninterrupted
ones end (datasets episode for episode, checkpoints tensor for tensor). Slow: ~60 kills."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, run_cli
from worldjepa import checkpoint as ckpt
from worldjepa.data.dataset import Dataset

pytestmark = pytest.mark.slow
KILLS = 20  # per command


def _spawn(args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "worldjepa", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _kill_loop(args_for, trigger, done, rng, kills=KILLS, timeout=600):
    """Start ``args_for()`` and SIGKILL it at a random moment (half of the time right after the
    start, half once ``trigger(start time)`` says it is writing), ``kills`` times.
    Returns (kills delivered, runs that finished before their kill)."""
    delivered = finished = 0
    t0 = time.time()
    while delivered < kills and time.time() - t0 < timeout:
        start = time.time()
        proc = _spawn(args_for())
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0.0, 3.0))
        else:
            while not trigger(start) and proc.poll() is None:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            delivered += 1
        else:
            finished += 1
        proc.communicate()
        done()
    assert delivered == kills, (delivered, finished)
    return delivered, finished


def test_collect_append_killed_anywhere_keeps_every_episode_exactly(tmp_path):
    out, ref = tmp_path / "d.h5", tmp_path / "ref.h5"
    common = ["--env", "worldjepa/TwoRoom-v0", "--steps", "30", "--size", "32", "--seed", "3", "--no-progress"]
    run_cli("collect", *common, "--out", str(out), "--episodes", "2", check=True)
    counts = [2]

    def check():
        with Dataset(out) as ds:  # opens, verifies, and never lost an episode
            assert ds.verify() == [] and ds.num_episodes >= counts[-1]
            counts.append(ds.num_episodes)

    kills, _ = _kill_loop(lambda: ["collect", *common, "--out", str(out), "--episodes", "4", "--append"],
                          lambda t: _written_since(tmp_path.glob(".d.h5.tmp-*"), t), check, np.random.default_rng(0))
    run_cli("collect", *common, "--out", str(out), "--episodes", "1", "--append", check=True)
    counts.append(counts[-1] + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]  # the killed writers' temporaries are gone
    run_cli("collect", *common, "--out", str(ref), "--episodes", str(counts[-1]), check=True)
    with Dataset(out) as a, Dataset(ref) as b:  # episode e depends only on (seed, e): the same data
        assert a.num_episodes == b.num_episodes
        for e in range(a.num_episodes):
            ea, eb = a.episode(e), b.episode(e)
            for k in ("frames", "actions", "state"):
                np.testing.assert_array_equal(ea[k], eb[k])
    print(f"collect --append: {kills} kills, {counts[-1]} episodes kept, all verified")


def _written_since(paths, t):
    """Whether one of ``paths`` was written after time ``t`` (the process is past its start-up)."""
    for p in paths:
        try:
            if p.stat().st_mtime >= t:
                return True
        except FileNotFoundError:
            pass
    return False


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "d.h5"
    run_cli("collect", "--env", "worldjepa/TwoRoom-v0", "--out", str(out), "--episodes", "30", "--steps", "20",
            "--size", "32", "--no-progress", check=True)
    return out


@pytest.mark.parametrize("cmd", ["train", "pretrain"])
def test_training_killed_anywhere_resumes_to_the_uninterrupted_result(data, tmp_path, cmd):
    common = [cmd, "--data", str(data), "--small", "--steps", "200", "--save-every", "7", "--log-every", "1",
              "--no-progress", "--threads", "1", "--device", "cpu"]
    common += ["--val-every", "1000"] if cmd == "train" else ["--eval-frames", "50", "--batch-size", "16"]
    run = tmp_path / "run"
    run_cli(*common, "--out", str(tmp_path / "ref"), check=True)
    steps = []

    def args():
        return [*common, "--out", str(run)] + (["--resume"] if (run / "last.safetensors").exists() else [])

    def check():
        if (run / "last.safetensors").exists():
            meta = ckpt.read_meta(run / "last.safetensors")  # opens, and is a whole checkpoint
            ckpt.load(run / "model.safetensors")
            steps.append(meta["step"])

    kills, _ = _kill_loop(args, lambda t: _written_since([run / "metrics.jsonl"], t), check, np.random.default_rng(1))
    run_cli(*args(), check=True)  # to the end (a finished run's --resume just exits)
    a, _ = ckpt.load(tmp_path / "ref" / "last.safetensors")
    b, _ = ckpt.load(run / "last.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    print(f"{cmd}: {kills} kills, checkpoints seen at steps {sorted(set(steps))}, final state bit-exact")
