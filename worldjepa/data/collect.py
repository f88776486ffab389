"""Record episodes from any Gymnasium environment into a dataset file.

Episode ``e`` of a collection with seed ``S`` resets the env with ``derive_seed(S, e)`` and
draws its policy's randomness from ``derive_seed(S, e, 1)``, so a dataset is the same
whatever the number of worker processes, and any episode can be replayed from its recorded
seed and actions.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..config import from_dict, to_dict
from ..configs import DEFAULT_EPISODES, CollectConfig
from ..errors import ConfigError, DatasetError, EnvError
from ..paths import check_outputs
from ..signals import Interrupted, StopSignals
from ..utils import derive_seed

__all__ = ["CollectConfig", "collect", "recorded_config", "record_episode", "replay", "resolve"]


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

    for name in ("SIGINT", "SIGHUP"):  # the main process handles these and stops the pool
        signal.signal(getattr(signal, name), signal.SIG_IGN)

    _WORKER_ENV = make_env(cfg.env, cfg.size, cfg.env_module or None, **cfg.kwargs())


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


def recorded_config(path: str | Path) -> CollectConfig:
    """The :class:`CollectConfig` a dataset file was (last) collected with."""
    from .dataset import Dataset

    with Dataset(path) as ds:
        if "config" not in ds.meta:
            raise DatasetError(f"{path} records no collection config")
        return from_dict(CollectConfig, ds.meta["config"])


def collect(cfg: CollectConfig, progress: bool | None = None) -> dict[str, Any]:
    """Record ``cfg.episodes`` episodes into ``cfg.out``; returns a short report. ``progress``
    (default: ``cfg.progress``) shows a progress bar."""
    progress = cfg.progress if progress is None else progress
    from ..envs.adapter import make_env
    from .writer import DatasetWriter

    from .policies import POLICIES

    cfg = resolve(cfg)
    check_outputs({"--out": (cfg.out, ("hdf5",))}, {})  # a link, a folder, another kind of file: refused now
    if cfg.policy not in POLICIES:
        raise ConfigError(f"unknown collection policy {cfg.policy!r}; choose one of {', '.join(POLICIES)}")
    if cfg.policy == "expert" and not cfg.env.startswith("worldjepa/PushT"):
        raise ConfigError(f"policy 'expert' exists only for worldjepa/PushT-v1 and -v0, not {cfg.env}")
    env = make_env(cfg.env, cfg.size, cfg.env_module or None, **cfg.kwargs())  # validates the id and rendering up front
    meta = {**env.describe(), "policy": cfg.policy, "library_version": __version__, "config": to_dict(cfg)}
    compression = None if cfg.compression == "none" else cfg.compression
    try:
        with StopSignals() as stop, DatasetWriter(cfg.out, meta, append=cfg.append, compression=compression,
                                                  planned=cfg.episodes) as w:
            first = w.num_episodes
            total = _record(cfg, env, w, stop, first, progress)
    except KeyboardInterrupt as e:  # a second signal: the writer kept the episodes completed until then
        if getattr(e, "saved", ""):
            raise
        raise Interrupted(getattr(e, "signum", 2),
                          f"stopped at once; the episodes completed before it (if any) were kept in {cfg.out}") from None
    env.close()
    stop.raise_if_requested(f"the {total - first} episodes completed were kept ({total} in {cfg.out})")
    return {"out": cfg.out, "added": cfg.episodes, "episodes": total}


def _record(cfg: CollectConfig, env: Any, w: Any, stop: StopSignals, first: int, progress: bool) -> int:
    """Record episodes ``first ..`` into the writer ``w`` until done or a stop is requested; returns
    the episodes in the file."""
    from ..progress import Progress

    indices = range(first, first + cfg.episodes)
    bar = Progress(cfg.episodes, f"collect {cfg.env}", "episode", enabled=progress)
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
                ep = _next_result(results, stop)
                if ep is None:
                    break
                w.add_episode(**_unpack(ep))
                bar.update()
    bar.close()
    return w.num_episodes


def _next_result(results: Any, stop: StopSignals) -> dict[str, Any] | None:
    """The next episode from the worker pool, or None once a stop was requested (polled, so
    that a signal is seen within half a second even while a worker is busy)."""
    waited = 0.0
    while not stop.requested:
        try:
            return results.next(timeout=0.5)
        except mp.TimeoutError:
            waited += 0.5
            if waited >= WORKER_TIMEOUT_S:  # a worker that never answers is an error, not a silent hang
                raise EnvError(f"a collection worker produced no episode for {WORKER_TIMEOUT_S:.0f} s; "
                               "the file was left as it was; retry, or use --workers 1") from None
    return None


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
