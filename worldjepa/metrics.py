"""Pure metrics: success rates with confidence intervals, and probes of embeddings.

No I/O and no model code, so every layer may use them. Probes take numpy or torch inputs
(torch loads inside the functions), work on the CPU in float64 and are deterministic:

- :func:`wilson_interval`, :func:`summarize`: success rate and its 95% CI over episodes;
- :func:`mcnemar_exact`, :func:`paired_comparison`: two policies on their shared pairs;
- :func:`mean_interval`: a mean and its 95% t-interval (e.g. an accuracy averaged over streams);
- :func:`mean_relative_accuracy`: VSI-Bench's score of a numerical answer (counts);
- :func:`boundary_f1`: precision, recall and F1 of detected event boundaries within a tolerance;
- :func:`linear_r2`: ridge regression from embeddings to targets (e.g. the agent's
  position), fitted on one set and scored (R^2 per target and mean) on another;
- :func:`linear_accuracy`: a multinomial logistic-regression probe on labels;
- :func:`knn_accuracy`: k-nearest-neighbour classification (cosine similarity);
- :func:`rankme`: the effective rank of embeddings (RankMe, Garrido et al. 2023):
  ``exp(entropy(singular values / sum))``, between 1 (collapsed) and ``min(N, D)``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .errors import WorldJepaError

__all__ = ["boundary_f1", "knn_accuracy", "linear_accuracy", "linear_r2", "mcnemar_exact", "mean_interval",
           "mean_relative_accuracy", "paired_comparison", "rankme", "summarize", "wilson_interval"]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (well behaved at 0% and 100%)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, round(center - half, 12)), min(1.0, round(center + half, 12)))


def mean_interval(values: Sequence[float], lo: float = -math.inf, hi: float = math.inf) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and its 95% Student-t interval, clipped to [lo, hi]
    (one value: the interval is [lo, hi])."""
    from scipy.stats import t as student_t

    v = np.asarray(values, np.float64)
    if not len(v):
        raise WorldJepaError("mean_interval of no values")
    m = float(v.mean())
    if len(v) < 2:
        return m, float(lo), float(hi)
    half = float(student_t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, float(max(lo, m - half)), float(min(hi, m + half))


def mean_relative_accuracy(pred: float, true: float) -> float:
    """VSI-Bench's mean relative accuracy of a numerical answer: the fraction of the thresholds
    theta in {0.50, 0.55, ..., 0.95} with ``|pred - true| / true < 1 - theta`` (``true > 0``)."""
    if not true > 0:
        raise WorldJepaError(f"mean relative accuracy needs a positive true value, got {true}")
    rel = abs(float(pred) - float(true)) / float(true)
    return float(np.mean([rel < 1.0 - th for th in (0.5 + 0.05 * np.arange(10)).round(2)]))


def boundary_f1(found: Sequence[int], true: Sequence[int], tol: int) -> dict[str, float]:
    """Precision, recall and F1 of ``found`` boundaries (frame indices) against ``true`` ones: each
    true boundary matches at most one found within ``tol`` frames of it (greedily, the closest
    pairs first); found ones left unmatched are false positives, true ones missed ones."""
    f, t = np.asarray(found, np.int64), np.asarray(true, np.int64)
    pairs = sorted((abs(int(a) - int(b)), i, j) for i, a in enumerate(f) for j in np.flatnonzero(np.abs(t - a) <= tol)
                   for b in [t[j]])
    used_f, used_t = set(), set()
    for _, i, j in pairs:
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(int(j))
    hits = len(used_f)
    precision = hits / len(f) if len(f) else 1.0
    recall = hits / len(t) if len(t) else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "hits": hits, "found": int(len(f)), "true": int(len(t))}


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-episode records (``success``, ``final_distance``, ``steps``)."""
    n = len(records)
    wins = [r for r in records if r["success"]]
    lo, hi = wilson_interval(len(wins), n)
    dists = [r["final_distance"] for r in records if r.get("final_distance") is not None]
    return {
        "episodes": n,
        "successes": len(wins),
        "success_rate": len(wins) / n if n else 0.0,
        "ci95": [lo, hi],
        "mean_final_distance": sum(dists) / len(dists) if dists else None,
        "mean_steps_to_success": sum(r["steps"] for r in wins) / len(wins) if wins else None,
    }


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of ``b`` pairs won only by the first policy and ``c`` only
    by the second: under "equally good", each of the ``b + c`` discordant pairs goes either way
    with probability 1/2, so ``p = min(1, 2 P[Binomial(b + c, 1/2) <= min(b, c)])``."""
    if b < 0 or c < 0:
        raise WorldJepaError(f"McNemar counts must be >= 0, got {b} and {c}")
    n, k = b + c, min(b, c)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _pair_key(r: dict[str, Any]) -> tuple:
    return r["episode"], r["start"], tuple(np.asarray(r.get("goal_state", ())).ravel().round(9).tolist())


def paired_comparison(records_a: Sequence[dict[str, Any]], records_b: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Two policies on the start/goal pairs both were evaluated on (the same episode, start and
    goal state; a pair drawn several times is matched occurrence by occurrence, in order: the
    protocol draws the same sequence for every policy, and records pooled from several runs in
    any order still meet). Returns ``shared`` pairs, ``both``/``neither`` solved, ``only_a``/``only_b``
    (the discordant pairs), and the exact McNemar ``p_value`` of "both are equally good"."""
    waiting: dict[tuple, list[bool]] = {}  # pair -> B's outcomes on it, in order
    for b in records_b:
        waiting.setdefault(_pair_key(b), []).append(bool(b["success"]))
    shared = []
    for a in records_a:
        outcomes = waiting.get(_pair_key(a))
        if outcomes:  # B's next record of this pair, if any is left
            shared.append((bool(a["success"]), outcomes.pop(0)))
    only_a = sum(a and not b for a, b in shared)
    only_b = sum(b and not a for a, b in shared)
    both = sum(a and b for a, b in shared)
    return {"shared": len(shared), "both": both, "neither": len(shared) - both - only_a - only_b,
            "only_a": only_a, "only_b": only_b, "p_value": mcnemar_exact(only_a, only_b)}


def _t(x: Any) -> Any:
    import torch

    if torch.is_tensor(x):
        return x.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(x), dtype=torch.float64)


def _check(z_train: Any, y_train: Any, z_test: Any, y_test: Any) -> None:
    """Raise WorldJepaError unless train/test pairs have matching lengths and feature dims."""
    if len(z_train) != len(y_train) or len(z_test) != len(y_test):
        raise WorldJepaError(f"probe: {len(z_train)} train embeddings vs {len(y_train)} targets, "
                             f"{len(z_test)} test embeddings vs {len(y_test)} targets")
    if len(z_train) < 2 or len(z_test) < 1:
        raise WorldJepaError(f"probe: need >= 2 train and >= 1 test samples, got {len(z_train)} and {len(z_test)}")
    if np.shape(z_train)[1:] != np.shape(z_test)[1:]:
        raise WorldJepaError(f"probe: train and test embeddings differ in shape: "
                             f"{tuple(np.shape(z_train))} vs {tuple(np.shape(z_test))}")


def _standardise(train: Any, test: Any) -> tuple[Any, Any]:
    mu, sd = train.mean(0, keepdim=True), train.std(0, keepdim=True).clamp_min(1e-8)
    return (train - mu) / sd, (test - mu) / sd


def linear_r2(z_train: Any, y_train: Any, z_test: Any, y_test: Any, ridge: float = 1e-3) -> dict[str, Any]:
    """Ridge regression ``y ~ z``; R^2 on the test set per target column and averaged.

    z: (N, D), y: (N, K). Features are standardised on the training set; ``ridge`` is
    relative to the number of training samples.
    """
    _check(z_train, y_train, z_test, y_test)
    import torch

    zt, zs = _standardise(_t(z_train), _t(z_test))
    yt, ys = _t(y_train), _t(y_test)
    if yt.ndim == 1:
        yt, ys = yt[:, None], ys[:, None]
    X = torch.cat([zt, torch.ones(len(zt), 1, dtype=zt.dtype)], 1)  # (N, D + 1)
    Xs = torch.cat([zs, torch.ones(len(zs), 1, dtype=zs.dtype)], 1)
    reg = ridge * len(X) * torch.eye(X.shape[1], dtype=X.dtype)
    reg[-1, -1] = 0.0  # no penalty on the bias
    W = torch.linalg.solve(X.T @ X + reg, X.T @ yt)  # (D + 1, K)
    pred = Xs @ W
    ss_res = ((ys - pred) ** 2).sum(0)
    ss_tot = ((ys - ys.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    r2 = 1.0 - ss_res / ss_tot  # (K,)
    return {"r2": float(r2.mean()), "r2_per_target": r2.tolist()}


def linear_accuracy(z_train: Any, labels_train: Any, z_test: Any, labels_test: Any, steps: int = 300,
                    weight_decay: float = 1e-4) -> float:
    """Accuracy of a logistic-regression probe (full-batch L-BFGS on standardised features)."""
    _check(z_train, labels_train, z_test, labels_test)
    import torch

    zt, zs = _standardise(_t(z_train), _t(z_test))
    yt = torch.as_tensor(np.asarray(labels_train), dtype=torch.long)
    ys = torch.as_tensor(np.asarray(labels_test), dtype=torch.long)
    n_cls = int(max(yt.max(), ys.max())) + 1
    lin = torch.nn.Linear(zt.shape[1], n_cls, dtype=torch.float64)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(zt), yt) + weight_decay * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(zs).argmax(1) == ys).double().mean())


def knn_accuracy(z_train: Any, labels_train: Any, z_test: Any, labels_test: Any, k: int = 20) -> float:
    """k-NN accuracy with cosine similarity and a majority vote."""
    _check(z_train, labels_train, z_test, labels_test)
    import torch

    zt = torch.nn.functional.normalize(_t(z_train), dim=1)
    zs = torch.nn.functional.normalize(_t(z_test), dim=1)
    yt = torch.as_tensor(np.asarray(labels_train), dtype=torch.long)
    ys = torch.as_tensor(np.asarray(labels_test), dtype=torch.long)
    idx = (zs @ zt.T).topk(min(k, len(zt)), dim=1).indices  # (Ns, k)
    votes = torch.nn.functional.one_hot(yt[idx], int(yt.max()) + 1).sum(1)  # (Ns, C)
    return float((votes.argmax(1) == ys).double().mean())


def rankme(z: Any, eps: float = 1e-7, center: bool = False) -> float:
    """Effective rank of (N, D) embeddings: 1 means collapsed to a line, D means full use.

    ``center=True`` removes the mean embedding first, so a constant offset (which carries
    no information, and dominates the spectrum of an encoder without output normalisation)
    does not count as one used dimension; a constant batch then has rank ~0 -> reported 1.
    """
    import torch

    x = _t(z)
    if center:
        x = x - x.mean(0, keepdim=True)
    s = torch.linalg.svdvals(x)
    p = s / s.sum().clamp_min(eps) + eps
    return float(torch.exp(-(p * p.log()).sum()))
