"""Encoders at several frame sizes, their shape errors, and the projector's BatchNorm."""

from __future__ import annotations

import pytest
import torch

from worldjepa.nn import CNNEncoder, Projector, ShapeError, ViTTiny


@pytest.mark.parametrize("size", [32, 64, 96])
def test_cnn_sizes(size: int) -> None:
    enc = CNNEncoder(size=size, channels=(4, 8, 8, 16), out_dim=12)
    assert enc.grid == size // 16
    z = enc(torch.rand(2, 3, size, size))
    assert z.shape == (2, 12) and torch.isfinite(z).all()


def test_cnn_keeps_position() -> None:
    # the same blob at two places must give two different embeddings (no global pooling)
    torch.manual_seed(0)
    enc = CNNEncoder(size=32, channels=(4, 8, 8, 16), out_dim=8).eval()
    f = torch.zeros(2, 3, 32, 32)
    f[0, :, 2:8, 2:8] = 1.0
    f[1, :, 22:28, 22:28] = 1.0
    z = enc(f)
    assert (z[0] - z[1]).abs().max() > 1e-3


def test_encoders_reject_bad_frames() -> None:
    enc = CNNEncoder(size=32, channels=(4, 8), out_dim=8)
    with pytest.raises(ShapeError, match=r"\(B, 3, 32, 32\), got \(2, 3, 64, 64\)"):
        enc(torch.rand(2, 3, 64, 64))
    vit = ViTTiny(size=32, patch=8, dim=16, depth=1, heads=2, out_dim=8)
    with pytest.raises(ValueError, match=r"got \(2, 32, 32, 3\)"):
        vit(torch.rand(2, 32, 32, 3))  # channels-last by mistake
    with pytest.raises(ValueError, match="multiple of patch"):
        ViTTiny(size=30, patch=8)


def test_vit_pools_differ() -> None:
    torch.manual_seed(0)
    cls = ViTTiny(size=16, patch=8, dim=16, depth=1, heads=2, out_dim=16, pool="cls").eval()
    mean = ViTTiny(size=16, patch=8, dim=16, depth=1, heads=2, out_dim=16, pool="mean").eval()
    mean.load_state_dict(cls.state_dict())
    f = torch.rand(2, 3, 16, 16)
    assert cls(f).shape == mean(f).shape == (2, 16)
    assert not torch.allclose(cls(f), mean(f))


def test_projector_sequence_batchnorm_spans_b_times_t() -> None:
    torch.manual_seed(0)
    proj = Projector(5, hidden_dim=7, out_dim=3).train()
    x = torch.randn(4, 6, 5) + torch.arange(6.0)[None, :, None]  # time-dependent means
    y = proj(x)
    assert y.shape == (4, 6, 3)
    y_flat = proj(x.reshape(24, 5)).view(4, 6, 3)
    torch.testing.assert_close(y, y_flat)
    # per-time-step statistics would give another answer
    y_step = torch.stack([proj(x[:, t]) for t in range(6)], dim=1)
    assert (y - y_step).abs().max() > 1e-2
    with pytest.raises(ShapeError, match=r"\(N, 5\), got \(4, 4\)"):
        proj(torch.randn(4, 4))


def test_projector_with_no_layers_only_standardises() -> None:
    torch.manual_seed(0)
    proj = Projector(5, out_dim=5, layers=0).train()
    assert not list(proj.parameters())  # nothing to learn
    x = torch.randn(64, 5) * torch.tensor([0.1, 1.0, 3.0, 0.5, 2.0]) + 4.0
    y = proj(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(5), atol=1e-3, rtol=0)
    for _ in range(200):  # running statistics converge to the data's: eval standardises alike
        proj(x)
    torch.testing.assert_close(proj.eval()(x), y, atol=1e-3, rtol=1e-2)  # running var is unbiased: 64/63
    with pytest.raises(ValueError, match="out_dim = in_dim"):
        Projector(5, out_dim=3, layers=0)


def test_cnn_keypoints_are_expected_positions_that_follow_a_blob() -> None:
    torch.manual_seed(0)
    enc = CNNEncoder(size=32, channels=(4, 8, 8, 16), out_dim=12, keypoints=2).eval()
    with torch.no_grad():
        enc.heatmaps.weight.fill_(1.0)  # every heatmap = the summed channels: peaks where the blob is
        enc.heatmaps.bias.zero_()
        enc.log_temperature.fill_(-3.0)
    f = torch.zeros(3, 3, 32, 32)
    for i, x0 in enumerate((4, 14, 24)):  # a blob moving right along one row
        f[i, :, 12:18, x0:x0 + 6] = 1.0
    z = enc(f)
    assert z.shape == (3, 12) and torch.isfinite(z).all()
    kx, ky = z[:, 8:10], z[:, 10:12]  # the last 2K outputs: K x's, then K y's
    assert (kx.abs() <= 1).all() and (ky.abs() <= 1).all()
    assert (kx[1] > kx[0]).all() and (kx[2] > kx[1]).all()  # x grows with the blob's x
    assert (ky[0] - ky[2]).abs().max() < 0.1 * (kx[2] - kx[0]).min()  # y barely moves
    with pytest.raises(ValueError, match="keypoints"):
        CNNEncoder(size=32, channels=(4, 8), out_dim=8, keypoints=4)  # 2K must stay below out_dim
    plain = CNNEncoder(size=32, channels=(4, 8, 8, 16), out_dim=12)
    assert not hasattr(plain, "heatmaps") and plain(f).shape == (3, 12)
