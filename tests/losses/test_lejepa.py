"""lejepa_loss equals the formula written out by hand."""

import pytest
import torch

from worldjepa.errors import WorldJepaError
from worldjepa.losses import SIGReg, epps_pulley, lejepa_loss


def test_lejepa_equals_formula():
    g = torch.Generator().manual_seed(0)
    vg, v, n, d = 2, 5, 40, 6
    z = torch.randn(v, n, d, generator=g, dtype=torch.float64)  # (V, N, D), globals first
    sig = SIGReg(num_slices=32, seed=4)
    out = lejepa_loss(z[:vg], z, sig, lam=0.2)

    dirs = sig.directions(d, 0, dtype=torch.float64)  # step 0 was used
    sig_ref = torch.stack([epps_pulley(z[i] @ dirs).mean() for i in range(v)]).mean()
    pred_ref = 0.0
    for i in range(n):
        mu = (z[0, i] + z[1, i]) / 2
        for j in range(v):
            pred_ref += ((mu - z[j, i]) ** 2).mean()  # reference code: mean over D
    pred_ref /= n * v
    torch.testing.assert_close(out["sigreg"], sig_ref)
    torch.testing.assert_close(out["pred"], torch.as_tensor(pred_ref, dtype=torch.float64))
    torch.testing.assert_close(out["loss"], 0.2 * sig_ref + 0.8 * pred_ref)
    assert int(sig.step) == 1  # one call, one step

    summed = lejepa_loss(z[:vg], z, SIGReg(num_slices=32, seed=4), lam=0.2, dim_reduction="sum")
    torch.testing.assert_close(summed["pred"], out["pred"] * d)


def test_gradient_flows_through_centres():
    z = torch.randn(3, 16, 4, requires_grad=True)
    lejepa_loss(z[:2], z, SIGReg(num_slices=8), lam=0.0)["loss"].backward()
    assert z.grad[:2].abs().sum() > 0  # no stop-gradient on the global views


def test_bad_input():
    s = SIGReg(num_slices=8)
    with pytest.raises(WorldJepaError):
        lejepa_loss(torch.randn(2, 8, 4), torch.randn(3, 9, 4), s)
    with pytest.raises(WorldJepaError):
        lejepa_loss(torch.randn(8, 4), torch.randn(3, 8, 4), s)
    with pytest.raises(WorldJepaError):
        lejepa_loss(torch.randn(2, 8, 4), torch.randn(3, 8, 4), s, lam=1.5)
