"""Collection from Gymnasium environments nobody here wrote; replay; crash safety."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


from worldjepa.data.collect import CollectConfig, collect, recorded_config, replay, resolve
from worldjepa.data.dataset import Dataset
from worldjepa.envs.adapter import make_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("env_id,size,policy", [
    ("worldjepa/TwoRoom-v0", 32, "smooth"),   # built in
    ("worldjepa/PushT-v1", 32, "expert"),     # built in, with its scripted expert
    ("Pendulum-v1", 32, "smooth"),            # Gymnasium envs nobody here wrote
    ("CartPole-v1", 24, "random"),
])
def test_collect_round_trip_and_replay(tmp_path, env_id, size, policy):
    out = tmp_path / "d.h5"
    collect(CollectConfig(env=env_id, out=str(out), episodes=3, steps=15, seed=7, size=size, policy=policy), progress=False)
    env = make_env(env_id, size)
    with Dataset(out) as ds:
        assert ds.env_id == env_id and ds.frame_size == size and ds.num_episodes == 3
        assert "obs" in ds.extras and (("state" in ds.extras) == env_id.startswith("worldjepa/"))
        for i in range(3):
            ep = ds.episode(i)
            assert ep["frames"].dtype == np.uint8 and ep["frames"].shape[1:] == (size, size, 3)
            assert ep["actions"].dtype == np.float32
            frames = replay(env, ep["seed"], ep["actions"])
            np.testing.assert_array_equal(frames, ep["frames"])
        # episodes differ (seeds differ), frames are not blank
        assert not np.array_equal(ds.episode(0)["frames"], ds.episode(1)["frames"])
        assert ds.episode(0)["frames"].std() > 1


def test_workers_do_not_change_the_data(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(a), episodes=4, steps=10, size=16, workers=1), progress=False)
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(b), episodes=4, steps=10, size=16, workers=2), progress=False)
    with Dataset(a) as da, Dataset(b) as db:
        for i in range(4):
            ea, eb = da.episode(i), db.episode(i)
            for k in ("frames", "actions", "state"):
                np.testing.assert_array_equal(ea[k], eb[k])


def test_the_dataset_restores_its_config(tmp_path):
    cfg = CollectConfig(env="worldjepa/TwoRoom-v0", out=str(tmp_path / "d.h5"), episodes=2, steps=5, size=16, seed=3)
    collect(cfg, progress=False)
    restored = recorded_config(cfg.out)
    assert restored == resolve(cfg) and restored.seed == 3 and restored.policy == "smooth"  # "auto" resolved


def test_append_continues_seeds(tmp_path):
    out = tmp_path / "d.h5"
    collect(CollectConfig(env="Pendulum-v1", out=str(out), episodes=2, steps=5, size=16), progress=False)
    collect(CollectConfig(env="Pendulum-v1", out=str(out), episodes=2, steps=5, size=16, append=True), progress=False)
    with Dataset(out) as ds:
        assert ds.num_episodes == 4 and len(set(ds.seeds.tolist())) == 4


def _start_collect(out, episodes, extra=()):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "worldjepa", "collect", "--env", "Pendulum-v1", "--out", str(out),
           "--episodes", str(episodes), "--steps", "200", "--size", "64", *extra]
    log = open(Path(out).with_suffix(".log"), "w")  # a file, not a pipe: a full pipe would block the writer
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log)


def _wait_for_tmp(directory, name, proc, min_bytes=200_000, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        tmps = list(directory.glob(f".{name}.tmp-*"))
        if tmps and tmps[0].stat().st_size > min_bytes:
            return
        if proc.poll() is not None:
            raise AssertionError(f"collect ended early: {(directory / name).with_suffix('.log').read_text()}")
        time.sleep(0.05)
    raise AssertionError("collection never started writing")


def test_sigkill_midway_leaves_old_file_readable(tmp_path):
    out = tmp_path / "d.h5"
    collect(CollectConfig(env="Pendulum-v1", out=str(out), episodes=3, steps=20, size=64), progress=False)
    before = out.read_bytes()
    proc = _start_collect(out, 10_000, ["--append"])
    _wait_for_tmp(tmp_path, "d.h5", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert out.read_bytes() == before
    with Dataset(out) as ds:
        assert ds.num_episodes == 3
        ds.episode(2)
    # a fresh collection into a new file that is killed leaves no file at all
    new = tmp_path / "new.h5"
    proc = _start_collect(new, 10_000)
    _wait_for_tmp(tmp_path, "new.h5", proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not new.exists()
    # the next run removes the dead writer's temporary file
    collect(CollectConfig(env="Pendulum-v1", out=str(new), episodes=1, steps=5, size=16), progress=False)
    assert not list(tmp_path.glob(".new.h5.tmp-*"))
    collect(CollectConfig(env="Pendulum-v1", out=str(out), episodes=1, steps=20, size=64, append=True), progress=False)
    assert sorted(p.name for p in tmp_path.glob("*.h5*")) == ["d.h5", "new.h5"]
    assert not list(tmp_path.glob(".*.tmp-*"))
    with Dataset(out) as ds:
        assert ds.num_episodes == 4


def test_ctrl_c_keeps_completed_episodes(tmp_path):
    out = tmp_path / "d.h5"
    proc = _start_collect(out, 10_000)
    _wait_for_tmp(tmp_path, "d.h5", proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    with Dataset(out) as ds:
        assert ds.num_episodes >= 1
        assert ds.episode(ds.num_episodes - 1)["frames"].shape[0] == 201


def test_env_kwargs_are_recorded_and_rebuild_the_same_env(tmp_path, cli):
    """``--env-kwargs`` reaches the env, is stored in the dataset, refuses a mismatched append, and
    eval/plan rebuild the recordings' env from it (a held-out maze layout here)."""
    from worldjepa.envs.pointmaze import HELDOUT_LAYOUT_SEEDS

    seed = HELDOUT_LAYOUT_SEEDS[0]
    out = tmp_path / "m.h5"
    cli("collect", "--env", "worldjepa/PointMaze-Procedural-v0", "--env-kwargs", f"layout_seed={seed}",
        "--out", str(out), "--episodes", "2", "--steps", "6", "--size", "16", check=True)
    with Dataset(out) as ds:
        assert ds.env_kwargs == {"layout_seed": seed}
        ep = ds.episode(0)
    env = make_env(ds.env_id, 16, None, **ds.env_kwargs)
    frame, _ = env.reset(seed=int(ep["seed"]), state=ep["state"][3])
    np.testing.assert_array_equal(frame, ep["frames"][3])  # the same maze, not the default layout
    assert f"layout_seed={seed}" in cli("info", str(out), check=True).stdout
    proc = cli("collect", "--env", "worldjepa/PointMaze-Procedural-v0", "--env-kwargs", f"layout_seed={seed + 1}",
               "--out", str(out), "--episodes", "1", "--steps", "6", "--size", "16", "--append")
    assert proc.returncode == 2 and "env_kwargs" in proc.stderr
    proc = cli("collect", "--env", "worldjepa/TwoRoom-v0", "--env-kwargs", "novalue", "--out", str(tmp_path / "x.h5"))
    assert proc.returncode == 2 and "--env-kwargs takes key=value" in proc.stderr
