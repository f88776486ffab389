"""Collection policies: how the recordings explore.

A collection policy is made per episode by a factory ``(env: FrameEnv, rng) -> policy`` and
answers ``act(frame, extras) -> float32 action vector (A,)``. ``random`` draws uniformly in
the action bounds; ``smooth`` follows an Ornstein-Uhlenbeck process (a random walk pulled
back to zero), which gives the long, varied trajectories that world models learn from.
Environments may add their own (``expert`` for Push-T).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ConfigError


def random_action(spec: Any, rng: np.random.Generator) -> np.ndarray:
    """A uniform action vector in the bounds of ``spec`` (a uniform one-hot for discrete spaces)."""
    if spec.kind == "discrete":
        v = np.zeros(spec.dim, np.float32)
        v[rng.integers(spec.dim)] = 1.0
        return v
    return rng.uniform(spec.low, spec.high).astype(np.float32)


class RandomPolicy:
    """Uniform random actions in the bounds (one-hot of a uniform choice for discrete spaces)."""

    def __init__(self, env: Any, rng: np.random.Generator) -> None:
        self.spec = env.action_spec
        self.rng = rng

    def act(self, frame: np.ndarray, extras: dict[str, np.ndarray]) -> np.ndarray:
        return random_action(self.spec, self.rng)


class SmoothPolicy:
    """Ornstein-Uhlenbeck exploration: ``x <- x + theta (0 - x) + sigma N(0, 1)``, clipped.

    In units of the half-range of each action dimension; ``theta`` sets how fast the walk
    forgets (0.15: a correlation time of ~7 steps) and ``sigma`` its step size. For discrete
    spaces the OU state over the ``n`` logits picks the argmax, so choices persist.
    """

    def __init__(self, env: Any, rng: np.random.Generator, theta: float = 0.15, sigma: float = 0.35) -> None:
        self.spec = env.action_spec
        self.rng = rng
        self.theta, self.sigma = theta, sigma
        self.low = np.asarray(self.spec.low, np.float64)
        self.high = np.asarray(self.spec.high, np.float64)
        self.x = rng.uniform(-1.0, 1.0, self.spec.dim)

    def act(self, frame: np.ndarray, extras: dict[str, np.ndarray]) -> np.ndarray:
        self.x = self.x - self.theta * self.x + self.sigma * self.rng.standard_normal(self.spec.dim)
        self.x = np.clip(self.x, -1.0, 1.0)
        if self.spec.kind == "discrete":
            v = np.zeros(self.spec.dim, np.float32)
            v[int(np.argmax(self.x + 0.5 * self.rng.standard_normal(self.spec.dim)))] = 1.0
            return v
        mid, half = (self.high + self.low) / 2, (self.high - self.low) / 2
        return (mid + half * self.x).astype(np.float32)


def _pusht_expert(env: Any, rng: np.random.Generator) -> Any:
    from ..envs.pusht import PushTExpert

    if not env.env_id.startswith("worldjepa/PushT"):
        raise ConfigError(f"policy 'expert' is only available for worldjepa/PushT-v1 and -v0, not {env.env_id}")
    expert = PushTExpert(env.unwrapped, rng)

    class _Adapter:
        def act(self, frame: np.ndarray, extras: dict[str, np.ndarray]) -> np.ndarray:
            return np.asarray(expert.act(extras.get("obs"), {"state": extras.get("state")}), np.float32)

    return _Adapter()


POLICIES: dict[str, Callable[..., Any]] = {
    "random": RandomPolicy,
    "smooth": SmoothPolicy,
    "expert": _pusht_expert,
}


def make_policy(name: str, env: Any, rng: np.random.Generator) -> Any:
    """The collection policy ``name`` for one episode of ``env``."""
    if name not in POLICIES:
        raise ConfigError(f"unknown collection policy {name!r}; choose one of {', '.join(POLICIES)}")
    return POLICIES[name](env, rng)
