"""Progress: a bar on a terminal; plain lines (no carriage return) in a log; none with --quiet."""

import io
import logging
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from worldjepa.errors import ConfigError
from worldjepa.progress import Progress, clock, seconds_between_lines


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_not_a_terminal_gives_plain_lines_with_rate_and_eta(caplog):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO, logger="worldjepa.progress"):
        with Progress(4, "train", "step", stream=stream, every=0) as bar:
            for i in range(4):
                bar.update(1, loss=0.5 / (i + 1))
            bar.set_total(4)
    lines = [r.getMessage() for r in caplog.records if r.name == "worldjepa.progress"]
    assert stream.getvalue() == ""  # nothing drawn on the stream itself
    assert len(lines) == 4 and not any("\r" in line for line in lines)
    assert lines[0].startswith("train: 1/4 steps (25%), loss 0.5, ") and "steps/s, ETA " in lines[0]
    assert lines[-1].startswith("train: 4/4 steps (100%), loss 0.125, ") and "took 0:00:00" in lines[-1]


def test_lines_are_spaced_in_time_and_the_last_one_is_always_written(caplog):
    with caplog.at_level(logging.INFO, logger="worldjepa.progress"):
        with Progress(100, "eval random", "episode", stream=io.StringIO(), every=3600) as bar:
            for _ in range(100):
                bar.update(1, success="1/1 (100%)")
    lines = [r.getMessage() for r in caplog.records if r.name == "worldjepa.progress"]
    assert lines == [lines[0]] and lines[0].startswith("eval random: 100/100 episodes (100%), success 1/1 (100%)")


def test_a_terminal_gets_a_bar_and_disabled_gets_nothing(caplog):
    term = Terminal()
    with caplog.at_level(logging.INFO, logger="worldjepa.progress"):
        with Progress(3, "collect", "episode", stream=term, every=0) as bar:
            for _ in range(3):
                bar.update(1)
        with Progress(3, "quiet", "episode", stream=io.StringIO(), every=0, enabled=False) as off:
            off.update(3)
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()  # tqdm redraws the line
    assert not [r for r in caplog.records if r.name == "worldjepa.progress"]


def test_seconds_between_lines_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORLDJEPA_PROGRESS_SECONDS", raising=False)
    assert seconds_between_lines() == 30
    monkeypatch.setenv("WORLDJEPA_PROGRESS_SECONDS", "2.5")
    assert seconds_between_lines() == 2.5
    monkeypatch.setenv("WORLDJEPA_PROGRESS_SECONDS", "soon")
    with pytest.raises(ConfigError, match="WORLDJEPA_PROGRESS_SECONDS"):
        seconds_between_lines()
    assert clock(3725) == "1:02:05"


def _run(tmp_path, name, *args, seconds="0"):
    """``worldjepa ARGS`` with stderr written to a file, as a batch job's log; returns that log."""
    log = tmp_path / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORLDJEPA_PROGRESS_SECONDS": seconds, "OMP_NUM_THREADS": "1"}
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "worldjepa", *args], stdout=subprocess.PIPE, stderr=f,
                              text=True, env=env, timeout=300)
    assert proc.returncode == 0, log.read_text()
    return log.read_bytes().decode()


def test_commands_write_plain_progress_lines_to_a_log_file_and_none_when_quiet(tmp_path):
    data = str(tmp_path / "d.h5")
    log = _run(tmp_path, "collect", "collect", "--small", "--size", "32", "--out", data, "--episodes", "12",
               "--steps", "40")
    assert "\r" not in log and "collect worldjepa/TwoRoom-v0: 12/12 episodes (100%)" in log
    log = _run(tmp_path, "train", "train", "--small", "--data", data, "--out", str(tmp_path / "run"), "--steps", "12",
               "--threads", "1", "--device", "cpu")
    assert "\r" not in log
    lines = [line for line in log.splitlines() if line.startswith("train: ")]
    assert len(lines) >= 2, log  # one line per step with WORLDJEPA_PROGRESS_SECONDS=0
    assert all(" steps (" in line and ", loss " in line and " steps/s, " in line for line in lines)
    assert "ETA " in lines[0] and lines[-1].startswith("train: 12/12 steps (100%)") and ", val " in lines[-1]
    log = _run(tmp_path, "eval", "eval", "--data", data, "--policy", "random", "--episodes", "3", "--budget", "5",
               "--goal-offset", "10", seconds="30")  # the default spacing: only the last line in a short run
    assert "\r" not in log and [line for line in log.splitlines() if line.startswith("eval random: ")] == [
        next(line for line in log.splitlines() if line.startswith("eval random: 3/3 episodes (100%), success "))]
    run = str(tmp_path / "run")
    log = _run(tmp_path, "two", "eval", "--data", data, "--policy", f"{run},{run}[samples=4 iterations=1]", "--episodes",
               "2", "--budget", "5", "--goal-offset", "10", "--threads", "1", "--device", "cpu")
    assert f"eval {run}: 2/2 episodes" in log and f"eval {run}[samples=4 iterations=1]: 2/2 episodes" in log, log
    log = _run(tmp_path, "quiet", "eval", "--data", data, "--policy", "random", "--episodes", "3", "--budget", "5",
               "--goal-offset", "10", "--quiet")
    assert "eval random" not in log, log


@pytest.mark.parametrize("command", ["collect", "train", "pretrain", "eval", "memory build"])
def test_quiet_and_no_progress_mean_the_same_on_every_command(command):
    from worldjepa.cli import build_parser
    from worldjepa.cli.common import config_from_args

    parser = build_parser()
    base = command.split() + (["--data", "d.h5"] if command in ("train", "pretrain", "eval") else [])
    for argv, shown in (([], True), (["--no-progress"], False), (["--quiet"], False), (["-q"], False),
                        (["--quiet", "--progress"], True)):
        assert config_from_args(parser.parse_args(base + argv)).progress is shown, argv
