"""epps_pulley against the definition; SIGReg's claimed properties."""

import math

import numpy as np
import pytest
import torch

import worldjepa.losses.sigreg as sigreg_mod
from worldjepa.errors import WorldJepaError
from worldjepa.losses import SIGReg, SIGRegError, epps_pulley

quad = pytest.importorskip("scipy.integrate").quad


def _quad_statistic(x: np.ndarray, t_max: float = 3.0) -> float:
    """N * integral_{-t_max}^{t_max} |ecf(t) - e^{-t^2/2}|^2 e^{-t^2/2} dt, adaptive quadrature."""
    def f(t):
        return abs(np.exp(1j * t * x).mean() - math.exp(-t * t / 2)) ** 2 * math.exp(-t * t / 2)
    return len(x) * quad(f, -t_max, t_max, limit=200, epsabs=0, epsrel=1e-10)[0]


def _samples(kind: str, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(1)
    return {
        "gauss": rng.standard_normal(n),
        "uniform": rng.uniform(-2.0, 2.0, n),
        "exponential": rng.exponential(1.0, n),
        "bimodal": np.concatenate([rng.normal(-2, 0.5, n // 2), rng.normal(2, 0.5, n // 2)]),
    }[kind]


@pytest.mark.parametrize("kind", ["gauss", "uniform", "exponential", "bimodal"])
def test_epps_pulley_matches_adaptive_quadrature(kind):
    x = _samples(kind)
    exact = _quad_statistic(x)
    xt = torch.tensor(x)[:, None]  # (N, 1)
    err17 = abs(epps_pulley(xt).item() - exact) / exact
    err33 = abs(epps_pulley(xt, num_points=33).item() - exact) / exact
    assert err17 < 0.01  # measured: <= 0.15% (Gaussian samples, where the statistic is tiny)
    assert err33 < 0.0025
    assert err33 < err17 / 2  # trapezoid converges: error shrinks ~4x when dt halves
    # float32 input stays within 1% too
    assert abs(epps_pulley(xt.float()).item() - exact) / exact < 0.01


def _direct(x: torch.Tensor, t_max: float, p: int) -> torch.Tensor:
    """The definition with the (N, K, P) tensor materialised (float64 reference)."""
    t = torch.linspace(0, t_max, p, dtype=torch.float64)  # (P,)
    xt = x.unsqueeze(-1) * t  # (N, K, P)
    err = (xt.cos().mean(0) - torch.exp(-t * t / 2)).square() + xt.sin().mean(0).square()
    w = torch.full((p,), t_max / (p - 1), dtype=torch.float64)
    w[0] = w[-1] = t_max / (p - 1) / 2
    return x.shape[0] * (err @ (2 * w * torch.exp(-t * t / 2)))  # (K,)


@pytest.mark.parametrize("chunk", [1 << 17, 7])  # one chunk, and many ragged chunks
def test_recurrence_and_backward_match_the_definition(monkeypatch, chunk):
    monkeypatch.setattr(sigreg_mod, "_CHUNK_ELEMS", chunk)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(23, 3, generator=g, dtype=torch.float64) * 1.5 + 0.3).requires_grad_()
    torch.testing.assert_close(epps_pulley(x, 2.5, 9), _direct(x, 2.5, 9), rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda v: epps_pulley(v, 2.5, 9), (x,))


def test_statistic_small_for_gaussian_large_otherwise():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4096, 32, generator=g)  # (N, K)
    base = epps_pulley(z).mean()
    assert base < 2.0  # E[statistic] under H0 is about 1.03, independent of N (next test)
    for bad in (3 * z, z + 1, torch.zeros_like(z), torch.full_like(z, 0.5)):
        assert epps_pulley(bad).mean() > 50 * base


def test_null_expectation_matches_theory():
    # Under H0, E|ecf(t) - phi(t)|^2 = (1 - phi(t)^2) / N, so E[stat] = sum_p w_p (1 - phi_p^2).
    _, phi, w = sigreg_mod.quadrature(3.0, 17)
    expected = float((w * (1 - phi.square())).sum())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4000, generator=g, dtype=torch.float64)  # (N, K)
    assert abs(epps_pulley(x).mean().item() - expected) < 0.05 * expected


def test_gradients_finite_for_constant_batch():
    for c in (0.0, 2.0):
        z = torch.full((64, 8), c, requires_grad=True)
        SIGReg(num_slices=32)(z).backward()
        assert torch.isfinite(z.grad).all()


def test_sigreg_prefers_isotropic_gaussian():
    g = torch.Generator().manual_seed(0)
    iso = torch.randn(1024, 16, generator=g)  # (N, D)
    rank1 = torch.randn(1024, 1, generator=g) * torch.ones(1, 16) / 4  # (N, D), unit variance along one axis
    aniso = iso * torch.linspace(0.1, 2.0, 16)  # (N, D)
    s = SIGReg(num_slices=256).eval()
    assert s(iso) * 10 < s(aniso)
    assert s(iso) * 10 < s(rank1)


def test_sigreg_is_mean_of_epps_pulley_over_directions():
    s = SIGReg(num_slices=64, seed=5).eval()
    z = torch.randn(100, 12, dtype=torch.float64)
    dirs = s.directions(12, 0, dtype=torch.float64)  # (D, K)
    torch.testing.assert_close(s(z), epps_pulley(z @ dirs).mean())
    # (G, N, D): mean over groups of the per-group values, same directions
    zg = torch.randn(3, 100, 12, dtype=torch.float64)
    torch.testing.assert_close(s(zg), torch.stack([s(v) for v in zg]).mean())


def test_directions_seeded_by_seed_and_step():
    a, b = SIGReg(num_slices=8, seed=1), SIGReg(num_slices=8, seed=1)
    torch.testing.assert_close(a.directions(5, 3), b.directions(5, 3))
    assert not torch.allclose(a.directions(5, 3), a.directions(5, 4))
    assert not torch.allclose(a.directions(5, 3), SIGReg(num_slices=8, seed=2).directions(5, 3))
    torch.testing.assert_close(a.directions(5, 3).norm(dim=0), torch.ones(8))


def test_step_advances_in_training_only_and_is_saved():
    s = SIGReg(num_slices=8)
    z = torch.randn(16, 4)
    s(z)
    s(z)
    assert int(s.step) == 2
    s.eval()
    v1, v2 = s(z), s(z)
    assert int(s.step) == 2 and torch.equal(v1, v2)
    t = SIGReg(num_slices=8)
    t.load_state_dict(s.state_dict())
    assert int(t.step) == 2


def test_bad_input_errors_name_the_step():
    s = SIGReg(num_slices=8)
    z = torch.randn(16, 4)
    for _ in range(3):
        s(z)
    z[2, 1] = float("nan")
    with pytest.raises(SIGRegError, match="SIGReg step 3: embeddings contain NaN/Inf"):
        s(z)
    assert isinstance(SIGRegError("x"), (WorldJepaError, FloatingPointError))
    with pytest.raises(SIGRegError, match="at least 2 samples"):
        s(torch.randn(1, 4))
    with pytest.raises(SIGRegError, match="dim changed from 4 to 5"):
        s(torch.randn(16, 5))
    with pytest.raises(WorldJepaError):
        epps_pulley(torch.randn(10))


def test_half_precision_input_is_computed_in_float32():
    z = torch.randn(512, 16, generator=torch.Generator().manual_seed(0))
    s = SIGReg(num_slices=64).eval()
    zb = z.bfloat16().requires_grad_()
    lb = s(zb)
    assert lb.dtype == torch.float32
    torch.testing.assert_close(lb, s(z), rtol=0.05, atol=0.0)  # bf16 directions and matmul
    lb.backward()
    assert zb.grad.dtype == torch.bfloat16 and torch.isfinite(zb.grad.float()).all()


def test_minimising_sigreg_turns_collapsed_embeddings_into_standard_gaussian():
    torch.manual_seed(0)
    z = torch.nn.Parameter(0.01 * torch.randn(512, 4) + 2.0)  # (N, D) collapsed, off-centre
    s = SIGReg(num_slices=64)
    opt = torch.optim.Adam([z], lr=0.05)
    start = s(z.detach()).item()
    for _ in range(150):
        opt.zero_grad()
        s(z).backward()
        opt.step()
    end = s.eval()(z.detach()).item()
    assert end < start / 100
    std, mean = z.detach().std(0), z.detach().mean(0)
    assert ((std - 1).abs() < 0.15).all() and (mean.abs() < 0.15).all()


def test_module_half_does_not_round_the_quadrature():
    z = torch.randn(4096, 8, generator=torch.Generator().manual_seed(0))
    ref = SIGReg(num_slices=32).eval()(z)
    torch.testing.assert_close(SIGReg(num_slices=32).half().eval()(z), ref)


def test_leaves_no_threads_behind(monkeypatch):
    # threads that outlive a call after running torch kernels make OpenMP stop spin-waiting in
    # every later multi-threaded torch call of the process (2x slower planning on two threads)
    import threading

    monkeypatch.setattr(sigreg_mod, "_CHUNK_ELEMS", 64)  # many chunks
    before = threading.active_count()
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        x = torch.randn(300, 16, requires_grad=True)
        SIGReg(num_slices=32)(x).backward()
    finally:
        torch.set_num_threads(n)
    assert threading.active_count() == before
