"""Predictor contract: causality, rollout == naive re-computation, sliding window, AdaLN-zero,
shared history, and clear shape errors."""

from __future__ import annotations

import copy

import pytest
import torch
from nn_testutils import A, D, make_predictor, naive_rollout

from worldjepa.errors import WorldJepaError
from worldjepa.nn import PREDICTORS, ShapeError, TransformerPredictor

NAMES = sorted(PREDICTORS)


def _inputs(b: int, t: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, t, D, generator=g, dtype=torch.float64)
    a = torch.randn(b, t, A, generator=g, dtype=torch.float64)
    return z, a


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_causal(name: str) -> None:
    m = make_predictor(name)
    z, a = _inputs(2, 7)
    out = m(z, a)
    for t in (0, 3, 5):
        z2, a2 = z.clone(), a.clone()
        z2[:, t + 1 :] += 1.0
        a2[:, t + 1 :] -= 1.0
        out2 = m(z2, a2)
        torch.testing.assert_close(out2[:, : t + 1], out[:, : t + 1], rtol=0, atol=1e-12)
        assert (out2[:, t + 1 :] - out[:, t + 1 :]).abs().max() > 1e-6  # the future does matter
    a3 = a.clone()
    a3[:, 4] += 1.0  # a[t] must drive output t (the prediction of z[t + 1])
    assert (m(z, a3)[:, 4] - out[:, 4]).abs().max() > 1e-6


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("th,horizon", [(1, 4), (3, 2), (5, 7)])
def test_rollout_equals_naive(name: str, th: int, horizon: int) -> None:
    m = make_predictor(name)
    z, a = _inputs(2, th)
    g = torch.Generator().manual_seed(7)
    actions = torch.randn(2, 4, horizon, A, generator=g, dtype=torch.float64)
    with torch.no_grad():
        fast = m.rollout(z, a[:, : th - 1], actions)
        slow = naive_rollout(m, z, a[:, : th - 1], actions)
    assert fast.shape == (2, 4, horizon, D)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
    assert (fast[:, 0] - fast[:, 1]).abs().max() > 1e-6  # samples really differ


@pytest.mark.parametrize("history,depth", [(1, 2), (2, 3), (3, 2)])
def test_kv_cache_beyond_window(history: int, depth: int) -> None:
    # H and Th both exceed the window, so the cache must slide (and drop old tokens)
    m = make_predictor("transformer", history=history, depth=depth)
    z, a = _inputs(3, 4 + history)
    actions = torch.randn(3, 2, 3 * history + 2, A, dtype=torch.float64)
    with torch.no_grad():
        fast = m.rollout(z, a[:, :-1], actions)
        slow = naive_rollout(m, z, a[:, :-1], actions)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)


def test_float32_rollout_on_packed_kernels_matches_the_modules() -> None:
    # float32 CPU inference runs the blocks' linears on oneDNN's packed kernels where the build
    # has them (faster at planning sizes); forward() keeps the modules: same products
    from worldjepa.nn import adaln

    m = make_predictor("transformer", width=64, heads=2, mlp_dim=adaln.PACKED_MIN_WEIGHTS // 64).float()
    with torch.no_grad():
        assert make_predictor("transformer").float().blocks[0].packed_weights(torch.zeros(1)) is None  # small
        assert m.blocks[0].packed_weights(torch.zeros(1)) is not None or not adaln.onednn_linear_ok()
    z, a = (t.float() for t in _inputs(2, 4))
    g = torch.Generator().manual_seed(7)
    actions = torch.randn(2, 5, 6, A, generator=g)
    with torch.no_grad():
        fast = m.rollout(z, a[:, :3], actions)
        slow = naive_rollout(m, z, a[:, :3], actions)
        torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
        if adaln.onednn_linear_ok():
            assert all(blk._packed is not None for blk in m.blocks)  # the packed path ran
            torch.testing.assert_close(copy.deepcopy(m).rollout(z, a[:, :3], actions), fast)  # opaque packs left behind
            blk = m.blocks[0]
            blk.qkv.weight.mul_(0.5)  # an in-place change moves the version: repacked
            torch.testing.assert_close(m.rollout(z, a[:, :3], actions), naive_rollout(m, z, a[:, :3], actions),
                                       rtol=1e-4, atol=1e-5)
    with torch.enable_grad():
        m.blocks[0].drop_packed()
        m.rollout(z, a[:, :3], actions)
        assert m.blocks[0]._packed is None  # with autograd: the modules, never the packed copies


def test_attention_window_is_history() -> None:
    # one layer: output t sees z[t - history + 1 .. t] and nothing older
    m = make_predictor("transformer", history=3, depth=1)
    z, a = _inputs(2, 8)
    out = m(z, a)
    z2 = z.clone()
    z2[:, 2] += 1.0
    out2 = m(z2, a)
    changed = (out2 - out).abs().amax(dim=(0, 2)) > 1e-9  # (T,)
    assert changed.tolist() == [False, False, True, True, True, False, False, False]


def test_adaln_zero_blocks_are_identity_at_init() -> None:
    torch.manual_seed(0)
    m = TransformerPredictor(D, A, depth=3, heads=2, width=16, dropout=0.0).double().eval()
    z, a = _inputs(2, 5)
    expected = m.out_proj(m.out_norm(m.in_proj(z)))  # blocks skipped entirely
    torch.testing.assert_close(m(z, a), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(m(z, a + 3.0), expected, rtol=0, atol=1e-12)
    for blk in m.blocks:
        assert blk.modulation.weight.abs().sum() == 0 and blk.modulation.bias.abs().sum() == 0
    # the gates still receive gradient, so the blocks can leave the identity
    m(z, a).square().sum().backward()
    assert m.blocks[0].modulation.weight.grad.abs().sum() > 0


def test_rollout_runs_history_once_per_batch_row() -> None:
    m = make_predictor("transformer")
    seen: list[tuple[int, ...]] = []
    hook = m.blocks[0].qkv.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape))
    z, a = _inputs(2, 4)
    with torch.no_grad():
        m.rollout(z, a[:, :3], torch.randn(2, 50, 5, A, dtype=torch.float64))
    hook.remove()
    assert seen[0] == (2, 3, m.width)  # the 3 history tokens, once per batch row, not per sample
    assert seen[1:] == [(2, 50, m.width)] * 5  # then one token per sample and imagined step


@pytest.mark.parametrize("name", NAMES)
def test_bad_shapes_raise_clear_errors(name: str) -> None:
    m = make_predictor(name)
    z, a = _inputs(2, 4)
    with pytest.raises(ShapeError, match=rf"z must have shape \(B, T, {D}\), got \(2, 4, 5\)"):
        m(z[..., :5], a)
    with pytest.raises(ShapeError, match=rf"a must have shape \(2, 4, {A}\), got \(2, 4, 3\)"):
        m(z, torch.zeros(2, 4, 3, dtype=z.dtype))
    with pytest.raises(ShapeError, match=r"a must have shape \(2, 4, 2\), got \(2, 3, 2\)"):
        m(z, a[:, :3])
    with pytest.raises(ShapeError, match=r"a_hist must have shape \(2, 3, 2\), got \(2, 4, 2\)"):
        m.rollout(z, a, torch.zeros(2, 3, 2, A, dtype=z.dtype))
    with pytest.raises(ShapeError, match=r"actions must have shape \(2, S, H, 2\)"):
        m.rollout(z, a[:, :3], torch.zeros(2, 5, A, dtype=z.dtype))
    with pytest.raises(WorldJepaError):  # users can catch one type for bad input
        m(z[..., :5], a)
    with pytest.raises(ValueError):
        m(z[..., :5], a)


@pytest.mark.parametrize("name", NAMES)
def test_rollout_gradient_matches_naive(name: str) -> None:
    # gradient-based planners differentiate the imagined future w.r.t. the actions
    m = make_predictor(name, **({"history": 2} if name == "transformer" else {}))
    z, a = _inputs(2, 3)
    g = torch.Generator().manual_seed(3)
    acts = torch.randn(2, 3, 5, A, generator=g, dtype=torch.float64)
    goal = torch.randn(D, generator=g, dtype=torch.float64)
    grads = []
    for fn in (m.rollout, lambda *args: naive_rollout(m, *args)):
        x = acts.clone().requires_grad_(True)
        (fn(z, a[:, :2], x) - goal).square().sum().backward()
        grads.append(x.grad)
    assert grads[0].abs().max() > 1e-6
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-8)
