"""Bring your own encoder: a module built by an import path, with weights from a safetensors file
on disk, trained frozen into a world model; the checkpoint rebuilds it (import path + keyword
arguments, never a pickle) and Agent.load reloads it, once the module is trusted."""

import json
import os
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from worldjepa import checkpoint as ckpt
from worldjepa.cli import main
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.errors import WorldJepaError
from worldjepa.nn import external

MODULE = textwrap.dedent('''
    import torch
    from torch import nn


    class Tiny(nn.Module):
        """A user's encoder: a strided conv and a BatchNorm, returning a feature map."""

        def __init__(self, width=8):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 4, stride=4)
            self.bn = nn.BatchNorm2d(width)

        def forward(self, x):
            return self.bn(self.conv(x))  # (B, width, h, w)


    def build(width=8):
        return Tiny(width)
''')
PATH = "wj_user_encoders:build"


@pytest.fixture
def user(tmp_path, monkeypatch):
    """The user's module on sys.path, its weights in a safetensors file, and a small dataset."""
    (tmp_path / "wj_user_encoders.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(external, "_TRUSTED", set())
    monkeypatch.delenv(external.TRUST_VARIABLE, raising=False)
    import importlib

    mod = importlib.import_module("wj_user_encoders")
    torch.manual_seed(7)
    net = mod.build(width=6)
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)  # statistics a trained encoder would have
        net.bn.running_var.uniform_(0.5, 2.0)
    weights = tmp_path / "weights.safetensors"
    save_file(net.state_dict(), str(weights))
    data = tmp_path / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(data), episodes=12, steps=20, size=32), progress=False)
    return {"net": net.eval(), "weights": str(weights), "data": str(data), "run": str(tmp_path / "run"),
            "root": str(tmp_path)}


def _train(user, *extra):
    return main(["train", "--data", user["data"], "--out", user["run"], "--small", "--steps", "3", "--val-windows", "8",
                 "--no-progress", "--threads", "1", "--device", "cpu", "--encoder-module", PATH,
                 "--encoder-kwargs", "width=6", "--encoder-weights", user["weights"], "--freeze-encoder",
                 "--encoder-input-size", "16", "--encoder-normalize", "imagenet", "--encoder-pool", "flatten", *extra])


def test_a_user_module_with_its_weights_trains_frozen_and_reloads_through_agent_load(user, monkeypatch):
    from worldjepa.agent import Agent

    assert _train(user) == 0
    tensors, meta = ckpt.load(user["run"])
    enc = meta["model"]["encoder"]
    assert enc["kind"] == "module" and enc["module"] == PATH and enc["module_kwargs"] == "width=6"
    assert enc["dim"] == 6 * 4 * 4  # flatten: 6 channels x a 4x4 map of the 16 px input
    for k, v in user["net"].state_dict().items():  # frozen: the user's weights and BatchNorm statistics, kept
        assert torch.equal(tensors[f"model/encoder.module.{k}"], v), k
    assert not any(str(user["weights"]) in k for k in tensors)

    monkeypatch.setattr(external, "_TRUSTED", set())  # a fresh process: nothing trusted yet
    with pytest.raises(WorldJepaError, match=external.TRUST_VARIABLE):
        Agent.load(user["run"], device="cpu")
    monkeypatch.setenv(external.TRUST_VARIABLE, PATH)
    agent = Agent.load(user["run"], device="cpu", samples=8, iterations=1)
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = torch.as_tensor(frame).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
    x = (x - torch.tensor(external.IMAGENET[0]).view(1, 3, 1, 1)) / torch.tensor(external.IMAGENET[1]).view(1, 3, 1, 1)
    with torch.no_grad():
        tokens = user["net"](x).flatten(2).transpose(1, 2)  # (1, h*w, C): the map's positions as tokens
        want = agent.model.embed_features(tokens.flatten(1))[0]  # the user's module, by hand
    torch.testing.assert_close(agent.encode(frame), want)
    assert main(["eval", "--data", user["data"], "--policy", user["run"], "--episodes", "1", "--budget", "2",
                 "--goal-offset", "5", "--samples", "8", "--iterations", "1", "--no-progress"]) == 0
    monkeypatch.delenv(external.TRUST_VARIABLE)
    external.trust_module(PATH)  # trusted from Python: the worker processes trust it too
    monkeypatch.setenv("PYTHONPATH", f"{user['root']}:{os.environ.get('PYTHONPATH', '')}")  # they import it
    assert main(["eval", "--data", user["data"], "--policy", user["run"], "--episodes", "2", "--budget", "2",
                 "--goal-offset", "5", "--samples", "8", "--iterations", "1", "--no-progress", "--workers", "2"]) == 0


def test_weights_must_be_safetensors_that_fit(user, tmp_path, capsys):
    pickled = tmp_path / "weights.pt"
    torch.save(user["net"].state_dict(), pickled)
    assert _train(user, "--encoder-weights", str(pickled)) == 2
    assert "never unpickles" in capsys.readouterr().err
    save_file({"conv.weight": torch.zeros(6, 3, 4, 4)}, str(tmp_path / "part.safetensors"))
    assert _train(user, "--encoder-weights", str(tmp_path / "part.safetensors")) == 2
    assert "missing" in capsys.readouterr().err
    save_file({**user["net"].state_dict(), "conv.weight": torch.zeros(6, 3, 3, 3)}, str(tmp_path / "shape.safetensors"))
    assert _train(user, "--encoder-weights", str(tmp_path / "shape.safetensors")) == 2
    assert "does not fit" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_bad_module_paths_are_config_errors(user, capsys):
    assert _train(user, "--encoder-module", "no colon") == 2
    assert "pkg.mod:build" in capsys.readouterr().err
    assert _train(user, "--encoder-module", "wj_user_encoders:nothing") == 2
    assert "nothing" in capsys.readouterr().err
    assert main(["pretrain", "--data", user["data"], "--out", user["run"], "--encoder-module", PATH]) == 2
    assert "train --encoder-module" in capsys.readouterr().err


def test_config_json_of_such_a_run_names_the_module(user):
    assert _train(user) == 0
    cfg = json.loads((ckpt.resolve(user["run"]).parent / "config.json").read_text())
    assert cfg["config"]["model"]["encoder"]["weights"] == user["weights"]


def test_a_random_timm_vit_from_a_local_file(user, tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    kwargs = "model_name=vit_tiny_patch16_224 num_classes=0 img_size=32 patch_size=8"
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8)
    save_file(vit.state_dict(), str(tmp_path / "vit.safetensors"))
    assert main(["train", "--data", user["data"], "--out", str(tmp_path / "vit"), "--small", "--steps", "2",
                 "--val-windows", "8", "--no-progress", "--device", "cpu", "--encoder-module", "timm:create_model",
                 "--encoder-kwargs", kwargs, "--encoder-weights", str(tmp_path / "vit.safetensors"),
                 "--freeze-encoder", "--encoder-normalize", "imagenet"]) == 0
    tensors, meta = ckpt.load(tmp_path / "vit")
    assert meta["model"]["encoder"]["dim"] == vit.num_features
    for k, v in vit.state_dict().items():
        assert torch.equal(tensors[f"model/encoder.module.{k}"], v), k
