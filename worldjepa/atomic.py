"""Crash-safe writes and writer locks: a file is replaced whole or not at all.

Every file worldjepa writes (datasets, checkpoints, ``config.json``, results, GIFs, metrics
rewrites) goes through :class:`AtomicFile`:

1. a temporary file ``.NAME.tmp-PID-RANDOM`` is created in the target's folder with
   ``O_CREAT | O_EXCL | O_NOFOLLOW`` (a file or link already at that name is never opened,
   let alone followed);
2. the caller writes through it (bytes, or h5py through :meth:`AtomicFile.fileobj`, which never
   lets HDF5 see a failed write: the first error is recorded and reported at commit);
3. :meth:`AtomicFile.commit` checks that no write failed, fsyncs the file, checks that the name
   still points to the file it created, runs the caller's ``verify`` on the bytes on disk,
   renames the file over the target and fsyncs the folder.

Any failure removes the temporary file, leaves the target as it was and raises
:class:`~worldjepa.errors.WriteError` (disk full: the path, the bytes needed and the bytes free).
New files get the usual ``0666 & ~umask`` permissions (``0644`` under the common umask); a
replaced file keeps its permissions. (The lock of a dataset's or run folder's one writer:
:mod:`worldjepa.locks`.) Torch-free and h5py-free.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Callable

from .errors import WriteError

__all__ = ["AtomicFile", "atomic_write_bytes", "atomic_write_text", "check_replaceable", "fsync_dir",
           "remove_stale_temps"]

_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_COPY_BLOCK = 4 * 2**20


def _human(n: float) -> str:
    from .utils import human_bytes

    return f"{human_bytes(n)} ({int(n)} bytes)"


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be fsynced)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise WriteError(f"cannot sync folder {folder}: {e.strerror}") from None
    finally:
        os.close(fd)


def remove_stale_temps(path: str | Path) -> None:
    """Delete temporary files of ``path`` left by killed writers (their process is gone)."""
    p = Path(path)
    prefix = f".{p.name}.tmp-"
    try:
        names = [e.name for e in os.scandir(p.parent) if e.name.startswith(prefix)]
    except OSError:
        return
    for name in names:
        try:
            pid = int(name[len(prefix):].split("-")[0].split(".")[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            try:
                os.unlink(p.parent / name)  # unlinks a link itself, never what it points to
            except OSError:
                pass
        except PermissionError:
            pass


def check_replaceable(path: str | Path) -> None:
    """Refuse a target that is a symbolic link or exists as something other than a regular file."""
    p = Path(path)
    if p.is_symlink():
        raise WriteError(f"{p} is a symbolic link; worldjepa replaces only regular files "
                         f"(pass the path it points to: {os.path.realpath(p)})")
    if p.exists() and not p.is_file():
        raise WriteError(f"{p} exists and is not a regular file")


class AtomicFile:
    """A new version of ``path``: written to a temporary file beside it, published by :meth:`commit`.

    As a context manager it commits on a normal exit and discards on an exception. ``need``
    (bytes) may be set by the writer for a better disk-full message (default: the bytes written).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.folder = self.path.parent if str(self.path.parent) else Path(".")
        self.tmp: Path | None = None
        self.fd: int | None = None
        self.failure: OSError | None = None  # the first failed write through fileobj()
        self.written = 0  # the size the new file would have (highest offset written)
        self.need: int | None = None
        self._ino: tuple[int, int] | None = None

    # ------------------------------------------------------------------ open, write
    def open(self) -> "AtomicFile":
        check_replaceable(self.path)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteError(f"cannot create the folder {self.folder}: {e.strerror}") from None
        remove_stale_temps(self.path)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            tmp = self.folder / f".{self.path.name}.tmp-{os.getpid()}-{_token()}"
            try:
                fd = os.open(tmp, flags, 0o666)
            except FileExistsError:  # a leftover, or something planted there: never opened
                continue
            except OSError as e:
                raise WriteError(f"cannot write in {self.folder}: {e.strerror}") from None
            st = os.fstat(fd)
            self.fd, self.tmp, self._ino = fd, tmp, (st.st_dev, st.st_ino)
            try:
                old = os.stat(self.path)
                os.fchmod(fd, stat.S_IMODE(old.st_mode))  # a replaced file keeps its permissions
            except OSError:
                pass
            return self
        raise WriteError(f"cannot create a temporary file for {self.path}: 100 names were taken")

    def __enter__(self) -> "AtomicFile":
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def write(self, data: bytes) -> None:
        """Append ``data``; a failure raises :class:`WriteError` at once."""
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)  # type: ignore[arg-type]
                view = view[n:]
                self.written += n
        except OSError as e:
            raise self._error(e) from None

    def copy_from(self, source: str | Path) -> None:
        """Append the bytes of the file ``source`` (an append starts from a copy of the target)."""
        with open(source, "rb") as f:
            while block := f.read(_COPY_BLOCK):
                self.write(block)

    def fileobj(self) -> io.RawIOBase:
        """A binary file object over the temporary file for libraries that write through one
        (h5py): a failed write is recorded (:attr:`failure`) and later writes are skipped, so
        the library never sees an error; :meth:`commit` reports it."""
        return _RecordingFile(self)

    def reader(self) -> io.RawIOBase:
        """The bytes on disk of the temporary file, from the start (for ``verify``; read-only)."""
        return _RecordingFile(self, readonly=True)

    # ------------------------------------------------------------------ commit, discard
    def commit(self, verify: Callable[["AtomicFile"], None] | None = None) -> None:
        """Publish the new file: fsync, check, ``verify(self)``, rename over the target, fsync
        the folder. Any failure discards it and raises :class:`WriteError` (or ``verify``'s error)."""
        try:
            if self.failure is not None:
                raise self._error(self.failure)
            try:
                os.fsync(self.fd)  # type: ignore[arg-type]
            except OSError as e:
                raise self._error(e) from None
            st = os.lstat(self.tmp)  # type: ignore[arg-type]
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != self._ino:
                raise WriteError(f"the temporary file {self.tmp} was replaced while {self.path} was written; "
                                 f"{self.path} was left as it was")
            if verify is not None:
                verify(self)
            try:
                os.replace(self.tmp, self.path)  # type: ignore[arg-type]
            except OSError as e:
                raise self._error(e) from None
            self.tmp = None
            fsync_dir(self.folder)
        finally:
            self.discard()

    def discard(self) -> None:
        """Close and delete the temporary file (if it is still the one this object created)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                st = os.lstat(self.tmp)
                if (st.st_dev, st.st_ino) == self._ino:
                    os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None

    def _error(self, e: OSError) -> WriteError:
        kept = f"{self.path} was left as it was" if self.path.exists() else f"{self.path} was not created"
        if e.errno in _FULL:
            try:
                import shutil

                free = shutil.disk_usage(self.folder).free  # and what this temporary file takes:
                free += os.fstat(self.fd).st_blocks * 512 if self.fd is not None else 0  # type: ignore[attr-defined]
            except OSError:
                free = 0
            need = max(self.need or 0, self.written)
            return WriteError(f"disk full: writing {self.path} needs about {_human(need)}, {_human(free)} "
                              f"were free in {self.folder}; {kept}")
        return WriteError(f"cannot write {self.path}: {e.strerror or e}; {kept}")


class _RecordingFile(io.RawIOBase):
    """The temporary file as a seekable binary file that records its first failed write."""

    def __init__(self, owner: AtomicFile, readonly: bool = False) -> None:
        self.owner, self.fd, self.pos, self.readonly = owner, owner.fd, 0, readonly

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return not self.readonly

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = os.pread(self.fd, len(b), self.pos)  # type: ignore[arg-type]
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def write(self, b: Any) -> int:
        if self.readonly:
            raise io.UnsupportedOperation("read-only")
        view = memoryview(b).cast("B")
        n = len(view)
        o = self.owner
        if o.failure is None:
            try:
                done = 0
                while done < n:
                    done += os.pwrite(self.fd, view[done:], self.pos + done)  # type: ignore[arg-type]
            except OSError as e:
                o.failure = e
        self.pos += n
        o.written = max(o.written, self.pos)
        return n

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self.pos = offset
        elif whence == 1:
            self.pos += offset
        else:
            self.pos = os.fstat(self.fd).st_size + offset  # type: ignore[arg-type]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def truncate(self, size: int | None = None) -> int:
        if self.readonly:
            raise io.UnsupportedOperation("read-only")
        size = self.pos if size is None else size
        if self.owner.failure is None:
            try:
                os.ftruncate(self.fd, size)  # type: ignore[arg-type]
            except OSError as e:
                self.owner.failure = e
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:  # the AtomicFile owns the descriptor
        super().close()


def _token() -> str:
    return secrets.token_hex(4)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one."""
    with AtomicFile(path) as f:
        f.need = len(data)
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
