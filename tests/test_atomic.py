"""Crash-safe writes and writer locks: the old file survives every failure, links are never
followed, permissions are the usual ones, a second writer is refused with the first one's pid."""

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT
from worldjepa import atomic
from worldjepa.atomic import AtomicFile, atomic_write_bytes, atomic_write_text
from worldjepa.errors import LockError, WriteError
from worldjepa.locks import WriterLock


def only(folder):
    return sorted(p.name for p in folder.iterdir())


def test_new_files_get_the_umask_permissions_and_replaced_ones_keep_theirs(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.json", "{}")
        assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600
        os.umask(0o022)
        (tmp_path / "c.json").write_text("old")
        os.chmod(tmp_path / "c.json", 0o640)
        atomic_write_text(tmp_path / "c.json", "new")
        assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o640 and (tmp_path / "c.json").read_text() == "new"
    finally:
        os.umask(old)
    assert only(tmp_path) == ["a.json", "b.json", "c.json"]


def test_a_link_planted_at_the_temporary_name_is_never_followed(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious")
    folder = tmp_path / "out"
    folder.mkdir()
    planted = folder / f".r.json.tmp-{os.getpid()}-aaaa"
    planted.symlink_to(victim)
    names = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(atomic, "_token", lambda: next(names))
    atomic_write_text(folder / "r.json", "results")
    assert victim.read_text() == "precious"
    assert (folder / "r.json").read_text() == "results" and not (folder / "r.json").is_symlink()
    assert planted.is_symlink()  # left alone: it is not ours


def test_a_target_that_is_a_link_or_a_folder_is_refused(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("keep")
    (tmp_path / "link.json").symlink_to(real)
    with pytest.raises(WriteError, match="symbolic link"):
        atomic_write_text(tmp_path / "link.json", "x")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(WriteError, match="not a regular file"):
        atomic_write_text(tmp_path / "dir.json", "x")
    assert real.read_text() == "keep"


def test_disk_full_names_the_path_and_the_bytes_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "write", full)
    with pytest.raises(WriteError, match=r"disk full: writing .*m.bin needs about .*\(5000 bytes\).*left as it was"):
        atomic_write_bytes(target, b"x" * 5000)
    assert target.read_bytes() == b"old" and only(tmp_path) == ["m.bin"]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failed_fsync_or_rename_keeps_the_old_file(tmp_path, monkeypatch, step):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")

    def broken(*a, **k):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, step, broken)
    with pytest.raises(WriteError, match="Input/output error.*left as it was"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old" and only(tmp_path) == ["m.bin"]


def test_a_failed_verification_publishes_nothing(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")

    def verify(f):
        assert f.reader().read() == b"new"
        raise WriteError("verification failed")

    f = AtomicFile(target).open()
    f.write(b"new")
    with pytest.raises(WriteError, match="verification failed"):
        f.commit(verify)
    assert target.read_bytes() == b"old" and only(tmp_path) == ["m.bin"]


def test_a_failed_write_through_the_file_object_is_recorded_and_reported_at_commit(tmp_path, monkeypatch):
    target = tmp_path / "d.h5"
    f = AtomicFile(target).open()
    obj = f.fileobj()
    obj.write(b"a" * 10)
    monkeypatch.setattr(atomic.os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    assert obj.write(b"b" * 10) == 10  # the library sees success ...
    monkeypatch.undo()
    assert obj.write(b"c" * 10) == 10 and f.written == 30
    with pytest.raises(WriteError, match="disk full"):  # ... and the commit reports the failure
        f.commit()
    assert not target.exists() and only(tmp_path) == []


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".r.json.tmp-{int(dead.stdout)}-0000"
    stale.write_text("half")
    alive = tmp_path / f".r.json.tmp-{os.getppid()}-0000"  # a live process's: kept
    alive.write_text("busy")
    atomic_write_text(tmp_path / "r.json", "{}")
    assert only(tmp_path) == [alive.name, "r.json"]


def test_a_second_writer_is_refused_naming_the_first_ones_pid(tmp_path):
    target = tmp_path / "d.h5"
    with WriterLock(target, "dataset d.h5"):
        with pytest.raises(LockError, match=rf"dataset d.h5 is being written by another process \(pid {os.getpid()}\)"):
            WriterLock(target, "dataset d.h5").acquire()
    with WriterLock(target):  # released: the next writer gets it
        pass
    assert only(tmp_path) == []


def test_a_lock_held_by_another_process_names_it_and_dies_with_it(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from worldjepa.locks import WriterLock
        lock = WriterLock({str(target)!r}, folder=True).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=rf"pid {proc.pid}\)"):
            WriterLock(target, folder=True).acquire()
    finally:
        proc.kill()
        proc.wait()
    with WriterLock(target, folder=True):  # a killed holder leaves no lock behind
        pass
