import pytest
import torch

from worldjepa.config import from_dict
from worldjepa.configs import PRESETS, CollectConfig, TrainConfig
from worldjepa.data.collect import collect
from worldjepa.training.trainer import Trainer


@pytest.fixture(scope="session")
def tworoom_run(tmp_path_factory):
    """A tiny TwoRoom world model (32 px, the --small preset: frame-skip 2, history 3), 30 steps."""
    root = tmp_path_factory.mktemp("physics")
    data = root / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(data), episodes=8, steps=20, size=32), progress=False)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = from_dict(TrainConfig, {**PRESETS["train"]["small"], "data": str(data), "out": str(root / "run"), "steps": 30,
                                  "progress": False, "device": "cpu"})
    Trainer(cfg).fit()
    torch.set_num_threads(n)
    return root / "run"
