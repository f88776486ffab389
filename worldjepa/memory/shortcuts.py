"""Edges the world model judges reachable: shortcuts between remembered places.

The map's edges come from temporal adjacency: what the recordings did. Two landmarks close in
the latent that no recorded episode happened to join stay unlinked, and a sparse exploration
leaves many such gaps. :func:`judge_shortcuts` asks the world model instead: from landmark
``u`` (its embedding as the whole context, the agent at rest), does a short plan reach
landmark ``v``? For each landmark, its ``neighbours`` nearest landmarks within ``max_dist``
radii that have no edge from it yet are candidates; CEM searches ``horizon`` macro-actions
toward each candidate (all candidates of a batch in one search), and the edge is kept when the
best plan's imagined embeddings come within ``reach`` (the map's radius) of ``v``, weighted by
the env steps of the first macro-step that does. What the model believes blocked (a wall
between two places close in the latent) stays unlinked; an edge the model got wrong fails in
execution and is penalised like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .graph import _sq_dists

__all__ = ["judge_shortcuts"]


@torch.no_grad()
def judge_shortcuts(model: Any, marks: np.ndarray, edges: np.ndarray, radius: float, low: np.ndarray,
                    high: np.ndarray, *, neighbours: int = 5, max_dist: float = 3.0, horizon: int = 3,
                    samples: int = 64, iterations: int = 5, batch: int = 256,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """New edges ``(E', 2)`` between landmarks (indices into ``marks``), their weights ``(E',)``
    in env steps, and how many candidates were judged.

    Args:
        model: the world model whose latent ``marks`` ``(K, D)`` live in (``rollout``,
            ``frameskip``, ``action_dim``).
        edges: ``(E, 2)`` the edges the map has already (never proposed again).
        radius: the map's landmark radius: a plan reaching within it of ``v`` reaches ``v``.
        low, high: ``(A,)`` the env's action bounds.
        neighbours, max_dist: candidates per landmark, and how far (in radii) they may be.
        horizon, samples, iterations: the CEM search of each candidate (macro-steps).
        batch: candidates searched together.
    """
    from ..planning import LatentCost, make_planner

    marks = np.asarray(marks, np.float32)
    K = len(marks)
    if K < 2 or neighbours < 1:
        return np.zeros((0, 2), np.int64), np.zeros(0), 0
    k = int(model.frameskip)
    have = {(int(u), int(v)) for u, v in np.asarray(edges).reshape(-1, 2)}
    d2 = _sq_dists(marks, marks)  # (K, K)
    np.fill_diagonal(d2, np.inf)
    near = np.argsort(d2, axis=1)[:, :neighbours]  # (K, n)
    cand = [(u, int(v)) for u in range(K) for v in near[u]
            if d2[u, v] <= (max_dist * radius) ** 2 and (u, int(v)) not in have]
    if not cand:
        return np.zeros((0, 2), np.int64), np.zeros(0), 0
    device = next(model.parameters()).device
    lo = torch.as_tensor(np.tile(np.asarray(low, np.float32), k))  # (k*A,)
    hi = torch.as_tensor(np.tile(np.asarray(high, np.float32), k))
    planner = make_planner("cem", low=lo, high=hi, horizon=horizon, samples=samples, iterations=iterations,
                           elites=max(2, samples // 8), seed=seed)
    z = torch.as_tensor(marks, device=device)
    kept, weights = [], []
    for i in range(0, len(cand), batch):
        pairs = np.asarray(cand[i:i + batch])  # (B, 2)
        ctx = z[torch.as_tensor(pairs[:, 0])][:, None]  # (B, 1, D): the landmark as the whole context
        goal = z[torch.as_tensor(pairs[:, 1])]  # (B, D)
        cost = LatentCost(model, goal, ctx, ctx.new_zeros(len(pairs), 0, k * len(low)))
        best = planner.plan(cost, batch=len(pairs)).actions  # (B, H, k*A)
        path = model.rollout(ctx, ctx.new_zeros(len(pairs), 0, k * len(low)), best[:, None].to(device))[:, 0]
        dist = torch.linalg.vector_norm(path - goal[:, None], dim=-1).cpu().numpy()  # (B, H)
        hit = dist < radius
        for (u, v), row in zip(pairs, hit):
            if row.any():
                kept.append((int(u), int(v)))
                weights.append(float(k * (int(np.argmax(row)) + 1)))
    return np.asarray(kept, np.int64).reshape(-1, 2), np.asarray(weights, np.float64), len(cand)
