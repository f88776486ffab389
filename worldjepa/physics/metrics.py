"""Scores of violation-of-expectation pairs: is the impossible clip the more surprising one?

A clip's score is its surprise after the event (the max or the mean over the model steps
that end at or after the event step: the steps that can see it). Two numbers per violation:

* **pairwise accuracy**: the fraction of pairs whose impossible clip scores above its own
  possible twin (a tie counts one half; chance is 0.5). Twins share everything before the
  event, so this is the IntPhys / V-JEPA "relative" test;
* **AUROC**: the probability that an impossible clip scores above a possible one drawn from
  any pair (ties one half): a single surprise threshold's quality across scenes.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Reduce = Literal["max", "mean"]


def after_event(surprise: np.ndarray, steps: np.ndarray, event: int, how: Reduce = "max") -> float:
    """The ``how`` of ``surprise`` over the model steps ending at env step ``>= event`` (nan if none)."""
    s = np.asarray(surprise, np.float64)[np.asarray(steps) >= event]
    s = s[np.isfinite(s)]
    if not len(s):
        return float("nan")
    return float(s.max() if how == "max" else s.mean())


def pairwise_accuracy(possible: np.ndarray, impossible: np.ndarray) -> float:
    """Fraction of pairs ``i`` with ``impossible[i] > possible[i]`` (ties count 1/2); ``(N,)`` each."""
    p, q = np.asarray(possible, np.float64), np.asarray(impossible, np.float64)
    if p.shape != q.shape or p.ndim != 1 or not len(p):
        raise ValueError(f"pairwise_accuracy needs two equal-length non-empty vectors, got {p.shape} and {q.shape}")
    return float(np.mean((q > p) + 0.5 * (q == p)))


def auroc(negative: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of scores separating ``positive`` from ``negative`` (the
    Mann-Whitney probability that a positive outscores a negative, ties 1/2): 1 when every
    positive is above every negative, 0.5 for identical score distributions."""
    n, p = np.asarray(negative, np.float64), np.asarray(positive, np.float64)
    if n.ndim != 1 or p.ndim != 1 or not len(n) or not len(p):
        raise ValueError(f"auroc needs two non-empty vectors, got {n.shape} and {p.shape}")
    above = p[:, None] > n[None, :]  # (P, N)
    ties = p[:, None] == n[None, :]
    return float(np.mean(above + 0.5 * ties))


def score_pairs(possible: list[np.ndarray], impossible: list[np.ndarray], steps: list[np.ndarray],
                events: list[int]) -> dict[str, float]:
    """Pairwise accuracy (max and mean after the event) and AUROC (max) of one violation's pairs:
    per pair the surprise ``(L,)`` of each clip, its ``steps`` and the event step."""
    out: dict[str, float] = {"pairs": len(events)}
    for how in ("max", "mean"):
        p = np.array([after_event(s, t, e, how) for s, t, e in zip(possible, steps, events)])
        q = np.array([after_event(s, t, e, how) for s, t, e in zip(impossible, steps, events)])
        out[f"pairwise_{how}"] = pairwise_accuracy(p, q)
        out[f"auroc_{how}"] = auroc(p, q)
    return out


__all__ = ["after_event", "auroc", "pairwise_accuracy", "score_pairs"]
