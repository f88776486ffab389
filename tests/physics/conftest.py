from pathlib import Path

import pytest

from tests.conftest import tiny_run


@pytest.fixture(scope="session")
def tworoom_run(tmp_path_factory):
    """A tiny TwoRoom world model (32 px, the --small preset: frame-skip 2, history 3), 30 steps."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, run = tiny_run(tmp_path_factory.mktemp("physics"), episodes=8, steps=20, train_steps=30)
    finally:
        torch.set_num_threads(n)
    return Path(run)
