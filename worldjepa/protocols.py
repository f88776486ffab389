"""The contracts between modules, written once.

Axis order everywhere: ``B`` batch (or parallel environments), ``T`` time, ``S`` planner
samples, ``H`` planning horizon, ``A`` action dimension, ``D`` embedding dimension.
Frames are ``(..., 3, H, W)`` float tensors in [0, 1] inside models and ``(H, W, 3)`` uint8
arrays at the boundary with environments and datasets.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Pixels to embedding: ``(B, 3, H, W)`` float in [0, 1] -> ``(B, D)``."""

    out_dim: int

    def __call__(self, frames: Any) -> Any: ...


@runtime_checkable
class Predictor(Protocol):
    """History of embeddings and actions to the next embedding.

    ``z``: ``(B, T, D)``, ``a``: ``(B, T, A)`` -> ``(B, T, D)``, where output ``t`` is the
    prediction of ``z[t + 1]`` from ``z[: t + 1]`` and ``a[: t + 1]`` (causal).
    """

    def __call__(self, z: Any, a: Any) -> Any: ...


@runtime_checkable
class Embedder(Protocol):
    """Observations to embeddings, the perception half of a world model.

    ``encode(frames, proprio=None)``: frames ``(..., H, W, 3)`` uint8 (or ``(..., 3, H, W)``
    float in [0, 1]) and, for a model with proprioception, its values ``(..., P)`` ->
    embeddings ``(..., D)``. ``proprio_of(extras)`` picks those values ``(..., P)`` out of a
    dict of extras (``None`` for a pixels-only model). ``latent_dim`` is ``D``.
    """

    latent_dim: int

    def encode(self, frames: Any, proprio: Any = None) -> Any: ...

    def proprio_of(self, extras: dict[str, Any] | None) -> Any: ...


@runtime_checkable
class Dynamics(Protocol):
    """Imagination in embedding space, the predictive half of a world model.

    ``rollout(z_hist, a_hist, actions)``: the observed history ``(B, Th, D)``, the macro-actions
    executed between its embeddings ``(B, Th - 1, A)`` and candidate macro-action sequences
    ``(B, S, H, A)`` -> the embeddings each candidate leads to ``(B, S, H, D)`` (step ``h`` is
    the embedding after action ``h``).
    """

    def rollout(self, z_hist: Any, a_hist: Any, actions: Any) -> Any: ...


@runtime_checkable
class CostFn(Protocol):
    """Scores candidate action sequences: ``(B, S, H, A)`` -> ``(B, S)`` (lower is better)."""

    def __call__(self, actions: Any) -> Any: ...


@runtime_checkable
class Planner(Protocol):
    """Searches action sequences that minimise a cost.

    ``plan(cost_fn, init)`` takes a :class:`CostFn` and an initial guess ``(B, H, A)``
    (a warm start, or zeros) and returns an object with ``actions`` ``(B, H, A)`` and
    ``cost`` ``(B,)``. Bounds, sample counts and seeds are set at construction.
    """

    def plan(self, cost_fn: CostFn, init: Any) -> Any: ...


@runtime_checkable
class Policy(Protocol):
    """A goal-conditioned policy, the only thing the evaluation protocol needs.

    ``reset(goal_obs)`` receives the goal frame ``(H, W, 3)`` uint8 (and, for reference
    policies that read the true state, may receive ``goal_state`` as a keyword);
    ``act(obs)`` receives the current frame ``(H, W, 3)`` uint8 and returns an action
    ``np.ndarray`` of the env's action shape. Optionally ``reseed(episode: int)``: seed any
    randomness of the policy for evaluation episode ``episode``, which the protocol calls before
    each ``reset`` so that an episode plays the same in any order or worker process.
    """

    def reset(self, goal_obs: np.ndarray, **info: Any) -> None: ...

    def act(self, obs: np.ndarray, **info: Any) -> np.ndarray: ...
