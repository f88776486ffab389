"""A dataset is never lost or silently corrupted: a full disk keeps the old file, checksums catch
changed bytes, old files still load, one writer at a time, signals keep the complete episodes."""

import errno
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.data.test_collect import _start_collect, _wait_for_tmp
from tests.data.test_dataset import META, toy_episode, write_toy
from worldjepa import atomic
from worldjepa.data.dataset import Dataset
from worldjepa.data.writer import DatasetWriter
from worldjepa.errors import DatasetError, LockError, WriteError


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_full_disk_during_append_keeps_the_old_file_byte_for_byte(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    write_toy(path, [20] * 5)
    before = path.read_bytes()
    real = os.pwrite
    budget = {"bytes": len(before) + 3000}  # room for the copy and a little more, as on a nearly full disk

    def pwrite(fd, data, offset):
        if offset + len(data) > budget["bytes"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, offset)

    monkeypatch.setattr(atomic.os, "pwrite", pwrite)
    with pytest.raises(WriteError, match=r"disk full: writing .*d.h5 needs about .* were free .*left as it was"):
        with DatasetWriter(path, META, append=True, planned=50) as w:
            for i in range(50):
                f, a, x = toy_episode(5 + i, 20)
                w.add_episode(f, a, x, seed=i)
    monkeypatch.undo()
    assert path.read_bytes() == before and names(tmp_path) == ["d.h5"]  # no temporary file, no lock file


def test_a_write_error_while_h5py_closes_is_fatal_before_the_rename(tmp_path, monkeypatch):
    """h5py writes its metadata when the file closes: a failure there must not publish the file."""
    path = tmp_path / "d.h5"
    write_toy(path, [6, 6])
    before = path.read_bytes()
    real_pwrite, real_close = os.pwrite, h5py.File.close
    failing = {"on": False}

    def pwrite(fd, data, offset):
        if failing["on"]:
            raise OSError(errno.EIO, "Input/output error")
        return real_pwrite(fd, data, offset)

    def close(self):
        failing["on"] = True
        try:
            real_close(self)
        finally:
            failing["on"] = False

    monkeypatch.setattr(atomic.os, "pwrite", pwrite)
    monkeypatch.setattr(h5py.File, "close", close)
    with pytest.raises(WriteError, match="Input/output error.*left as it was"):
        write_toy(path, [6], append=True)
    monkeypatch.undo()
    assert path.read_bytes() == before and names(tmp_path) == ["d.h5"]


def _tmpfs(tmp_path, size="1500k"):
    """A tiny tmpfs (root only): a real full disk."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("a tmpfs needs root; the injected-ENOSPC tests cover the non-root case")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]
    if subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    return mnt


def test_a_real_full_disk_refuses_cleanly_and_keeps_the_old_file(tmp_path):
    mnt = _tmpfs(tmp_path)
    try:
        out = mnt / "d.h5"
        run_cli("collect", "--env", "worldjepa/TwoRoom-v0", "--out", str(out), "--episodes", "20", "--steps", "40",
                "--no-progress", check=True)
        before = out.read_bytes()
        proc = run_cli("collect", "--env", "worldjepa/TwoRoom-v0", "--out", str(out), "--append", "--episodes", "100",
                       "--steps", "40", "--no-progress")
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert len(err.splitlines()) == 1 and "disk full" in err and str(out) in err and "bytes" in err, err
        assert out.read_bytes() == before and names(mnt) == ["d.h5"]
        assert "verified 20 episodes" in run_cli("info", str(out), "--verify", check=True).stdout
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _corrupt(path, name, row, value):
    with h5py.File(path, "r+") as f:
        f[name][row] = value


def test_checksums_catch_changed_actions_frames_and_extras(tmp_path, cli):
    path = tmp_path / "d.h5"
    write_toy(path, [10] * 12)
    assert "verified 12 episodes" in cli("info", str(path), "--verify", check=True).stdout
    _corrupt(path, "actions", 25, [0.5, 0.5])  # episode 2
    _corrupt(path, "frames", 95, np.full((8, 8, 3), 7, np.uint8))  # episode 9
    _corrupt(path, "extras/state", 113, [1.0, 2.0])  # episode 11
    with Dataset(path) as ds:
        assert ds.verify() == ["episode 2: actions do not match their checksum",
                               "episode 9: frames do not match their checksum",
                               "episode 11: extras/state do not match their checksum"]
        with pytest.raises(DatasetError, match=r"fails its integrity check: episode 2: actions .* \(and 2 more\)"):
            ds.check()
    proc = cli("info", str(path), "--verify")
    assert proc.returncode == 2 and "3 problem(s)" in proc.stderr and "episode 9: frames" in proc.stdout


def test_train_and_pretrain_refuse_a_dataset_whose_actions_changed_on_disk(tmp_path, cli):
    path = tmp_path / "d.h5"
    cli("collect", "--env", "worldjepa/TwoRoom-v0", "--out", str(path), "--episodes", "12", "--steps", "10",
        "--size", "16", "--no-progress", check=True)
    _corrupt(path, "actions", 40, [9.0, 9.0])
    for cmd in ("train", "pretrain"):
        proc = cli(cmd, "--data", str(path), "--out", str(tmp_path / cmd), "--small", "--steps", "2", "--no-progress",
                   "--threads", "1", "--device", "cpu")
        assert proc.returncode == 2 and "fails its integrity check: episode 3: actions" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert not (tmp_path / cmd / "model.safetensors").exists()


def _as_format_1(path):
    """Turn a file into what worldjepa wrote before checksums (format 1)."""
    with h5py.File(path, "r+") as f:
        del f["episodes/checksum"]
        meta = json.loads(f.attrs["worldjepa"])
        f.attrs["worldjepa"] = json.dumps({**meta, "format_version": 1})


def test_old_datasets_without_checksums_load_and_an_append_checksums_them(tmp_path, cli):
    path = tmp_path / "d.h5"
    write_toy(path, [5, 6, 7])
    _as_format_1(path)
    with Dataset(path) as ds:
        assert not ds.has_checksums and ds.verify() == [] and ds.num_episodes == 3
        ds.check()
    out = cli("info", str(path), "--verify", check=True).stdout
    assert "none (format 1" in out and "no checksums to check" in out
    write_toy(path, [4], append=True)
    with Dataset(path) as ds:
        assert ds.has_checksums and ds.meta["format_version"] == 2 and ds.num_episodes == 4
        assert ds.verify() == []
        np.testing.assert_array_equal(ds.episode(1)["frames"], toy_episode(1, 6)[0])


def test_the_writer_refuses_nan_instead_of_storing_it(tmp_path):
    path = tmp_path / "d.h5"
    f, a, x = toy_episode(0, 5)
    a[2, 0] = np.nan
    with pytest.raises(DatasetError, match="actions holds NaN"):
        with DatasetWriter(path, META) as w:
            w.add_episode(f, a, x, seed=0)
    assert names(tmp_path) == []


def test_a_second_writer_of_a_dataset_is_refused(tmp_path):
    path = tmp_path / "d.h5"
    write_toy(path, [5])
    with DatasetWriter(path, META, append=True) as w:
        busy = rf"dataset .*d.h5 is being written by another process \(pid {os.getpid()}\)"
        with pytest.raises(LockError, match=busy):
            with DatasetWriter(path, META, append=True):
                pass
        f, a, x = toy_episode(1, 5)
        w.add_episode(f, a, x, seed=1)
    with Dataset(path) as ds:  # the first writer's episode was published, nothing of the second
        assert ds.num_episodes == 2
    assert names(tmp_path) == ["d.h5"]


def _ended(proc, out, timeout=60):
    """Exit status and output (stdout and stderr, in the log file) of a collection started by _start_collect."""
    proc.wait(timeout=timeout)
    return proc.returncode, Path(out).with_suffix(".log").read_text()


def test_two_collect_appends_one_waits_for_nothing_and_nothing_is_lost(tmp_path):
    out = tmp_path / "d.h5"
    run_cli("collect", "--env", "Pendulum-v1", "--out", str(out), "--episodes", "3", "--steps", "5", "--size", "32",
            "--no-progress", check=True)
    first = _start_collect(out, 10_000, ["--append", "--size", "32", "--no-progress"])
    _wait_for_tmp(tmp_path, "d.h5", first, min_bytes=1)
    assert (tmp_path / ".d.h5.lock").exists()
    second = run_cli("collect", "--env", "Pendulum-v1", "--out", str(out), "--episodes", "2", "--steps", "5",
                     "--size", "32", "--append", "--no-progress")
    assert second.returncode == 2 and f"pid {first.pid}" in second.stderr, second.stderr
    time.sleep(1.0)
    first.send_signal(signal.SIGTERM)
    code, log = _ended(first, out)
    assert code == 128 + signal.SIGTERM and "stopped by SIGTERM" in log and "Traceback" not in log, log
    with Dataset(out) as ds:  # readers never waited; the first writer's complete episodes were kept
        assert ds.num_episodes > 3 and ds.verify() == []
    assert names(tmp_path) == ["d.h5", "d.log"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_with_two_workers_keeps_the_complete_episodes_without_tracebacks(tmp_path, sig):
    out = tmp_path / "d.h5"
    proc = _start_collect(out, 10_000, ["--workers", "2", "--steps", "100", "--size", "32", "--no-progress"])
    _wait_for_tmp(tmp_path, "d.h5", proc, min_bytes=20_000)
    proc.send_signal(sig)
    code, log = _ended(proc, out)
    assert code == 128 + sig, log
    assert "Traceback" not in log and "BrokenPipe" not in log, log
    assert log.strip().splitlines()[-1].startswith(f"worldjepa collect: stopped by {signal.Signals(sig).name}")
    with Dataset(out) as ds:
        assert ds.num_episodes >= 1 and ds.verify() == []
        assert all(ds.episode(i)["frames"].shape[0] == 101 for i in range(ds.num_episodes))
    assert names(tmp_path) == ["d.h5", "d.log"]


def test_new_files_keep_their_text_out_of_hdf5s_global_heap(tmp_path):
    """The fuzz found a damaged variable-length string (in HDF5's global heap) on which HDF5
    loops forever; the writer stores its text attributes inline, fixed-length."""
    path = tmp_path / "d.h5"
    write_toy(path, [5, 6])
    write_toy(path, [4], append=True)
    assert b"GCOL" not in path.read_bytes()  # no global heap collection in the file
    with h5py.File(path, "r") as f:
        for obj, name in ((f, "worldjepa"), (f["episodes/checksum"], "columns"), (f["episodes/checksum"], "algorithm")):
            assert not obj.attrs.get_id(name).get_type().is_variable_str(), name
