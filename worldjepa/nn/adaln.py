"""Building blocks of the transformer predictor: RoPE, the band-causal mask, the AdaLN-zero
block and the per-layer key/value cache used by ``rollout``.

RoPE makes attention scores depend only on relative offsets, so the keys and values cached
for a token stay valid as the attention window slides. For float32 inference on the CPU, large
blocks run their linear layers on oneDNN's packed kernels (:meth:`AdaLNBlock.packed_weights`):
the same products, 10-20% faster at planning sizes on the CPU we measure on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_ONEDNN: bool | None = None  # whether oneDNN's packed linear works here (probed on first use)
# blocks whose MLP has fewer weights than this keep nn.Linear: on this CPU the packed kernels
# lost on small layers (preset "small": 2-3% slower rollouts, "tiny": 20%) and won on
# LeWM-size ones (192 x 2048: 10-20% faster)
PACKED_MIN_WEIGHTS = 1 << 18


def onednn_linear_ok() -> bool:
    """True when ``torch.ops.mkldnn._linear_pointwise`` with packed weights is available and
    agrees with ``F.linear`` (probed once; any failure turns the fast path off)."""
    global _ONEDNN
    if _ONEDNN is None:
        try:
            ops = torch.ops.mkldnn
            g = torch.Generator().manual_seed(0)
            x, w, b = (torch.randn(*shape, generator=g) for shape in ((5, 8), (6, 8), (6,)))
            y = ops._linear_pointwise(x, ops._reorder_linear_weight(w, None), b, "gelu", [], "none")
            _ONEDNN = bool(torch.backends.mkldnn.is_available()) and torch.allclose(
                y, F.gelu(F.linear(x, w, b)), atol=1e-5)
        except Exception:  # noqa: BLE001 - a build without the op, or one where it fails: the module path
            _ONEDNN = False
    return _ONEDNN


def set_packed_kernels(enabled: bool | None) -> None:
    """Turn the packed-kernel path of float32 CPU inference off (``False``), or back to
    "where the build has it" (``None``). ``True`` is the same as ``None``: the probe decides."""
    global _ONEDNN
    _ONEDNN = False if enabled is False else None


def rope_tables(
    positions: torch.Tensor, head_dim: int, dtype: torch.dtype, base: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary tables for integer ``positions`` ``(L,)`` -> cos, sin ``(L, head_dim // 2)``."""
    half = head_dim // 2
    inv = base ** (-torch.arange(half, device=positions.device, dtype=torch.float64) / half)
    ang = positions.to(torch.float64)[:, None] * inv[None, :]  # (L, half)
    return ang.cos().to(dtype), ang.sin().to(dtype)  # (L, half) each


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs ``(i, i + half)`` of ``x`` ``(..., hd)`` by the angles in cos/sin."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # (..., half) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., hd)


def rope_into(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """:func:`apply_rope` written into ``out`` (same shape as ``x``; any strides): no
    temporaries and no concatenation. Not for autograd (it writes in place)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    torch.mul(x1, cos, out=out[..., :half]).addcmul_(x2, sin, value=-1)
    torch.mul(x1, sin, out=out[..., half:]).addcmul_(x2, cos)
    return out


def band_mask(t: int, history: int, device: torch.device) -> torch.Tensor:
    """Boolean ``(T, T)`` mask, True where query ``i`` may attend key ``j``: i-history < j <= i."""
    i = torch.arange(t, device=device)[:, None]  # (T, 1)
    j = torch.arange(t, device=device)[None, :]  # (1, T)
    return (j <= i) & (j > i - history)  # (T, T)


class AdaLNBlock(nn.Module):
    """Pre-norm transformer block; LayerNorms modulated by the action (AdaLN-zero)."""

    def __init__(self, width: int, heads: int, head_dim: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(width, 3 * heads * head_dim)  # fused q, k, v
        self.proj = nn.Linear(heads * head_dim, width)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, width))
        self.drop = nn.Dropout(dropout)
        self.modulation = nn.Linear(width, 6 * width)  # zero-initialised by the predictor
        self._packed: tuple | None = None  # (key, oneDNN-packed weights) for CPU inference

    def packed_weights(self, like: torch.Tensor) -> list[torch.Tensor] | None:
        """oneDNN-packed copies of the block's linear weights for inference on ``like``'s
        device and dtype, or None where that path does not apply (autograd, dropout, not a
        float32 CPU tensor, a small block, no oneDNN). Repacked when a weight is replaced or
        changed in place (optimiser steps, ``load_state_dict``, ``.to()`` move its data pointer
        or version counter); a write through ``weight.data`` bypasses the counter, so call
        ``drop_packed()`` after one."""
        fc1 = self.mlp[0]
        if (torch.is_grad_enabled() or (self.training and self.drop.p > 0) or like.device.type != "cpu"
                or like.dtype != torch.float32 or fc1.in_features * fc1.out_features < PACKED_MIN_WEIGHTS
                or not onednn_linear_ok()):
            return None
        mods = self._linears()
        # inference tensors (a model built under inference_mode) have no version counter
        key = tuple((m.weight.data_ptr(), -1 if m.weight.is_inference() else m.weight._version, m.weight.dtype)
                    for m in mods)
        packed = self._packed
        if packed is None or packed[0] != key:
            packed = (key, [torch.ops.mkldnn._reorder_linear_weight(m.weight.detach(), None) for m in mods])
            self._packed = packed
        return packed[1]

    def __getstate__(self) -> dict:
        """Copies and pickles leave the packed weights behind (opaque oneDNN tensors cannot be
        copied or saved; the next rollout packs again)."""
        state = dict(super().__getstate__())
        state["_packed"] = None
        return state

    def drop_packed(self) -> None:
        """Forget the packed weights (after writing to a weight through ``.data``)."""
        self._packed = None

    def _linears(self) -> tuple[nn.Linear, ...]:
        return self.qkv, self.proj, self.mlp[0], self.mlp[2], self.modulation

    def _linear(self, i: int, x: torch.Tensor, packed: list[torch.Tensor] | None, gelu: bool = False) -> torch.Tensor:
        """Linear ``i`` of (qkv, proj, mlp[0], mlp[2], modulation) on ``x`` ``(..., in)``, GELU
        fused if asked: oneDNN's packed kernel when ``packed`` is given (the same product, about
        15% faster on this CPU at planning sizes), else the module."""
        m = self._linears()[i]
        if packed is None:
            y = m(x)
            return F.gelu(y) if gelu else y
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), packed[i], m.bias,
                                               "gelu" if gelu else "none", [], "none" if gelu else "")
        return y.view(*x.shape[:-1], y.shape[-1])  # 2-D in and out, as the probe checked

    def modulations(self, c: torch.Tensor, packed: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Action embedding ``(..., W)`` -> stacked (shift, scale, gate) x 2 ``(..., 6W)``."""
        return self._linear(4, F.silu(c), packed)  # (..., 6W)

    def _attn_in(
        self, x: torch.Tensor, mod: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
        packed: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Modulated pre-norm, fused projection and RoPE: ``(..., W)`` -> q, k, v ``(..., h, hd)``.

        ``cos``/``sin`` must broadcast against ``(..., 2, h, hd / 2)``.
        """
        qkv = self._qkv(x, mod, packed)  # (..., 3, h, hd)
        q, k = apply_rope(qkv[..., :2, :, :], cos, sin).unbind(-3)  # (..., h, hd) each
        return q, k, qkv[..., 2, :, :]

    def _qkv(self, x: torch.Tensor, mod: torch.Tensor, packed: list[torch.Tensor] | None) -> torch.Tensor:
        """Modulated pre-norm and the fused projection: ``(..., W)`` -> ``(..., 3, h, hd)``."""
        w = x.shape[-1]
        h = self.norm1(x) * (1 + mod[..., w : 2 * w]) + mod[..., :w]  # (..., W)
        return self._linear(0, h, packed).unflatten(-1, (3, self.heads, self.head_dim))

    def _attn_out_and_mlp(
        self, x: torch.Tensor, att: torch.Tensor, mod: torch.Tensor, packed: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Gated residuals: attention output ``(..., h*hd)`` then the modulated MLP."""
        w = x.shape[-1]
        gate1, shift2 = mod[..., 2 * w : 3 * w], mod[..., 3 * w : 4 * w]
        scale2, gate2 = mod[..., 4 * w : 5 * w], mod[..., 5 * w : 6 * w]
        x = x + gate1 * self.drop(self._linear(1, att, packed))  # (..., W)
        h = self.norm2(x) * (1 + scale2) + shift2  # (..., W)
        y = self.mlp(h) if packed is None else self._linear(3, self._linear(2, h, packed, gelu=True), packed)
        return x + gate2 * self.drop(y)  # (..., W)

    def forward(
        self,
        x: torch.Tensor,
        mod: torch.Tensor,
        mask: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whole sequence: x ``(B, T, W)``, mod ``(B, T, 6W)``, mask ``(T, T)``, cos/sin
        ``(T, hd/2)`` -> (x ``(B, T, W)``, k ``(B, h, T, hd)``, v ``(B, h, T, hd)``)."""
        b, t, _ = x.shape
        cs, sn = cos[:, None, None], sin[:, None, None]  # (T, 1, 1, hd/2)
        q, k, v = (y.transpose(1, 2) for y in self._attn_in(x, mod, cs, sn))  # (B, h, T, hd)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, T, hd)
        att = att.transpose(1, 2).reshape(b, t, -1)  # (B, T, h*hd)
        return self._attn_out_and_mlp(x, att, mod), k, v

    def step(
        self,
        x: torch.Tensor,
        mod: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: "LayerCache",
        packed: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """One new token per sample: x ``(B, S, W)``, mod ``(B, S, 6W)``, cos/sin ``(hd/2,)``.

        Writes the token's key/value into ``cache`` and attends to the last ``history``
        tokens: the shared history part ``(B, h, P, hd)`` (never expanded over S) and the
        per-sample imagined part ``(B, G, S, h * hd)``. ``packed``: this block's
        :meth:`packed_weights`, looked up once per rollout by the caller.
        """
        b, s, _ = x.shape
        nh, hd = self.heads, self.head_dim
        if cache.grad:
            q, k, v = self._attn_in(x, mod, cos, sin, packed)  # (B, S, h, hd) each
            cache.append(k, v)
        else:  # RoPE writes the key straight into the cache's slot
            qkv = self._qkv(x, mod, packed)  # (B, S, 3, h, hd)
            k_slot, v_slot = cache.reserve()  # (B, S, h, hd) views of the cache's next slot
            q = rope_into(qkv[:, :, 0], cos, sin, torch.empty_like(k_slot))  # (B, S, h, hd)
            rope_into(qkv[:, :, 1], cos, sin, k_slot)
            v_slot.copy_(qkv[:, :, 2])
        kp, vp, kg, vg = cache.window()  # (B, h, P, hd) x2, (B, G, S, h*hd) x2
        g, npre = kg.shape[1], kp.shape[2]
        # imagined part, step-major: each of the G cached steps is one contiguous (S, h*hd) slab
        sg = (q.unsqueeze(1) * kg.view(b, g, s, nh, hd)).sum(-1)  # (B, G, S, h); q read in place, no copy
        if npre > 0:
            sp = torch.einsum("bshd,bhpd->bpsh", q, kp)  # (B, P, S, h): one matmul per (b, h)
            sg = torch.cat((sp, sg), dim=1)  # (B, P+G, S, h)
        p = torch.softmax(sg / math.sqrt(hd), dim=1)  # (B, P+G, S, h)
        pg, vv = p[:, npre:, :, :, None], vg.view(b, g, s, nh, hd)  # (B, G, S, h, 1), (B, G, S, h, hd)
        att = pg[:, 0] * vv[:, 0]  # (B, S, h, hd); then accumulate in place: no (B, G, S, h, hd) temporary
        for j in range(1, g):
            att.addcmul_(pg[:, j], vv[:, j])
        if npre > 0:
            att.add_(torch.einsum("bpsh,bhpd->bshd", p[:, :npre], vp))  # (B, S, h, hd)
        return self._attn_out_and_mlp(x, att.flatten(-2), mod, packed)  # (B, S, W)


class LayerCache:
    """Keys/values of one layer during a rollout: shared history part + imagined part.

    The history part ``(B, h, P, hd)`` holds the last ``history - 1`` history tokens, once
    per batch row. Without autograd the imagined part is a buffer preallocated as
    ``(B, H, S, h * hd)`` (step-major, heads flattened: each step's keys are one contiguous
    slab, which :meth:`reserve` hands out for RoPE to write into, and a window of steps is one
    contiguous block for the broadcast products in :meth:`AdaLNBlock.step`); with autograd
    (gradient-based planners differentiate through ``rollout``) in-place writes would
    invalidate saved tensors, so :meth:`append` keeps the entries in a list and the window is
    stacked from its last ``history`` entries.
    """

    def __init__(self, kp: torch.Tensor, vp: torch.Tensor, s: int, horizon: int, history: int):
        b, h, _, hd = kp.shape
        self.kp, self.vp, self.history, self.n = kp, vp, history, 0
        self.grad = torch.is_grad_enabled()
        self.ks: list[torch.Tensor] = []  # with autograd: (B, S, h*hd) per imagined token
        self.vs: list[torch.Tensor] = []
        if not self.grad:
            self.kg = kp.new_empty(b, horizon, s, h * hd)  # (B, H, S, h*hd)
            self.vg = vp.new_empty(b, horizon, s, h * hd)  # (B, H, S, h*hd)

    def reserve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Without autograd: the next token's key and value slots, ``(B, S, h, hd)`` views."""
        self.n += 1
        b, _, s, _ = self.kg.shape
        shape = (b, s, self.kp.shape[1], self.kp.shape[3])
        return self.kg[:, self.n - 1].view(shape), self.vg[:, self.n - 1].view(shape)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """With autograd: add the next token's ``(B, S, h, hd)`` key and value."""
        self.n += 1
        drop = max(0, len(self.ks) - (self.history - 1))  # keep history - 1 old ones
        self.ks = self.ks[drop:] + [k.flatten(-2)]  # (B, S, h*hd) each
        self.vs = self.vs[drop:] + [v.flatten(-2)]

    def window(self) -> tuple[torch.Tensor, ...]:
        """The attention window after the newest token: (history part, imagined part)."""
        g = min(self.n, self.history)  # imagined tokens in the window (incl. the new one)
        if self.grad:
            kg, vg = torch.stack(self.ks, dim=1), torch.stack(self.vs, dim=1)  # (B, g, S, h*hd)
        else:
            kg = self.kg[:, self.n - g : self.n]  # (B, g, S, h*hd)
            vg = self.vg[:, self.n - g : self.n]  # (B, g, S, h*hd)
        p = min(self.kp.shape[2], self.history - g)  # history tokens still in the window
        lo = self.kp.shape[2] - p
        return self.kp[:, :, lo:], self.vp[:, :, lo:], kg, vg  # (B, h, p, hd) x2, kg, vg
