"""The episodes of an evaluation, in this process or in ``--workers`` processes.

Each worker is spawned (nothing is forked: no half-copied torch threads, HDF5 handles or
renderers) and builds its own :class:`~worldjepa.eval.protocol.Setting` from the config: the
dataset, a fresh env and the policy (a run directory is loaded again; the encoder modules this
process trusts are trusted there too). Episodes are handed out
one at a time as workers free up; each record comes back with its index, so the records are
those of one process whatever the number of workers (each episode's randomness is fixed by its
index, and each worker runs ``--threads`` torch threads, 1 by default).

One pool serves every policy of an evaluation (``eval --policy a,b,c``): its workers start once
(importing torch is most of a worker's start) and keep a setting per policy. The pool ends with
:func:`close_pools` (the ``eval`` command calls it; also at exit), or at once when an episode
fails or the evaluation is interrupted.
"""

from __future__ import annotations

import atexit
import logging
from typing import Any, Callable

import numpy as np

logger = logging.getLogger(__name__)
_SETTINGS: dict[str, Any] = {}  # a worker's settings, one per policy config
_POOLS: dict[tuple[Any, ...], Any] = {}  # this process's pools, by (workers, threads, trusted modules, setting type)


def _init_worker(threads: int, trusted: list[str]) -> None:
    import torch

    torch.set_num_threads(threads)
    if trusted:  # encoder modules the parent process was told to trust
        from ..nn.external import trust_module

        for path in trusted:
            trust_module(path)


def _play(make_setting: Callable[[Any], Any], cfg: Any, spec: Any, film: bool) -> tuple[int, dict[str, Any], list[np.ndarray]]:
    key = repr(cfg)  # a dataclass: every option, nested ones too
    if key not in _SETTINGS:
        _SETTINGS[key] = make_setting(cfg)
    record, frames = _SETTINGS[key].play(spec, film)
    return spec.index, record, frames


def _pool(n: int, threads: int, trusted: list[str], kind: type) -> Any:
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    key = (n, threads, tuple(trusted), kind)
    if key not in _POOLS:
        logger.info("eval: starting %d worker processes", n)
        _POOLS[key] = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"),
                                          initializer=_init_worker, initargs=(threads, trusted))
    return _POOLS[key]


def close_pools(cancel: bool = False) -> None:
    """End the worker processes this process started (``cancel``: drop the episodes still queued)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=cancel)


atexit.register(close_pools, True)


def run_episodes(setting: Any, cfg: Any, specs: list[Any],
                 finished: Callable[[int, dict[str, Any]], None]) -> tuple[dict[int, dict[str, Any]], list[np.ndarray]]:
    """Play ``specs`` (``cfg.workers`` at a time), calling ``finished(index, record)`` as each ends;
    returns the records by index and the frames of the filmed ones (the first ``cfg.gif_episodes``)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    def film(spec: Any) -> bool:
        return bool(cfg.gif) and spec.index < cfg.gif_episodes

    played: dict[int, dict[str, Any]] = {}
    filmed: dict[int, list[np.ndarray]] = {}
    if cfg.workers == 1 or len(specs) < 2:
        for spec in specs:
            played[spec.index], filmed[spec.index] = setting.play(spec, film(spec))
            finished(spec.index, played[spec.index])
    else:
        import sys

        external = sys.modules.get("worldjepa.nn.external")
        trusted = sorted(external._TRUSTED) if external is not None else []
        pool = _pool(cfg.workers, cfg.threads or 1, trusted, type(setting))
        logger.info("eval: %d episodes in %d worker processes", len(specs), cfg.workers)
        try:
            pending = {pool.submit(_play, type(setting), cfg, spec, film(spec)) for spec in specs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    i, record, frames = future.result()  # a worker's error is raised here
                    played[i], filmed[i] = record, frames
                    finished(i, record)
        except BaseException:  # an error or Ctrl-C: drop the queued episodes, let the running ones end
            close_pools(cancel=True)
            raise
    return played, [f for i in sorted(filmed) for f in filmed[i]]
