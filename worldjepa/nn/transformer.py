"""Causal transformer predictor with AdaLN-zero action conditioning and a sliding window.

Token ``t`` is the embedding ``z[t]``; the action ``a[t]`` conditions it through AdaLN-zero
(per block: shift, scale and gate for attention and for the MLP, from a zero-initialised
linear on the action embedding, so every block starts as the identity). Attention is
band-causal: in every layer token ``t`` sees tokens ``t - history + 1 .. t``; positions are
rotary, so a token's cached keys/values stay valid when the window slides. Stacking
``depth`` layers, an output can depend on up to ``depth * (history - 1) + 1`` past tokens.

Predictions are direct (as in LeWM): output ``t`` *is* the predicted ``z[t + 1]``
(``final LayerNorm -> Linear(width, dim)``), not a residual added to ``z[t]``.
"""

from __future__ import annotations

import torch
from torch import nn

from worldjepa.nn._checks import check_rollout, check_shape, init_weights
from worldjepa.nn.adaln import AdaLNBlock, LayerCache, band_mask, rope_tables
from worldjepa.nn.heads import ActionEncoder


class TransformerPredictor(nn.Module):
    """``forward(z (B, T, D), a (B, T, A)) -> (B, T, D)``; output ``t`` predicts ``z[t + 1]``.

    Args:
        dim: embedding size ``D`` of the inputs and outputs.
        action_dim: action size ``A``.
        depth: number of AdaLN blocks.
        heads: attention heads.
        history: attention window in tokens (the current one included), >= 1.
        mlp_ratio: MLP hidden size as a multiple of ``width`` (ignored if ``mlp_dim`` set).
        dropout: dropout on the attention and MLP residual branches (training only).
        width: token width inside the transformer (default ``dim``).
        head_dim: size of each head (default ``width // heads``; must be even for RoPE).
        mlp_dim: MLP hidden size (default ``width * mlp_ratio``).
    """

    def __init__(
        self,
        dim: int,
        action_dim: int,
        depth: int = 6,
        heads: int = 4,
        history: int = 3,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        width: int | None = None,
        head_dim: int | None = None,
        mlp_dim: int | None = None,
    ):
        super().__init__()
        width = width or dim
        head_dim = head_dim or width // heads
        mlp_dim = mlp_dim or int(round(width * mlp_ratio))
        if history < 1 or depth < 1 or heads < 1:
            raise ValueError(f"need history, depth, heads >= 1, got {history}, {depth}, {heads}")
        if head_dim < 2 or head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
        self.dim, self.action_dim, self.width = dim, action_dim, width
        self.history, self.head_dim = history, head_dim
        self.in_proj = nn.Linear(dim, width)
        self.action_encoder = ActionEncoder(action_dim, width)
        self.blocks = nn.ModuleList(
            AdaLNBlock(width, heads, head_dim, mlp_dim, dropout) for _ in range(depth)
        )
        self.out_norm = nn.LayerNorm(width, eps=1e-6)
        self.out_proj = nn.Linear(width, dim)
        init_weights(self)
        for blk in self.blocks:  # AdaLN-zero: every block starts as the identity
            nn.init.zeros_(blk.modulation.weight)
            nn.init.zeros_(blk.modulation.bias)

    def _run(self, x: torch.Tensor, c: torch.Tensor, pos0: int = 0) -> tuple:
        """Blocks over a whole sequence x ``(B, T, W)``, c ``(B, T, W)`` starting at ``pos0``
        -> (x ``(B, T, W)``, per-layer keys/values, each ``(B, h, T, hd)``)."""
        t = x.shape[1]
        pos = torch.arange(pos0, pos0 + t, device=x.device)  # (T,)
        cos, sin = rope_tables(pos, self.head_dim, x.dtype)  # (T, hd/2) each
        mask = band_mask(t, self.history, x.device)  # (T, T)
        kvs = []
        for blk in self.blocks:
            x, k, v = blk(x, blk.modulations(c), mask, cos, sin)  # (B, T, W), (B, h, T, hd) x2
            kvs.append((k, v))
        return x, kvs

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Teacher-forced, causal: z ``(B, T, D)``, a ``(B, T, A)`` -> ``(B, T, D)``."""
        check_shape("z", z, ("B", "T", self.dim))
        check_shape("a", a, (z.shape[0], z.shape[1], self.action_dim))
        x = self.in_proj(z)  # (B, T, W)
        x, _ = self._run(x, self.action_encoder(a))  # (B, T, W)
        return self.out_proj(self.out_norm(x))  # (B, T, D)

    def action_input(self) -> list[torch.Tensor]:
        """The weights that read the raw action: the action encoder's first ``(W, A)`` linear."""
        return [self.action_encoder.net[0].weight]

    def rollout(
        self, z_hist: torch.Tensor, a_hist: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """Autoregressive imagination for ``S`` candidate action sequences per batch row.

        Args:
            z_hist: ``(B, Th, D)`` observed embeddings, the last one is the current state.
            a_hist: ``(B, Th - 1, A)`` actions taken between them.
            actions: ``(B, S, H, A)`` candidates; ``actions[:, :, 0]`` acts on ``z_hist[:, -1]``.

        Returns:
            ``(B, S, H, D)``: step ``k`` is the embedding after ``actions[:, :, k]``.

        The first ``Th - 1`` history tokens are run once per batch row (not per sample); their
        last ``history - 1`` keys/values per layer are broadcast over ``S``. Each imagined
        step then runs one token per sample through the blocks. Call ``.eval()`` first for
        deterministic imagination (dropout is active in training mode). Differentiable.
        """
        b, th, s, horizon = check_rollout(z_hist, a_hist, actions, self.dim, self.action_dim)
        n_keep = self.history - 1
        kv_hist: list[tuple[torch.Tensor, torch.Tensor]] = []
        if th > 1 and n_keep > 0:
            xp = self.in_proj(z_hist[:, :-1])  # (B, Th-1, W)
            _, kvs = self._run(xp, self.action_encoder(a_hist))  # kvs: (B, h, Th-1, hd)
            kv_hist = [(k[:, :, -n_keep:], v[:, :, -n_keep:]) for k, v in kvs]  # (B, h, P, hd)
        else:
            heads = self.blocks[0].heads
            empty = z_hist.new_zeros(b, heads, 0, self.head_dim)  # (B, h, 0, hd)
            kv_hist = [(empty, empty) for _ in self.blocks]
        caches = [LayerCache(k, v, s, horizon, self.history) for k, v in kv_hist]
        c = self.action_encoder(actions)  # (B, S, H, W)
        packs = [blk.packed_weights(c) for blk in self.blocks]  # oneDNN kernels for float32 CPU inference
        mods = [blk.modulations(c, pk) for blk, pk in zip(self.blocks, packs)]  # L x (B, S, H, 6W), all steps at once
        pos = torch.arange(th - 1, th - 1 + horizon, device=z_hist.device)  # (H,)
        cos, sin = rope_tables(pos, self.head_dim, z_hist.dtype)  # (H, hd/2) each
        x = self.in_proj(z_hist[:, -1:]).expand(b, s, self.width)  # (B, S, W), no copy
        out = []
        for step in range(horizon):
            for blk, mod, cache, pk in zip(self.blocks, mods, caches, packs):
                x = blk.step(x, mod[:, :, step], cos[step], sin[step], cache, pk)  # (B, S, W)
            zn = self.out_proj(self.out_norm(x))  # (B, S, D)
            out.append(zn)
            if step + 1 < horizon:
                x = self.in_proj(zn)  # (B, S, W)
        return torch.stack(out, dim=2)  # (B, S, H, D)

