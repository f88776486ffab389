"""A memory from a run and a reward-free dataset: every frame remembered, then a map over them.

:func:`build_memory` encodes the frames of a dataset's episodes with a world model, scores
each with the model's surprise (its one-step prediction error, the same
:func:`~worldjepa.losses.prediction_error` the agent reports), stores them in a
:class:`~worldjepa.memory.store.MemoryStore` and builds the map
(:func:`~worldjepa.memory.graph.build_map`) that the reasoning planner searches.
:func:`load_map` reads that map back for the model it was built with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import WorldJepaError
from .graph import MemoryMap, build_map, calibrate, connectivity
from .store import MemoryStore

__all__ = ["build_memory", "embed_episode", "embed_stream", "load_map"]
logger = logging.getLogger(__name__)


def embed_episode(model: Any, ep: dict[str, np.ndarray], batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(L, D)`` of an episode's frames and their surprise ``(L,)``: the prediction error
    of the embedding at step ``t`` from the model's context at ``t - k, t - 2k, ...`` (up to its
    ``history``) and the ``k`` actions executed since (:func:`~worldjepa.physics.surprise.clip_surprise`);
    ``nan`` for ``t < k``."""
    from ..physics.surprise import clip_surprise

    extras = {key: v for key, v in ep.items() if key not in ("frames", "actions", "seed")}
    return clip_surprise(model, ep["frames"], ep["actions"], extras, batch=batch)


def embed_stream(model: Any, frames: Callable[[int, int], np.ndarray], actions: np.ndarray, *,
                 chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """:func:`embed_episode` of a stream too long to hold its frames at once: ``frames(start, stop)``
    gives frames ``start:stop`` ``(L, H, W, 3)`` uint8, ``actions`` (T - 1, A) the steps between
    them. Chunks of ``chunk`` frames are read with the ``frameskip * history`` frames before them,
    so the result equals :func:`embed_episode` of the whole stream: embeddings (T, D) float32 and
    surprise (T,) (NaN for the first ``frameskip`` frames)."""
    if model.proprio:
        raise WorldJepaError("embed_stream: this model also takes proprioception, which a stream of frames lacks")
    T = len(actions) + 1
    back = int(model.frameskip) * int(model.history)
    zs, ss = [], []
    for start in range(0, T, chunk):
        lo, stop = max(0, start - back), min(T, start + chunk)
        z, s = embed_episode(model, {"frames": frames(lo, stop), "actions": actions[lo:stop - 1]})
        zs.append(z[start - lo:])
        ss.append(s[start - lo:])
    return np.concatenate(zs), np.concatenate(ss)


def build_memory(run: str | Path, data: str | Path, out: str | Path, *, split: str = "train", stride: int = 1,
                 radius: float = 0.0, radius_steps: int = 3, edge_steps: int = 10, capacity: int = 0,
                 merge_radius: float = 0.0, overwrite: bool = False, seed: int = 0,
                 progress: bool = False, shortcuts: int = 0, subgoals: int = 0,
                 device: str = "auto") -> dict[str, Any]:
    """Remember every ``stride``-th frame of the ``split`` episodes of ``data`` as embedded by the world
    model of ``run``, and build the map: landmarks ``radius`` apart (0 = the median latent distance
    of frames ``radius_steps`` env steps apart), edges between landmarks an episode joined within
    ``edge_steps`` env steps; with ``shortcuts`` > 0, also edges to up to that many near landmarks
    the world model reaches in a short plan (:func:`~worldjepa.memory.shortcuts.judge_shortcuts`);
    with ``subgoals`` > 0, a subgoal model trained that many steps on the remembered episodes
    (:func:`~worldjepa.memory.subgoals.fit_subgoals`), kept in the same file.
    The model runs on ``device`` (``auto``: CUDA when torch sees one).
    Returns the memory's stats (with ``subgoals``: the subgoal model's held-out fit)."""
    from ..checkpoint import check_compatible
    from ..data.dataset import Dataset
    from ..progress import Progress
    from ..world_model import load_world_model, model_fingerprint

    if stride < 1 or radius_steps < 1 or edge_steps < 1:
        raise WorldJepaError(f"stride, radius_steps and edge_steps must be >= 1, got {stride}, {radius_steps}, {edge_steps}")
    from ..utils import pick_device

    model, meta = load_world_model(run, pick_device(device))
    with Dataset(data) as ds:
        check_compatible(meta, ds.env_id, ds.frame_size, ds.action_dim, where=f"run {run}")
        ids = ds.episode_ids(split)
        if not len(ids):
            raise WorldJepaError(f"{data}: the {split} split is empty")
        # the landmark radius is calibrated on remembered frames this far apart: every stride-th frame
        gap = -(-radius_steps // stride) * stride
        if not radius and int(ds.lengths[ids].max()) <= gap:  # refused before the memory file is touched
            raise WorldJepaError(f"no two remembered frames {gap} env steps apart in one episode to calibrate the "
                                 "landmark radius: record longer episodes, lower --stride, or pass --radius")
        store = MemoryStore.create(out, dim=model.latent_dim, fingerprint=model_fingerprint(model), overwrite=overwrite,
                                   capacity=capacity, merge_radius=merge_radius,
                                   meta={"run": str(Path(run).resolve()), "data": str(Path(data).resolve()),
                                         "env_id": ds.env_id, "frame_size": ds.frame_size, "split": split,
                                         "stride": stride})
        with store:
            with Progress(len(ids), "memory: encode", "episode", enabled=progress) as bar:
                for e in ids:
                    ep = ds.episode(int(e))
                    z, surprise = embed_episode(model, ep)
                    rows = np.arange(0, len(z), stride)
                    acts = np.concatenate([ep["actions"], np.zeros((1, ep["actions"].shape[1]), np.float32)])
                    store.add(z[rows], episode=int(e), step=rows, surprise=surprise[rows], action=acts[rows],
                              state=ep["state"][rows] if "state" in ep else None, thumbnail=ep["frames"][rows])
                    bar.update(1)
            entry_ids, zs = store.embeddings()
            got = store.get(entry_ids)
            r = radius or calibrate(zs, got["episode"], got["step"], gap)
            marks, edges, weights, _ = build_map(zs, got["episode"], got["step"], radius=r, max_gap=edge_steps, seed=seed)
            n_short = n_cand = 0
            if shortcuts:
                from ..envs.adapter import ActionSpec
                from .shortcuts import judge_shortcuts

                spec = ActionSpec.from_dict(meta["action_space"])
                extra, extra_w, n_cand = judge_shortcuts(model, zs[marks], edges, r, spec.low, spec.high,
                                                         neighbours=shortcuts, seed=seed)
                edges, weights, n_short = np.concatenate([edges, extra]), np.concatenate([weights, extra_w]), len(extra)
            store.set_graph(entry_ids[marks], edges, weights, {"radius": r, "radius_steps": radius_steps,
                                                               "edge_steps": edge_steps, "seed": seed,
                                                               "shortcuts": shortcuts, "shortcut_edges": n_short})
            fit = None
            if subgoals:
                from .subgoals import fit_subgoals, save_subgoals

                sub_model, fit = fit_subgoals(zs, got["episode"], got["step"], train_steps=subgoals, seed=seed,
                                              progress=progress, device=pick_device(device))
                save_subgoals(store, sub_model, fit)
            stats = store.stats()
    logger.debug("memory %s: %d entries, %d landmarks, %d edges (radius %.3f)", out, stats["entries"], len(marks),
                len(edges), r)
    return {**stats, "landmarks": int(len(marks)), "edges": int(len(edges)), "radius": r,
            "shortcut_edges": n_short, "shortcut_candidates": n_cand, **connectivity(len(marks), edges),
            **({"subgoals": fit} if fit is not None else {})}


def load_map(path: str | Path, model: Any, env_id: str | None = None) -> MemoryMap:
    """The map of memory file ``path``, checked to be of ``env_id``'s recordings (when given and
    recorded) and in ``model``'s latent space (embedding size and fingerprint), else a
    :class:`~worldjepa.errors.WorldJepaError` with the file untouched."""
    from ..world_model import model_fingerprint

    if env_id:  # another env's memory: named as such, before its sizes
        with MemoryStore.open(path, readonly=True) as store:
            env, run = store.meta.get("env_id"), store.meta.get("run")
        if env and env != env_id:
            raise WorldJepaError(f"{path} is a memory of {env}" + (f" (built with {run})" if run else "") +
                                 f", not of {env_id}, the env of this agent's model")
    with MemoryStore.open(path, dim=int(model.latent_dim), fingerprint=model_fingerprint(model), readonly=True) as store:
        graph = store.graph()
        if graph is None:
            raise WorldJepaError(f"{path} holds no map: build it with `worldjepa memory build`")
        nodes, edges, weights, info = graph
        got = store.get(nodes)
        from .subgoals import load_subgoals  # torch: only where a world model is in use already

        subgoals = load_subgoals(store)
    return MemoryMap(got["embedding"], edges, weights, float(info["radius"]), info, got.get("thumbnail"), subgoals)
