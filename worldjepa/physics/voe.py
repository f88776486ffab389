"""Violation of expectation: matched pairs of clips, identical until an event, then possible or not.

    from worldjepa.physics.voe import generate_pairs
    pairs = generate_pairs("worldjepa/TwoRoom-v0", per_kind=20, size=64, seed=0)

Each :class:`Pair` holds two clips made by the env's own physics and renderer, driven by
the same recorded actions. They are identical frame for frame before the event step; from
there the possible clip follows the env's physics, the impossible one breaks one rule:

* ``teleport``: the object jumps to a far point, then moves on normally;
* ``solidity``: the object passes through a wall (its twin is stopped by it; Push-T: the
  pusher passes through the block, which its twin pushes);
* ``permanence``: the object vanishes while in view;
* ``continuity``: the object's velocity changes with nothing touching it (for an agent that
  moves by its actions, it moves against them; with inertia, its velocity flips);
* ``colour``: the object changes colour (constancy);
* ``gravity``: one ball's gravity reverses (``worldjepa/Balls-v0``);
* ``collision``: two balls pass through each other instead of bouncing (``worldjepa/Balls-v0``).

The impossible clip is the state edited at the event (teleport, continuity), the physics
edited (solidity: the wall removed from the physics, not from the picture; gravity;
collision) or the frame edited (permanence, colour). Which envs have which violations:
:data:`~worldjepa.physics.scenes.SCENES` (TwoRoom and PointMaze in
:mod:`~worldjepa.physics.scenes`, Reacher in :mod:`~worldjepa.physics.reacher`, Push-T in
:mod:`~worldjepa.physics.pusht`, Balls in :mod:`~worldjepa.physics.balls`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import WorldJepaError
from .scenes import SCENES, Retry

VIOLATIONS: dict[str, str] = {
    "teleport": "the object jumps to a far point (teleportation)",
    "solidity": "the object passes through a wall (Push-T: the pusher through the block)",
    "permanence": "the object vanishes while in view",
    "continuity": "the velocity changes without contact (inertia)",
    "colour": "the object changes colour (constancy)",
    "gravity": "gravity reverses for one ball",
    "collision": "two balls pass through each other",
}
"""Every violation type, and what the impossible clip shows."""


@dataclass
class Pair:
    """A possible and an impossible clip, identical before ``event``.

    Attributes:
        kind: the violation (a key of :data:`VIOLATIONS`).
        possible, impossible: ``(T, S, S, 3)`` uint8 frames at the env's step rate.
        actions: ``(T - 1, A)`` float32, executed in both (``actions[t]`` between frame ``t`` and ``t + 1``).
        event: the first env step whose frames differ.
        states: ``(T, N)`` and ``(T, N)``: the env states behind each clip (what was drawn,
            before any frame edit).
        seed: the seed the pair was drawn from (``generate_pairs`` with it makes it again).
    """

    kind: str
    possible: np.ndarray
    impossible: np.ndarray
    actions: np.ndarray
    event: int
    states: tuple[np.ndarray, np.ndarray] = field(repr=False)
    seed: int = 0


def render(env: Any, states: np.ndarray) -> np.ndarray:
    """``(T, S, S, 3)`` uint8 frames of ``states``."""
    return np.stack([env.render_state(s) for s in states])


def make_pair(scene: Any, kind: str, seed: int, before: int, after: int, attempts: int = 200) -> Pair:
    """One pair of violation ``kind`` from ``scene``, drawn from ``seed``: the event at an env step
    in ``[before, before + after // 2]`` and at least ``after`` steps after it."""
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        event = int(rng.integers(before, before + after // 2 + 1))
        try:
            clips = getattr(scene, kind)(rng, event, event + after)
        except Retry:
            continue
        possible = render(scene.env, clips.possible)
        impossible = render(scene.env, clips.impossible)
        if clips.edit is not None:
            for t in range(clips.edit_from, len(impossible)):
                impossible[t] = clips.edit(t, clips.impossible[t], impossible[t])
        differ = np.flatnonzero((possible != impossible).reshape(len(possible), -1).any(1))
        if not len(differ) or not before <= differ[0] <= len(possible) - after:
            continue  # the violation happened too early or too late to be judged (or not at all)
        return Pair(kind, possible, impossible, np.asarray(clips.actions, np.float32), int(differ[0]),
                    (clips.possible, clips.impossible), seed)
    raise WorldJepaError(f"{type(scene).__name__}: could not draw a clean {kind!r} pair in {attempts} attempts "
                         f"(seed {seed}); try a longer clip")


def scene_for(env_id: str, size: int, **env_kwargs: Any) -> Any:
    """The scene (the violations an env can show) of ``env_id`` rendering ``size`` pixel frames."""
    where = next((n for prefix, n in SCENES.items() if env_id.startswith(prefix)), None)
    if where is None:
        raise WorldJepaError(f"no violation-of-expectation scenes for {env_id} yet; they exist for "
                             f"{', '.join(p + ('' if p.endswith('-v0') else '*') for p in SCENES)}")
    import importlib

    from ..envs.adapter import make_env

    module, name = where.split(":")
    env = make_env(env_id, size, **env_kwargs).unwrapped
    return getattr(importlib.import_module(module), name)(env)


def generate_pairs(env_id: str, per_kind: int, size: int = 64, seed: int = 0, kinds: list[str] | None = None,
                   before: int = 16, after: int = 16, **env_kwargs: Any) -> list[Pair]:
    """``per_kind`` pairs of each violation ``kinds`` (default: all the env's scene can show).

    Pair ``i`` of kind ``j`` is drawn from seed ``seed * 1000003 + 1000 * j + i``: the same
    arguments give the same pairs. Clips are ``before + after`` to ``before + after // 2 +
    after`` frames long, the event at least ``before`` steps in.
    """
    scene = scene_for(env_id, size, **env_kwargs)
    kinds = list(scene.kinds if kinds is None else kinds)
    unknown = [k for k in kinds if k not in scene.kinds]
    if unknown:
        raise WorldJepaError(f"{env_id} cannot show {', '.join(unknown)}; its violations: {', '.join(scene.kinds)}")
    if per_kind < 1 or before < 1 or after < 2:
        raise WorldJepaError(f"need per_kind >= 1, before >= 1 and after >= 2, got {per_kind}, {before}, {after}")
    return [make_pair(scene, kind, seed * 1000003 + 1000 * VIOLATION_INDEX[kind] + i, before, after)
            for kind in kinds for i in range(per_kind)]


VIOLATION_INDEX = {k: i for i, k in enumerate(VIOLATIONS)}

__all__ = ["Pair", "VIOLATIONS", "generate_pairs", "make_pair", "render", "scene_for"]
