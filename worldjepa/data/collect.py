"""Record episodes from any Gymnasium environment into a dataset file.

Episode ``e`` of a collection with seed ``S`` resets the env with ``derive_seed(S, e)`` and
draws its policy's randomness from ``derive_seed(S, e, 1)``, so a dataset is the same
whatever the number of worker processes, and any episode can be replayed from its recorded
seed and actions.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._version import __version__
from ..config import opt, to_dict
from ..errors import ConfigError, EnvError
from ..utils import derive_seed


@dataclass(frozen=True)
class CollectConfig:
    """How to record a dataset."""

    env: str = opt("worldjepa/TwoRoom-v0", "Gymnasium environment id (any id that renders rgb_array)")
    out: str = opt("data/dataset.h5", "output HDF5 file")
    episodes: int = opt(0, "number of episodes to record; 0 = the env's default size (2,000 for TwoRoom, PointMaze "
                           "and Push-T, 3,000 for Reacher, as in DINO-WM/PLDM; 100 for other envs)")
    steps: int = opt(100, "actions per episode (an episode ends early if the env terminates)")
    seed: int = opt(0, "base seed: episode e uses derive_seed(seed, e)")
    policy: str = opt("auto", "collection policy: random | smooth | expert (Push-T) | auto (expert for Push-T, else smooth)")
    size: int = opt(64, "frame size in pixels (frames are size x size RGB)")
    workers: int = opt(1, "worker processes (the result does not depend on it)")
    env_module: str = opt("", "module to import first so that it registers third-party env ids")
    append: bool = opt(False, "append episodes to an existing file instead of refusing to overwrite it")
    compression: Literal["lzf", "gzip", "none"] = opt("lzf", "frame compression in the HDF5 file")

    def __post_init__(self) -> None:
        if self.episodes < 0 or self.steps < 1:
            raise ConfigError(f"episodes ({self.episodes}) must be >= 0 and steps ({self.steps}) >= 1")
        if not 8 <= self.size <= 512:
            raise ConfigError(f"size {self.size} must be between 8 and 512 pixels")
        if self.workers < 1:
            raise ConfigError(f"workers ({self.workers}) must be >= 1")


# default dataset sizes (episodes of 100 steps), following the anchors' datasets
DEFAULT_EPISODES = {"worldjepa/TwoRoom": 2000, "worldjepa/PointMaze": 2000, "worldjepa/Reacher": 3000, "worldjepa/PushT": 2000}


def resolve(cfg: CollectConfig) -> CollectConfig:
    """Fill in the env-dependent defaults: ``episodes=0`` and ``policy="auto"``."""
    episodes = cfg.episodes or next((n for k, n in DEFAULT_EPISODES.items() if cfg.env.startswith(k)), 100)
    policy = cfg.policy if cfg.policy != "auto" else ("expert" if cfg.env.startswith("worldjepa/PushT") else "smooth")
    return dataclasses.replace(cfg, episodes=episodes, policy=policy)


_WORKER_ENV: Any = None
WORKER_TIMEOUT_S = 300.0


def _worker_init(cfg: CollectConfig) -> None:
    global _WORKER_ENV
    import signal

    from ..envs.adapter import make_env

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle

    _WORKER_ENV = make_env(cfg.env, cfg.size, cfg.env_module or None)


def record_episode(env: Any, cfg: CollectConfig, index: int) -> dict[str, Any]:
    """Run episode ``index``: frames (L, H, W, 3), actions (L - 1, A), extras name -> (L, ...)."""
    from .policies import make_policy

    seed = derive_seed(cfg.seed, index)
    policy = make_policy(cfg.policy, env, np.random.default_rng(derive_seed(cfg.seed, index, 1)))
    frame, extras = env.reset(seed=seed)
    frames, actions, steps_extras = [frame], [], [extras]
    for _ in range(cfg.steps):
        a = env.check_action(policy.act(frame, extras))
        frame, extras, done = env.step(a)
        frames.append(frame)
        actions.append(a)
        steps_extras.append(extras)
        if done:
            break
    keys = [k for k in steps_extras[0] if all(k in e and np.shape(e[k]) == np.shape(steps_extras[0][k]) for e in steps_extras)]
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions).astype(np.float32),
        "extras": {k: np.stack([np.asarray(e[k]) for e in steps_extras]) for k in keys},
        "seed": seed,
    }


def _worker_episode(args: tuple[CollectConfig, int]) -> dict[str, Any]:
    cfg, index = args
    return record_episode(_WORKER_ENV, cfg, index)


def collect(cfg: CollectConfig, progress: bool = True) -> dict[str, Any]:
    """Record ``cfg.episodes`` episodes into ``cfg.out``; returns a short report."""
    from tqdm import tqdm

    from ..envs.adapter import make_env
    from .dataset import DatasetWriter

    from .policies import POLICIES

    cfg = resolve(cfg)
    if cfg.policy not in POLICIES:
        raise ConfigError(f"unknown collection policy {cfg.policy!r}; choose one of {', '.join(POLICIES)}")
    if cfg.policy == "expert" and not cfg.env.startswith("worldjepa/PushT"):
        raise ConfigError(f"policy 'expert' exists only for worldjepa/PushT-v1 and -v0, not {cfg.env}")
    env = make_env(cfg.env, cfg.size, cfg.env_module or None)  # validates the id and rendering up front
    meta = {**env.describe(), "policy": cfg.policy, "library_version": __version__, "config": to_dict(cfg)}
    compression = None if cfg.compression == "none" else cfg.compression
    stop = _StopOnCtrlC()
    with stop, DatasetWriter(cfg.out, meta, append=cfg.append, compression=compression) as w:
        first = w.num_episodes
        indices = range(first, first + cfg.episodes)
        bar = tqdm(total=cfg.episodes, desc=f"collect {cfg.env}", unit="ep", disable=not progress)
        if cfg.workers == 1:
            for i in indices:
                if stop.requested:
                    break
                w.add_episode(**_unpack(record_episode(env, cfg, i)))
                bar.update()
        else:
            ctx = mp.get_context("spawn")  # fork after torch or h5py threads started can deadlock
            with ctx.Pool(cfg.workers, initializer=_worker_init, initargs=(cfg,)) as pool:
                results = pool.imap(_worker_episode, [(cfg, i) for i in indices], chunksize=1)
                for _ in indices:
                    if stop.requested:
                        break
                    try:  # a worker that never answers is an error, not a silent hang
                        ep = results.next(timeout=WORKER_TIMEOUT_S)
                    except mp.TimeoutError:
                        raise EnvError(f"a collection worker produced no episode for {WORKER_TIMEOUT_S:.0f} s; "
                                       "the file was left as it was; retry, or use --workers 1") from None
                    w.add_episode(**_unpack(ep))
                    bar.update()
        bar.close()
        total = w.num_episodes
    env.close()
    if stop.requested:  # the completed episodes are published; now report the interruption
        raise KeyboardInterrupt
    return {"out": cfg.out, "added": cfg.episodes, "episodes": total}


class _StopOnCtrlC:
    """The first Ctrl-C asks the loop to stop after the current episode (never inside an HDF5
    write, where the interrupt could be lost); a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "_StopOnCtrlC":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _unpack(ep: dict[str, Any]) -> dict[str, Any]:
    return {"frames": ep["frames"], "actions": ep["actions"], "extras": ep["extras"], "seed": ep["seed"]}


def replay(env: Any, seed: int, actions: np.ndarray, state: np.ndarray | None = None) -> np.ndarray:
    """Frames (L, H, W, 3) obtained by resetting ``env`` with ``seed`` and applying ``actions``."""
    frame, _ = env.reset(seed=int(seed), state=state)
    frames = [frame]
    for i, a in enumerate(actions):
        frame, _, done = env.step(a)
        frames.append(frame)
        if done and i < len(actions) - 1:
            raise EnvError(f"{env.env_id} terminated during replay after {len(frames) - 1} actions")
    return np.stack(frames)
