"""Crash-safe evaluation: each episode's record appended to a sidecar file as it finishes.

``worldjepa eval --json R.json`` writes ``R.json.partial.jsonl`` while it runs: per policy, a
header line (the policy and everything that fixes its episodes: the evaluation's options and the
dataset's fingerprint), then one line per finished episode (its index and record), each flushed
and fsynced. A killed evaluation loses at most the episodes in flight; ``--resume`` reads the
file, checks that the options are the same, skips the episodes it holds and appends the rest.
When the results JSON is written the sidecar is deleted. A torn last line (a kill mid-write)
is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import WorldJepaError

FORMAT = "worldjepa-eval-journal"
# options that change how an evaluation runs or what it writes, not its episodes
RUNTIME = ("workers", "resume", "progress", "threads", "json", "gif", "gif_episodes", "plot", "tensorboard")


def sidecar(results: str | Path) -> Path:
    """The journal of the evaluation whose results go to ``results``."""
    return Path(f"{results}.partial.jsonl")


class Journal:
    """The sidecar file of one ``worldjepa eval`` (any number of policies)."""

    def __init__(self, path: str | Path, resume: bool) -> None:
        self.path = Path(path)
        if resume and not self.path.is_file():
            raise WorldJepaError(f"--resume: {self.path} does not exist (no interrupted evaluation to continue)")
        if not resume and self.path.exists():
            raise WorldJepaError(f"{self.path} holds an interrupted evaluation: pass --resume to continue it, or "
                                 "delete it to start again")
        self.lines: list[dict[str, Any]] = []
        if resume:
            for line in self.path.read_text().splitlines():
                try:
                    self.lines.append(json.loads(line))
                except ValueError:  # a torn last line
                    continue
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")

    def write(self, entry: dict[str, Any]) -> None:
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def policy(self, name: str, identity: dict[str, Any]) -> "PolicyJournal":
        """The journal of policy ``name``, whose episodes ``identity`` fixes (an earlier run's must match)."""
        head = [e for e in self.lines if e.get("format") == FORMAT and e.get("policy") == name]
        if head and head[0]["identity"] != json.loads(json.dumps(identity)):
            raise WorldJepaError(f"--resume: {self.path} was written by an evaluation of {name!r} with other options "
                                 "or data; rerun it with the same options, or delete the file to start again")
        if not head:
            self.write({"format": FORMAT, "policy": name, "identity": identity})
        done = {int(e["index"]): e["record"] for e in self.lines if e.get("policy") == name and "index" in e}
        return PolicyJournal(self, name, done)

    def close(self, finished: bool) -> None:
        """Close the file; ``finished`` (every result written): delete it."""
        self.file.close()
        if finished:
            self.path.unlink(missing_ok=True)


class PolicyJournal:
    """One policy's finished episodes: what :func:`~worldjepa.eval.protocol.run_protocol` skips
    and where it records each episode it runs."""

    def __init__(self, journal: Journal, name: str, done: dict[int, dict[str, Any]]) -> None:
        self.journal, self.name, self._done = journal, name, done

    def done(self, specs: list[Any]) -> dict[int, dict[str, Any]]:
        """The records already finished of these episodes, checked to be of the same pairs."""
        out = {}
        for spec in specs:
            record = self._done.get(spec.index)
            if record is None:
                continue
            if (record["episode"], record["start"]) != (spec.episode, spec.start):
                raise WorldJepaError(f"--resume: {self.journal.path} records episode {spec.index} of {self.name!r} "
                                     "from another start; delete the file to start again")
            out[spec.index] = record
        return out

    def add(self, index: int, record: dict[str, Any]) -> None:
        self.journal.write({"policy": self.name, "index": index, "record": record})
