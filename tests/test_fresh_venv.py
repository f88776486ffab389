"""The built wheel in a brand-new virtual environment, beside a given torch: collect, train, eval,
plot and `tensorboard --inspect` from outside the checkout (benchmarks/fresh_venv.sh says what it
checks). Slow (about a minute with the package index at hand, more where it must download) and
it needs the package index: `pytest -m slow tests/test_fresh_venv.py`; TORCH="..." picks the
torch to install first (default torch==2.13.0)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_wheel_runs_the_main_job_in_a_fresh_venv_and_keeps_the_given_torch():
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "fresh_venv.sh")], env=env, capture_output=True,
                          text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "torch kept: " in proc.stdout and "worldjepa from " in proc.stdout
    assert "all checks passed" in proc.stdout, out[-6000:]
