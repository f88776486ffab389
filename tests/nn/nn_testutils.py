"""Helpers for the nn tests (imported by name; pytest puts tests/nn on sys.path)."""

from __future__ import annotations

import torch

from worldjepa.nn import build_predictor

D, A = 6, 2

TINY = {
    "transformer": dict(preset="tiny", dropout=0.0),
    "mlp": dict(hidden=16, layers=3),
    "gru": dict(hidden=12, layers=2),
}


def make_predictor(name: str, **overrides) -> torch.nn.Module:
    """A tiny float64 predictor in eval mode with every weight redrawn at unit gain (no block
    is the identity, attention is far from uniform), so every input can reach the output."""
    torch.manual_seed(0)
    m = build_predictor(name, dim=D, action_dim=A, **{**TINY[name], **overrides})
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, p.shape[1] ** -0.5)
            elif bool((p == 0).all()):
                p.normal_(0.0, 0.3)
    return m.double().eval()


def naive_rollout(m, z_hist, a_hist, actions) -> torch.Tensor:
    """Reference imagination: re-run ``forward`` on the whole growing sequence each step."""
    b, th, d = z_hist.shape
    _, s, h, a_dim = actions.shape
    z = z_hist[:, None].expand(b, s, th, d).reshape(b * s, th, d)  # (B*S, Th, D)
    a = a_hist[:, None].expand(b, s, th - 1, a_dim).reshape(b * s, th - 1, a_dim)
    acts = actions.reshape(b * s, h, a_dim)
    preds = []
    for k in range(h):
        a_seq = torch.cat((a, acts[:, : k + 1]), dim=1)  # (B*S, Th+k, A)
        nxt = m(z, a_seq)[:, -1]  # (B*S, D)
        preds.append(nxt)
        z = torch.cat((z, nxt[:, None]), dim=1)
    return torch.stack(preds, dim=1).view(b, s, h, d)

