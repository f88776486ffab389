"""Checkpoints: safetensors + JSON, atomic, never unpickled, and checked against the env."""

import pytest
import torch

from worldjepa.errors import CheckpointError
from worldjepa import checkpoint as ckpt

META = {"env_id": "worldjepa/TwoRoom-v0", "frame_size": 64, "action_space": {"dim": 2}, "model": {"latent": 8}}


def test_round_trip(tmp_path):
    w = {"enc.weight": torch.randn(4, 3), "enc.bias": torch.zeros(4)}
    ckpt.save(tmp_path / "model.safetensors", w, META)
    tensors, meta = ckpt.load(tmp_path)  # a run directory resolves to model.safetensors
    assert meta == META
    for k in w:
        torch.testing.assert_close(tensors[k], w[k])
    assert ckpt.read_meta(tmp_path)["_tensors"]["enc.weight"] == [4, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left behind


def test_optimizer_state_round_trip_gives_the_same_next_step():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    tensors, info = ckpt.flatten_optimizer(opt.state_dict())
    net2 = torch.nn.Linear(3, 2)
    net2.load_state_dict(net.state_dict())
    opt2 = torch.optim.AdamW(net2.parameters(), lr=0.1)
    import json

    tensors = {k: v.clone() for k, v in tensors.items()}  # as if read back from a file
    opt2.load_state_dict(ckpt.unflatten_optimizer(tensors, json.loads(json.dumps(info))))
    x = torch.randn(5, 3)
    for n, o in ((net, opt), (net2, opt2)):
        o.zero_grad()
        n(x).pow(2).sum().backward()
        o.step()
    torch.testing.assert_close(net.weight, net2.weight, rtol=0, atol=0)


def test_refuses_pickles_and_junk(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="pickle"):
        ckpt.load(tmp_path / "m.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a safetensors"):
        ckpt.load(tmp_path / "junk.safetensors")
    ckpt.save(tmp_path / "ok.safetensors", {"w": torch.zeros(1000)}, META)
    data = (tmp_path / "ok.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        ckpt.load(tmp_path / "cut.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        ckpt.load(tmp_path / "sub") if (tmp_path / "sub").mkdir() is None else None
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load(tmp_path / "missing.safetensors")


def test_header_length_starting_with_the_pickle_byte_is_still_safetensors(tmp_path):
    """A safetensors header length is little-endian: its first byte is 0x80 for 1 length in 256
    (a real run's model.safetensors was once refused as a pickle for that)."""
    import struct

    for pad in range(300):
        path = tmp_path / "m.safetensors"
        ckpt.save(path, {"w": torch.ones(3)}, {**META, "note": "x" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    else:
        pytest.fail("no padding gave a header length with low byte 0x80")
    assert struct.unpack("<Q", path.read_bytes()[:8])[0] % 256 == 0x80
    assert ckpt.sniff(path) == "safetensors"
    tensors, meta = ckpt.load(path)
    assert meta["note"] == "x" * pad and torch.equal(tensors["w"], torch.ones(3))
    torch.save({"w": torch.zeros(2)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert (tmp_path / "legacy.pt").read_bytes()[0] == 0x80
    with pytest.raises(CheckpointError, match="pickle"):
        ckpt.load(tmp_path / "legacy.pt")


def test_check_compatible():
    ckpt.check_compatible(META, env_id="worldjepa/TwoRoom-v0", frame_size=64, action_dim=2)
    with pytest.raises(CheckpointError, match="trained on worldjepa/TwoRoom-v0, not Pendulum-v1"):
        ckpt.check_compatible(META, env_id="Pendulum-v1")
    with pytest.raises(CheckpointError, match="64x64"):
        ckpt.check_compatible(META, frame_size=32)
    with pytest.raises(CheckpointError, match="2-d actions"):
        ckpt.check_compatible(META, action_dim=1)
