import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
ROOT = Path(__file__).resolve().parents[1]


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# on a GPU machine `pytest -m cuda` runs the CUDA cases: parametrize a test over DEVICES, or
# decorate a CUDA-only test with @cuda_only
CUDA = [pytest.mark.cuda, pytest.mark.skipif(not _has_cuda(), reason="no CUDA device")]
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def cuda_only(test):
    for mark in CUDA:
        test = mark(test)
    return test


def run_cli(*args: str, check: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m worldjepa ARGS`` in a subprocess; returns the completed process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "worldjepa", *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"worldjepa {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def small_data_and_run(tmp_path_factory):
    """A tiny TwoRoom dataset (12 episodes of 10 steps, 32x32) and a world model trained 2 steps on it."""
    root = tmp_path_factory.mktemp("small")
    data, run = root / "base.h5", root / "run"
    run_cli("collect", "--env", "worldjepa/TwoRoom-v0", "--out", str(data), "--episodes", "12", "--steps", "10",
            "--size", "32", "--no-progress", check=True)
    run_cli("train", "--data", str(data), "--out", str(run), "--small", "--steps", "2", "--no-progress",
            "--threads", "1", "--device", "cpu", check=True)
    return data, run


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): small
    kernels on a shared 2-core CPU only wait on more."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_run(root: Path, episodes: int = 12, steps: int = 20, train_steps: int = 4, **train) -> tuple[str, str]:
    """A small TwoRoom dataset (32 px) in ``root`` and the ``--small`` world model trained
    ``train_steps`` steps on it (CPU): ``(data, run)`` paths."""
    from worldjepa.config import from_dict
    from worldjepa.configs import PRESETS, TrainConfig
    from worldjepa.data.collect import CollectConfig, collect
    from worldjepa.training.trainer import Trainer

    data, run = root / "tworoom.h5", root / "run"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(data), episodes=episodes, steps=steps, size=32),
            progress=False)
    Trainer(from_dict(TrainConfig, {**PRESETS["train"]["small"], "data": str(data), "out": str(run),
                                    "steps": train_steps, "val_windows": 8, "progress": False, "device": "cpu",
                                    **train})).fit()
    return str(data), str(run)
