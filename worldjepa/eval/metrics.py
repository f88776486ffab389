"""Success rates with confidence intervals, and the summary of a set of evaluation episodes."""

from __future__ import annotations

import math
from typing import Any, Sequence


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a binomial proportion (well behaved at 0% and 100%)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, round(center - half, 12)), min(1.0, round(center + half, 12)))


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
