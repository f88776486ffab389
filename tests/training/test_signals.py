"""SIGINT, SIGTERM and SIGHUP finish the step, save it and exit 128 + signal; the resume equals
the uninterrupted run bit for bit; a torn metrics line is tolerated, changed data refused."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT, run_cli
from tests.training.test_trainer import SMALL, _cfg, tworoom  # noqa: F401 (tworoom: a fixture)
from worldjepa import checkpoint as ckpt
from worldjepa.configs import EncoderConfig, PretrainConfig
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.errors import CheckpointError
from worldjepa.signals import Interrupted
from worldjepa.training.pretrain import Pretrainer
from worldjepa.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tworoom):  # test_trainer's: TwoRoom, 60 episodes of 30 steps, 32x32
    return tworoom


def _train_cfg(data, out, **kw):
    model = {**SMALL["model"], "predictor": "transformer", "preset": "small"}  # dropout: the RNG must resume too
    return _cfg(data, out, **{"steps": 10, "warmup_steps": 3, "save_every": 100, "val_every": 4, "log_every": 1,
                              "model": model, **kw})


def _pretrain_cfg(data, out, **kw):
    return PretrainConfig(data=data, out=str(out), steps=10, batch_size=16,
                          encoder=EncoderConfig(dim=32, channels=(8, 16)),
                          projector_hidden=32, sigreg_slices=32, log_every=1, probe_every=3, save_every=100,
                          eval_frames=0, progress=False, device="cpu", **kw)


def _signal_during_step(run, at_step, signals):
    """Send ``signals`` to this process while step ``at_step`` runs (real signals, real handlers)."""
    real = run.train_step

    def step():
        if run.step + 1 == at_step:
            for s in signals:
                os.kill(os.getpid(), s)
        return real()

    run.train_step = step


def _same_tensors(a, b):
    ta, _ = ckpt.load(a)
    tb, _ = ckpt.load(b)
    assert set(ta) == set(tb)
    return [k for k in ta if not torch.equal(ta[k], tb[k])]


def _metrics(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "train/steps_per_s")} for r in rows]


@pytest.mark.parametrize("loop,sig", [("train", signal.SIGTERM), ("train", signal.SIGINT), ("pretrain", signal.SIGHUP)])
def test_a_stop_signal_saves_the_finished_step_and_the_resume_is_bit_exact(data, tmp_path, loop, sig):
    make, cfg = (Trainer, _train_cfg) if loop == "train" else (Pretrainer, _pretrain_cfg)
    full = make(cfg(data, tmp_path / "full"))
    full.fit()
    part = make(cfg(data, tmp_path / "part"))
    _signal_during_step(part, 6, [sig])
    with pytest.raises(Interrupted) as err:
        part.fit()
    assert err.value.signum == sig and "step 6 saved" in str(err.value)
    assert ckpt.read_meta(tmp_path / "part" / "last.safetensors")["step"] == 6
    resumed = make(cfg(data, tmp_path / "part", resume=True))
    resumed.fit()
    assert _same_tensors(tmp_path / "full" / "last.safetensors", tmp_path / "part" / "last.safetensors") == []
    assert _same_tensors(tmp_path / "full" / "model.safetensors", tmp_path / "part" / "model.safetensors") == []
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(data, tmp_path):
    run = Trainer(_train_cfg(data, tmp_path / "run", save_every=3))
    _signal_during_step(run, 5, [signal.SIGTERM, signal.SIGTERM])
    with pytest.raises(Interrupted, match="stopped at once, inside step 5; the last checkpoint \\(step 3\\) is intact"):
        run.fit()
    assert ckpt.read_meta(tmp_path / "run" / "last.safetensors")["step"] == 3
    assert Trainer(_train_cfg(data, tmp_path / "run", resume=True)).step == 3


def test_a_torn_metrics_line_is_dropped_on_resume(data, tmp_path):
    Trainer(_train_cfg(data, tmp_path / "run")).fit(stop_at=4)
    with open(tmp_path / "run" / "metrics.jsonl", "ab") as f:
        f.write(b'{"step": 5, "train/lo\n7\n\x00\x00\x00\xff{"step"')  # a killed writer's leftovers
    run = Trainer(_train_cfg(data, tmp_path / "run", resume=True))
    run.fit()
    assert [r["step"] for r in _metrics(tmp_path / "run")] == list(range(1, 11))


def test_resume_on_changed_data_is_refused_unless_allowed(data, tmp_path):
    local = tmp_path / "d.h5"
    local.write_bytes(open(data, "rb").read())
    Trainer(_train_cfg(str(local), tmp_path / "run")).fit(stop_at=3)
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(local), episodes=2, steps=20, size=32, append=True),
            progress=False)
    with pytest.raises(CheckpointError, match=r"the data changed .* 60 episodes.* now has 62 episodes.*"
                                              r"--allow-data-change"):
        Trainer(_train_cfg(str(local), tmp_path / "run", resume=True))
    assert Trainer(_train_cfg(str(local), tmp_path / "run", resume=True, allow_data_change=True)).step == 3
    Pretrainer(_pretrain_cfg(str(local), tmp_path / "pre")).fit(stop_at=2)
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(local), episodes=1, steps=20, size=32, append=True),
            progress=False)
    with pytest.raises(CheckpointError, match="the data changed"):
        Pretrainer(_pretrain_cfg(str(local), tmp_path / "pre", resume=True))


def _start(args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "worldjepa", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("cmd,sig", [("train", signal.SIGINT), ("train", signal.SIGTERM), ("train", signal.SIGHUP),
                                     ("pretrain", signal.SIGTERM)])
def test_cli_stop_signals_exit_128_plus_signal_and_resume_exactly(data, tmp_path, cmd, sig):
    common = ["--data", data, "--small", "--steps", "150", "--no-progress", "--threads", "1", "--device", "cpu",
              "--log-every", "1", "--save-every", "1000"]
    common += ["--val-every", "1000"] if cmd == "train" else ["--eval-frames", "50", "--batch-size", "16"]
    run_cli(cmd, *common, "--out", str(tmp_path / "full"), check=True)
    proc = _start([cmd, *common, "--out", str(tmp_path / "part")])
    metrics = tmp_path / "part" / "metrics.jsonl"
    t0 = time.time()
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 5):
        assert proc.poll() is None and time.time() - t0 < 120, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"worldjepa {cmd}: stopped by {signal.Signals(sig).name}; step ") and "--resume" in last
    step = ckpt.read_meta(tmp_path / "part" / "last.safetensors")["step"]
    assert 5 <= step < 150
    run_cli(cmd, *common, "--out", str(tmp_path / "part"), "--resume", check=True)
    assert _same_tensors(tmp_path / "full" / "last.safetensors", tmp_path / "part" / "last.safetensors") == []
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")


def test_a_second_train_on_the_same_run_folder_is_refused_while_the_first_runs(data, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", data, "--small", "--steps", "100000", "--no-progress", "--threads", "1",
            "--device", "cpu", "--log-every", "1", "--out", str(run)]
    first = _start(args)
    t0 = time.time()
    while not (run / "metrics.jsonl").exists():
        assert first.poll() is None and time.time() - t0 < 120, first.communicate()
        time.sleep(0.05)
    for extra in ([], ["--resume"]):
        second = run_cli(*args, *extra)
        assert second.returncode == 2 and f"is being written by another process (pid {first.pid})" in second.stderr, \
            second.stderr
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, err
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))  # one writer: no interleaved lines
