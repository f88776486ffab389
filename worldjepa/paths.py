"""Inputs are never outputs: every command checks the files it will write before it starts.

:func:`check_outputs` refuses, before any work, an output file that is one of the command's
inputs (the same file, through any path), a symbolic link, a folder, a file of another kind
than the one it would write (a dataset, a checkpoint, ... where a JSON or GIF goes), or an
output named twice; it creates a missing output folder and refuses one it cannot write in.
:func:`check_run_folder` does the same for a training run's folder. Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from .errors import ConfigError

__all__ = ["check_outputs", "check_run_folder", "file_kind", "RUN_FILES"]

# what a run folder holds (a new run refuses a folder with any of them)
RUN_FILES = ("model.safetensors", "last.safetensors", "config.json", "metrics.jsonl", "eval.json")

_MAGIC = {b"\x89HDF\r\n\x1a\n": "hdf5", b"GIF87a": "gif", b"GIF89a": "gif", b"SQLite format 3\x00": "sqlite",
          b"PK\x03\x04": "zip", b"\x89PNG\r\n\x1a\n": "png"}


def file_kind(path: str | Path) -> str:
    """``hdf5``, ``gif``, ``png``, ``mp4``, ``sqlite``, ``safetensors``, ``pickle``, ``json``, ``empty`` or ``other``,
    from the first bytes of an existing file."""
    from .utils import sniff

    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "empty"
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":  # ISO media: MP4
        return "mp4"
    sniffed = sniff(path)
    if sniffed in ("safetensors", "pickle"):
        return sniffed
    return "json" if head.lstrip()[:1] in (b"{", b"[") else "other"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _writable_folder(folder: Path, flag: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{flag}: {folder} is not a folder") from None
    except OSError as e:
        raise ConfigError(f"{flag}: cannot create the folder {folder}: {e.strerror}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag}: cannot write in {folder} (permission denied)")


def check_outputs(outputs: Mapping[str, tuple[str | Path, tuple[str, ...]]],
                  inputs: Mapping[str, str | Path | None]) -> None:
    """Check every output before the work starts.

    ``outputs``: flag -> (path, kinds an existing file at that path may be, e.g. ``("json",)``);
    empty paths are skipped. ``inputs``: flag -> path (files or folders; empty/None skipped).
    Raises :class:`ConfigError` naming the flag and the reason; creates missing output folders.
    """
    seen: dict[Path, str] = {}
    ins = {flag: Path(p) for flag, p in inputs.items() if p}
    for flag, (path, kinds) in outputs.items():
        if not path:
            continue
        p = Path(path)
        real = Path(os.path.realpath(p))
        if real in seen:
            raise ConfigError(f"{flag} {p} is also the output of {seen[real]}")
        seen[real] = flag
        for in_flag, q in ins.items():
            if _same(p, q) or real == Path(os.path.realpath(q)):
                raise ConfigError(f"{flag} {p} is the input given as {in_flag}: it would be overwritten; "
                                  "choose another output")
        if p.is_symlink():
            raise ConfigError(f"{flag} {p} is a symbolic link; pass a new file or the link's target "
                              f"({os.path.realpath(p)})")
        if p.exists():
            if not p.is_file():
                raise ConfigError(f"{flag} {p} exists and is not a regular file")
            kind = file_kind(p)
            if kind not in (*kinds, "empty"):
                raise ConfigError(f"{flag} {p} exists and is a {kind} file, not {' or '.join(kinds)}: it would be "
                                  "overwritten; choose another output or remove it")
        _writable_folder(p.parent if str(p.parent) else Path("."), flag)


def check_run_folder(out: str | Path, resume: bool, inputs: Mapping[str, str | Path | None],
                     flag: str = "--out") -> None:
    """A training run's folder: not a link or a file, not an input; a new run refuses a folder
    that already holds a run's files (a model alone included); ``--resume`` needs one."""
    p = Path(out)
    if p.is_symlink():
        raise ConfigError(f"{flag} {p} is a symbolic link; pass the folder it points to ({os.path.realpath(p)})")
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p} exists and is not a folder")
    real = Path(os.path.realpath(p))
    for in_flag, q in inputs.items():
        if q and Path(os.path.realpath(q)) in {real, *(real / name for name in RUN_FILES)}:
            raise ConfigError(f"{flag} {p}: the input {in_flag} {q} is there and would be overwritten; "
                              "choose another output folder")
    links = [name for name in RUN_FILES if (p / name).is_symlink()]
    if links:
        raise ConfigError(f"{flag} {p}: {', '.join(links)} is a symbolic link; worldjepa writes only regular files")
    held = [name for name in RUN_FILES if (p / name).exists()]
    if not resume and held:
        raise ConfigError(f"{flag} {p} already holds a run ({', '.join(held)}); pass --resume to continue it or "
                          "choose another folder")
    _writable_folder(p, flag)
