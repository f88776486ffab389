"""VICReg terms against hand-computed values."""

import pytest
import torch

from worldjepa.errors import WorldJepaError
from worldjepa.losses import VICReg


def test_terms_match_hand_computation():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 6, generator=g, dtype=torch.float64)
    b = a + 0.1 * torch.randn(50, 6, generator=g, dtype=torch.float64)
    out = VICReg(sim_coeff=2.0, std_coeff=3.0, cov_coeff=5.0)(a, b)
    inv = ((a - b) ** 2).mean()

    def var(z):
        return torch.clamp(1 - torch.sqrt(z.var(0) + 1e-4), min=0).mean()

    def cov(z):
        c = torch.cov(z.T)  # (D, D), unbiased
        return (c.square().sum() - torch.diagonal(c).square().sum()) / z.shape[1]

    torch.testing.assert_close(out["invariance"], inv)
    torch.testing.assert_close(out["variance"], (var(a) + var(b)) / 2)
    torch.testing.assert_close(out["covariance"], cov(a) + cov(b))
    torch.testing.assert_close(out["loss"], 2 * inv + 3 * (var(a) + var(b)) / 2 + 5 * (cov(a) + cov(b)))


def test_collapse_is_penalised_and_whitened_is_not():
    g = torch.Generator().manual_seed(0)
    white = torch.randn(4096, 8, generator=g)
    collapsed = torch.zeros(4096, 8) + 0.01 * torch.randn(4096, 1, generator=g)
    reg = VICReg()
    assert reg(white)["loss"] < 0.1
    assert reg(collapsed)["variance"] > 0.9


def test_one_view_regulariser_has_no_invariance_term():
    z = torch.randn(32, 4) * 0.2
    out = VICReg()(z)
    assert out["invariance"] == 0
    torch.testing.assert_close(out["loss"], 25 * out["variance"] + out["covariance"])


def test_bad_shapes():
    with pytest.raises(WorldJepaError):
        VICReg()(torch.randn(8, 4), torch.randn(8, 5))
    with pytest.raises(WorldJepaError):
        VICReg()(torch.randn(1, 4))
