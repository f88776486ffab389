"""Every registered encoder and predictor runs forward and backward; registry errors."""

from __future__ import annotations

import pytest
import torch

from worldjepa.errors import ConfigError, WorldJepaError
from worldjepa.nn import (
    ENCODERS,
    PREDICTORS,
    PRESETS,
    build_encoder,
    build_predictor,
)

from nn_testutils import TINY

TINY_ENC = {
    "cnn": dict(size=32, channels=(4, 8, 8, 16), out_dim=10),
    "vit_tiny": dict(size=32, patch=8, dim=16, depth=2, heads=2, out_dim=10),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, **TINY_ENC[name])
    frames = torch.rand(3, 3, 32, 32, requires_grad=True)
    z = enc(frames)
    assert z.shape == (3, enc.out_dim) == (3, 10)
    assert torch.isfinite(z).all()
    z.square().mean().backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert frames.grad is not None and frames.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_predictor_forward_backward(name: str) -> None:
    torch.manual_seed(0)
    m = build_predictor(name, dim=6, action_dim=2, **TINY[name]).train()
    z = torch.randn(3, 5, 6, requires_grad=True)
    a = torch.randn(3, 5, 2)
    out = m(z, a)
    assert out.shape == (3, 5, 6)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in m.parameters())
    imagined = m.eval().rollout(z[:, :3].detach(), a[:, :2], torch.randn(3, 4, 2, 2))
    assert imagined.shape == (3, 4, 2, 6) and torch.isfinite(imagined).all()


def test_unknown_names_list_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid: cnn, vit_tiny"):
        build_encoder("resnet")
    with pytest.raises(ConfigError, match="valid: gru, mlp, transformer"):
        build_predictor("lstm", dim=4, action_dim=2)
    with pytest.raises(WorldJepaError, match="unknown preset 'huge'"):
        build_predictor("transformer", dim=4, action_dim=2, preset="huge")
    with pytest.raises(ConfigError, match="not 'mlp'"):
        build_predictor("mlp", dim=4, action_dim=2, preset="tiny")


def test_preset_sizes_and_override() -> None:
    counts = {}
    for preset in PRESETS:
        m = build_predictor("transformer", dim=64, action_dim=2, preset=preset)
        counts[preset] = sum(p.numel() for p in m.parameters())
    assert counts["tiny"] < counts["small"] < counts["lewm"]
    assert 9e6 < counts["lewm"] < 12e6  # LeWM reports a ~10M-parameter predictor
    m = build_predictor("transformer", dim=64, action_dim=2, preset="lewm", depth=2)
    assert len(m.blocks) == 2 and m.width == 192
