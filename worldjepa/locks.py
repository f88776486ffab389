"""One writer at a time: the advisory lock of a dataset's or a run folder's writer. Torch-free."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .errors import LockError

__all__ = ["WriterLock"]


class WriterLock:
    """An exclusive advisory lock (``fcntl.flock``) for the one writer of a dataset or run folder.

    The lock file (``.NAME.lock`` beside a file, ``FOLDER/.worldjepa-lock`` for a folder) holds
    the writer's pid; a second writer gets :class:`~worldjepa.errors.LockError` naming it.
    Readers take no lock and never wait. The lock dies with its process (a SIGKILL included).
    """

    def __init__(self, target: str | Path, what: str = "", folder: bool = False) -> None:
        t = Path(target)
        self.file = t / ".worldjepa-lock" if folder else t.parent / f".{t.name}.lock"
        self.what = what or str(t)
        self.fd: int | None = None

    def acquire(self) -> "WriterLock":
        import fcntl

        self.file.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(20):
            try:
                fd = os.open(self.file, flags, 0o666)
            except OSError as e:
                raise LockError(f"cannot lock {self.what} ({self.file}): {e.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise LockError(f"{self.what} is being written by another process (pid {pid}); wait for it "
                                "to finish or stop it") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.file).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # its holder removed the file as we opened it: lock the new one
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self.fd = fd
            return self
        raise LockError(f"cannot lock {self.what}: its lock file {self.file} keeps changing")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.file)  # while still holding it: the next writer locks a fresh file
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None

    def __del__(self) -> None:  # an object dropped without release() (a failed start) frees its lock
        try:
            self.release()
        except Exception:
            pass

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
