"""Any Gymnasium environment as a source of fixed-size uint8 frames and float32 actions.

:func:`make_env` turns an env id (built-in, or third-party after ``--env-module`` imports
the module that registers it) into a :class:`FrameEnv`: ``reset``/``step`` return the
rendered frame resized to ``size x size`` plus the env's state (observation vector, or each
numeric entry of a Dict observation as ``obs/<key>``, ``info["state"]`` and any numeric ``info``
entries), and actions are float32 vectors
(one-hot for discrete action spaces), validated and clipped.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EnvError


def import_env_module(module: str | None) -> None:
    """Import a module whose import registers Gymnasium ids (``--env-module``): a module name
    (``my_pkg.envs``) or the path of a ``.py`` file (imported once, under its stem)."""
    if not module:
        return
    try:
        if module.endswith(".py"):
            import sys
            from pathlib import Path

            path = Path(module).resolve()
            if not path.is_file():
                raise ImportError(f"no such file {path}")
            name = f"_worldjepa_envmod_{path.stem}"
            if name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                del sys.modules[name]
                raise
        else:
            importlib.import_module(module)
    except ImportError as e:
        raise EnvError(f"--env-module {module!r} could not be imported: {e}") from None


def check_env_id(env_id: str) -> None:
    """Raise EnvError with suggestions if ``env_id`` is not registered."""
    import gymnasium as gym

    from . import register

    register()
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else " Run `worldjepa envs` to list them."
    raise EnvError(f"unknown environment id {env_id!r}.{hint} (third-party ids: pass --env-module MODULE)")


@dataclass(frozen=True)
class ActionSpec:
    """The float32 vector form of an env's action space, recorded in datasets and checkpoints."""

    kind: str  # "box" or "discrete"
    shape: tuple[int, ...]  # env action shape (box) or () (discrete)
    dim: int  # length of the float32 vector the models see
    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def from_space(cls, space: Any, env_id: str = "") -> "ActionSpec":
        from gymnasium import spaces

        if isinstance(space, spaces.Box):
            low = np.broadcast_to(space.low, space.shape).astype(np.float64).ravel()
            high = np.broadcast_to(space.high, space.shape).astype(np.float64).ravel()
            low = np.where(np.isfinite(low), low, -1.0)
            high = np.where(np.isfinite(high), high, 1.0)
            return cls("box", tuple(space.shape), int(np.prod(space.shape)), tuple(map(float, low)), tuple(map(float, high)))
        if isinstance(space, spaces.Discrete):
            n = int(space.n)
            return cls("discrete", (), n, (0.0,) * n, (1.0,) * n)
        raise EnvError(f"{env_id}: action space {space} is not supported (Box or Discrete only)")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape), "dim": self.dim, "low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ActionSpec":
        return cls(d["kind"], tuple(d["shape"]), int(d["dim"]), tuple(d["low"]), tuple(d["high"]))

    def encode(self, action: Any) -> np.ndarray:
        """Env action -> float32 vector (dim,)."""
        if self.kind == "discrete":
            v = np.zeros(self.dim, np.float32)
            v[int(action)] = 1.0
            return v
        return np.asarray(action, np.float32).reshape(self.dim)

    def decode(self, vec: np.ndarray) -> Any:
        """float32 vector (dim,) -> env action (clipped to the bounds)."""
        if self.kind == "discrete":
            return int(np.argmax(vec))
        low, high = np.asarray(self.low), np.asarray(self.high)
        return np.clip(np.asarray(vec, np.float32).reshape(self.dim), low, high).astype(np.float32).reshape(self.shape)


def _step_extras(reward: Any, terminated: Any, truncated: Any) -> dict[str, np.ndarray]:
    """What the step into a frame returned (float32; at an episode's first frame 0, 0, 0)."""
    return {"reward": np.float32(reward), "terminated": np.float32(bool(terminated)),
            "truncated": np.float32(bool(truncated))}


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3|4) uint8 -> (size, size, 3) uint8 (antialiased bilinear; identity if already that size)."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise EnvError(f"render() returned an array of shape {frame.shape}, expected (H, W, 3)")
    frame = frame[..., :3]
    if frame.dtype != np.uint8:
        frame = np.clip(frame * (255.0 if frame.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if frame.shape[0] == size and frame.shape[1] == size:
        return np.ascontiguousarray(frame)
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.BILINEAR))


def _numeric(value: Any) -> np.ndarray | None:
    """A numeric array view of an info/observation value, or None if it is not numeric."""
    if isinstance(value, (bool, np.bool_)):
        return np.asarray(value, np.float32)
    if isinstance(value, (int, float, np.number)):
        return np.asarray(value, np.float64)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size <= 4096:
        return value
    if isinstance(value, (list, tuple)) and 0 < len(value) <= 4096:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):
            return None
        return arr if arr.dtype.kind in "biuf" else None
    return None


def _observation_leaves(name: str, obs: Any) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, array)`` of every numeric leaf of an observation: ``obs`` itself when it is one
    array, else one per entry of a Dict (``obs/observation``, ``obs/achieved_goal``, ...) or
    Tuple observation (``obs/0``, ...), nested ones too (``obs/a/b``)."""
    arr = _numeric(obs)
    if arr is not None:
        yield name, arr
    elif isinstance(obs, Mapping):
        for k, v in obs.items():
            yield from _observation_leaves(f"{name}/{k}", v)
    elif isinstance(obs, (tuple, list)):
        for i, v in enumerate(obs):
            yield from _observation_leaves(f"{name}/{i}", v)


class FrameEnv:
    """A Gymnasium env seen as frames + state; see the module docstring.

    ``reset(seed, state=None) -> (frame, extras)`` and
    ``step(action_vec) -> (frame, extras, done)``, where ``frame`` is ``(size, size, 3)``
    uint8 and ``extras`` maps names (``"state"``, ``"obs"``, or ``"obs/<key>"`` for each entry of
    a Dict observation, ``"info/<key>"``) to arrays.
    """

    def __init__(self, env: Any, env_id: str, size: int, env_kwargs: dict[str, Any] | None = None) -> None:
        self.env = env
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})  # what gym.make was given beyond the id and size
        self.size = size
        self.action_spec = ActionSpec.from_space(env.action_space, env_id)
        self.builtin = env_id.startswith("worldjepa/")

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def _extras(self, obs: Any, info: dict[str, Any]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = dict(_observation_leaves("obs", obs))
        for k, v in info.items():
            arr = _numeric(v)
            if arr is None or k.startswith("_"):
                continue
            out["state" if k == "state" else f"info/{k}"] = arr
        return out

    def render(self) -> np.ndarray:
        frame = self.env.render()
        if frame is None:
            raise EnvError(f"{self.env_id}: render() returned None; the env does not render rgb_array frames")
        return resize_frame(frame, self.size)

    def reset(self, seed: int | None = None, state: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        options = {"state": np.asarray(state)} if state is not None else None
        obs, info = self.env.reset(seed=seed, options=options)
        return self.render(), {**self._extras(obs, info), **_step_extras(0.0, False, False)}

    def check_action(self, vec: np.ndarray) -> np.ndarray:
        vec = np.asarray(vec, dtype=np.float32)
        if vec.size != self.action_spec.dim:
            raise EnvError(
                f"{self.env_id}: action of shape {vec.shape}, expected {self.action_spec.dim} values "
                f"(action space {self.env.action_space})"
            )
        if not np.all(np.isfinite(vec)):
            raise EnvError(f"{self.env_id}: action contains NaN or inf: {vec.ravel().tolist()}")
        return vec.reshape(self.action_spec.dim)

    def step(self, vec: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray], bool]:
        vec = self.check_action(vec)
        obs, reward, terminated, truncated, info = self.env.step(self.action_spec.decode(vec))
        extras = {**self._extras(obs, info), **_step_extras(reward, terminated, truncated)}
        return self.render(), extras, bool(terminated or truncated)

    def close(self) -> None:
        self.env.close()

    def describe(self) -> dict[str, Any]:
        """Metadata recorded in datasets and checkpoints."""
        return {
            "env_id": self.env_id,
            "frame_size": self.size,
            "action_space": self.action_spec.to_dict(),
            "observation_space": str(self.env.observation_space),
            **({"env_kwargs": self.env_kwargs} if self.env_kwargs else {}),
        }


def make_env(env_id: str, size: int = 64, env_module: str | None = None, **kwargs: Any) -> FrameEnv:
    """Make ``env_id`` rendering ``rgb_array`` frames of ``size x size``; clear errors otherwise."""
    import gymnasium as gym

    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame-rendered envs: no sound device needed headless
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")  # SDL would turn SIGTERM into a quit event nobody reads
    import_env_module(env_module)
    check_env_id(env_id)
    spec = gym.spec(env_id)
    if env_id.startswith("worldjepa/"):
        kwargs.setdefault("size", size)
    try:
        env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise EnvError(f"{env_id} needs an optional dependency: {e}") from None
    except TypeError as e:
        raise EnvError(f"{env_id} could not be made with {json.dumps(kwargs)}: {e}") from None
    modes = env.metadata.get("render_modes", []) or []
    if "rgb_array" not in modes:
        env.close()
        raise EnvError(
            f"{env_id} cannot render rgb_array frames (its render modes: {modes or 'none'}); "
            "worldjepa learns from pixels and needs render_mode='rgb_array'"
        )
    del spec
    return FrameEnv(env, env_id, size, {k: v for k, v in kwargs.items() if k != "size"})
