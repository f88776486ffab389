"""The run folder's small files: the metrics log, and the data a run was trained on."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, WriteError

__all__ = ["append_metrics", "check_same_data", "read_metrics"]
logger = logging.getLogger(__name__)


def append_metrics(path: Path, row: dict[str, Any], kept: str) -> None:
    """Append one JSON line to ``metrics.jsonl`` (never through a link; a torn last line is dropped
    on resume); a failure stops training with a :class:`WriteError` saying what is ``kept``."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            os.write(fd, (json.dumps(row) + "\n").encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise WriteError(f"cannot append to {path}: {e.strerror}; training stopped; {kept}") from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``; a torn line (a killed writer: cut short, or zeros where the
    data never reached the disk) is dropped."""
    rows = []
    text = path.read_bytes().decode("utf-8", "replace") if path.is_file() else ""
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


def check_same_data(saved: Any, now: dict[str, Any], allow: bool, run_dir: Path) -> None:
    """Refuse to resume on data whose fingerprint differs from the run's (unless ``allow``)."""
    if not isinstance(saved, dict) or saved.get("sha256") in (None, now["sha256"]):
        return
    was = f"{saved.get('episodes')} episodes, sha256 {saved.get('sha256')}"
    msg = (f"the data changed since {run_dir} started: it was trained on {was} ({saved.get('path')}), "
           f"--data now has {now['episodes']} episodes, sha256 {now['sha256']} ({now['path']})")
    if not allow:
        raise CheckpointError(f"cannot resume: {msg}; an exact resume needs the same data (pass "
                              "--allow-data-change to continue on this data anyway)")
    logger.warning("resume: %s; continuing (--allow-data-change)", msg)
