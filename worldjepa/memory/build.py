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
import torch

from ..errors import WorldJepaError
from .graph import MemoryMap, build_map, calibrate
from .store import MemoryStore

__all__ = ["build_memory", "embed_episode", "embed_stream", "load_map"]
logger = logging.getLogger(__name__)


@torch.no_grad()
def embed_episode(model: Any, ep: dict[str, np.ndarray], batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(L, D)`` of an episode's frames and their surprise ``(L,)``: the prediction error
    of the embedding at step ``t`` from the model's context at ``t - k, t - 2k, ...`` (up to its
    ``history``) and the ``k`` actions executed since; ``nan`` for ``t < k``."""
    from ..losses import prediction_error

    frames, k, hist = ep["frames"], int(model.frameskip), int(model.history)
    extras = {key: v for key, v in ep.items() if key not in ("frames", "actions", "seed")}
    p = model.proprio_of(extras)
    z = torch.cat([model.encode(frames[i:i + batch], None if p is None else p[i:i + batch])
                   for i in range(0, len(frames), batch)])  # (L, D)
    L, a = len(frames), np.asarray(ep["actions"], np.float32)  # (L - 1, A)
    surprise = np.full(L, np.nan)

    def macro(starts: np.ndarray) -> np.ndarray:
        """The k actions from each start, concatenated: (B,) -> (B, k*A)."""
        return np.concatenate([a[starts + j] for j in range(k)], -1)

    for n in range(1, hist + 1):  # entries whose context holds n embeddings
        ts = np.array([t for t in range(k, L) if min(hist, t // k) == n])
        if not len(ts):
            continue
        ctx = ts[:, None] - k * np.arange(n, 0, -1)[None, :]  # (B, n): t - n k, ..., t - k
        a_hist = np.stack([macro(ctx[:, j]) for j in range(n - 1)], 1) if n > 1 else np.zeros((len(ts), 0, k * a.shape[1]))
        last = torch.as_tensor(macro(ctx[:, -1]), device=z.device)[:, None, None]  # (B, 1, 1, k*A)
        pred = model.rollout(z[torch.as_tensor(ctx)], torch.as_tensor(a_hist, dtype=torch.float32, device=z.device),
                             last)[:, 0, 0]  # (B, D)
        surprise[ts] = prediction_error(pred, z[torch.as_tensor(ts)]).cpu().numpy()
    return z.cpu().numpy(), surprise


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
                 progress: bool = False) -> dict[str, Any]:
    """Remember every ``stride``-th frame of the ``split`` episodes of ``data`` as embedded by the world
    model of ``run``, and build the map: landmarks ``radius`` apart (0 = the median latent distance
    of frames ``radius_steps`` env steps apart), edges between landmarks an episode joined within
    ``edge_steps`` env steps. Returns the memory's stats."""
    from tqdm import tqdm

    from ..checkpoint import check_compatible
    from ..data.dataset import Dataset
    from ..world_model import load_world_model, model_fingerprint

    if stride < 1 or radius_steps < 1 or edge_steps < 1:
        raise WorldJepaError(f"stride, radius_steps and edge_steps must be >= 1, got {stride}, {radius_steps}, {edge_steps}")
    model, meta = load_world_model(run)
    with Dataset(data) as ds:
        check_compatible(meta, ds.env_id, ds.frame_size, ds.action_dim, where=f"run {run}")
        ids = ds.episode_ids(split)
        if not len(ids):
            raise WorldJepaError(f"{data}: the {split} split is empty")
        store = MemoryStore.create(out, dim=model.latent_dim, fingerprint=model_fingerprint(model), overwrite=overwrite,
                                   capacity=capacity, merge_radius=merge_radius,
                                   meta={"run": str(Path(run).resolve()), "data": str(Path(data).resolve()),
                                         "env_id": ds.env_id, "frame_size": ds.frame_size, "split": split,
                                         "stride": stride})
        with store:
            for e in tqdm(ids, desc="memory: encode", unit="ep", disable=not progress):
                ep = ds.episode(int(e))
                z, surprise = embed_episode(model, ep)
                rows = np.arange(0, len(z), stride)
                acts = np.concatenate([ep["actions"], np.zeros((1, ep["actions"].shape[1]), np.float32)])
                store.add(z[rows], episode=int(e), step=rows, surprise=surprise[rows], action=acts[rows],
                          state=ep["state"][rows] if "state" in ep else None, thumbnail=ep["frames"][rows])
            entry_ids, zs = store.embeddings()
            got = store.get(entry_ids)
            r = radius or calibrate(zs, got["episode"], got["step"], radius_steps)
            marks, edges, weights, _ = build_map(zs, got["episode"], got["step"], radius=r, max_gap=edge_steps, seed=seed)
            store.set_graph(entry_ids[marks], edges, weights, {"radius": r, "radius_steps": radius_steps,
                                                               "edge_steps": edge_steps, "seed": seed})
            stats = store.stats()
    logger.debug("memory %s: %d entries, %d landmarks, %d edges (radius %.3f)", out, stats["entries"], len(marks),
                len(edges), r)
    return {**stats, "landmarks": int(len(marks)), "edges": int(len(edges)), "radius": r}


def load_map(path: str | Path, model: Any) -> MemoryMap:
    """The map of memory file ``path``, checked to be in ``model``'s latent space (embedding size
    and fingerprint), else :class:`~worldjepa.errors.MemoryFileError` with the file untouched."""
    from ..world_model import model_fingerprint

    with MemoryStore.open(path, dim=int(model.latent_dim), fingerprint=model_fingerprint(model), readonly=True) as store:
        graph = store.graph()
        if graph is None:
            raise WorldJepaError(f"{path} holds no map: build it with `worldjepa memory build`")
        nodes, edges, weights, info = graph
        got = store.get(nodes)
    return MemoryMap(got["embedding"], edges, weights, float(info["radius"]), info, got.get("thumbnail"))
