"""Minari's on-disk format (0.5, HDF5 storage), written and read with h5py alone.

A Minari dataset ``NAMESPACE/NAME-vN`` lives in ``ROOT/NAMESPACE/NAME-vN/data/``
(``ROOT`` = ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``): ``metadata.json`` (the id,
counts, the observation and action spaces as Minari's JSON) and ``main_data.hdf5``, one group
``episode_{i}`` per episode with ``observations`` (``T + 1`` entries), ``actions``, ``rewards``,
``terminations``, ``truncations`` (``T`` each) and attributes ``id``, ``total_steps``, ``seed``.

Export: the observation is a Dict of ``pixels`` (the frames, ``(H, W, 3)`` uint8, stored raw:
``jpeg_encoding`` false, so frames come back identical) and every numeric extra (``state``,
``obs``, ``obs/KEY`` as nested Dicts, ...); rewards, terminations and truncations come from the
``reward``, ``terminated``, ``truncated`` extras (a dataset recorded before them: rewards 0, no
terminations, the last step truncated). A Discrete action space is exported as integers.
Import: the frames are the image observation (a ``(H, W, 3)`` uint8 Box, or the Dict entry
``pixels`` / ``image`` / the first such Box; JPEG-encoded ones are decoded), square; every other
numeric observation entry becomes an extra, and the rewards, terminations and truncations the
``reward``, ``terminated``, ``truncated`` extras.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .._version import __version__
from ..errors import DatasetError, WorldJepaError

__all__ = ["export_minari", "import_minari", "minari_path"]

MINARI_VERSION = "0.5.4"  # the layout written: Minari 0.5's (tested against minari 0.5.4)
STEP_EXTRAS = ("reward", "terminated", "truncated")
_ID = re.compile(r"(?:[\w.-]+/)*[\w.-]+-v\d+")


def minari_path(dataset_id: str, root: str | Path | None = None) -> Path:
    """``ROOT/dataset_id/data``, the folder that holds a Minari dataset's files."""
    if not _ID.fullmatch(dataset_id):
        raise WorldJepaError(f"Minari dataset id {dataset_id!r}: expected (NAMESPACE/)NAME-vVERSION, e.g. "
                             "worldjepa/tworoom-v0")
    base = Path(root or os.environ.get("MINARI_DATASETS_PATH") or Path.home() / ".minari" / "datasets")
    return base / dataset_id / "data"


def _box(shape: tuple[int, ...], dtype: Any, low: Any = None, high: Any = None) -> dict[str, Any]:
    dt = np.dtype(dtype)
    lo = np.broadcast_to(-np.inf if low is None else np.asarray(low, dt), shape).astype(dt)
    hi = np.broadcast_to(np.inf if high is None else np.asarray(high, dt), shape).astype(dt)
    return {"type": "Box", "dtype": str(dt), "shape": list(shape), "low": lo.tolist(), "high": hi.tolist()}


def _tree(names: list[str]) -> dict[str, Any]:
    """``["state", "obs/a", "obs/b"]`` -> ``{"state": "state", "obs": {"a": "obs/a", "b": "obs/b"}}``."""
    out: dict[str, Any] = {}
    for name in names:
        node = out
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = name
    return out


def export_minari(data: str | Path, dataset_id: str, root: str | Path | None = None) -> Path:
    """Write dataset ``data`` as the Minari dataset ``dataset_id`` under ``root``; returns its folder.
    An existing dataset of that id is refused."""
    import h5py

    from ..atomic import atomic_write_text
    from .dataset import Dataset

    out = minari_path(dataset_id, root)
    if out.exists():
        raise WorldJepaError(f"{out} exists: Minari dataset {dataset_id} is already there (choose another id or "
                             "delete it)")
    with Dataset(data) as ds:
        spec, size = ds.meta["action_space"], ds.frame_size
        discrete = spec["kind"] == "discrete"
        action_space = ({"type": "Discrete", "dtype": "int64", "start": 0, "n": int(spec["dim"])} if discrete else
                        _box(tuple(spec["shape"]), np.float32, np.reshape(spec["low"], spec["shape"]),
                             np.reshape(spec["high"], spec["shape"])))
        extras = [k for k in ds.extras if k not in STEP_EXTRAS]
        obs_space = _space_of(_tree(extras), ds)
        obs_space["subspaces"] = {"pixels": _box((size, size, 3), np.uint8, 0, 255), **obs_space["subspaces"]}
        out.mkdir(parents=True)
        steps = 0
        try:
            with h5py.File(out / "main_data.hdf5", "w", track_order=True) as f:
                for i in range(ds.num_episodes):
                    ep = ds.episode(i)
                    T = len(ep["actions"])
                    g = f.create_group(f"episode_{i}")
                    g.attrs.update({"id": i, "total_steps": T, "seed": int(ep["seed"])})
                    obs = g.create_group("observations")
                    obs.create_dataset("pixels", data=ep["frames"])
                    _write_tree(obs, _tree(extras), ep)
                    actions = ep["actions"].argmax(-1).astype(np.int64) if discrete else \
                        ep["actions"].reshape(T, *spec["shape"]).astype(np.float32)
                    g.create_dataset("actions", data=actions)
                    rewards, terms, truncs = _step_values(ep, T)
                    g.create_dataset("rewards", data=rewards)
                    g.create_dataset("terminations", data=terms)
                    g.create_dataset("truncations", data=truncs)
                    steps += T
            meta = {"dataset_id": dataset_id, "total_episodes": ds.num_episodes, "total_steps": steps,
                    "data_format": "hdf5", "jpeg_encoding": False, "observation_space": json.dumps(obs_space),
                    "action_space": json.dumps(action_space), "minari_version": MINARI_VERSION,
                    "algorithm_name": f"worldjepa collect --policy {ds.meta.get('policy', '?')}",
                    "code_permalink": "", "author": [], "author_email": [],
                    "dataset_size": round((out / "main_data.hdf5").stat().st_size / 2**20, 1),
                    "worldjepa": {"env_id": ds.env_id, "env_kwargs": ds.env_kwargs, "library_version": __version__}}
            atomic_write_text(out / "metadata.json", json.dumps(meta) + "\n")
        except BaseException:
            import shutil

            shutil.rmtree(out.parent, ignore_errors=True)
            raise
    return out.parent


def _space_of(tree: dict[str, Any], ds: Any) -> dict[str, Any]:
    sub = {k: _space_of(v, ds) if isinstance(v, dict) else _box(tuple(ds.shapes[v]), ds.read_extra(v, [0]).dtype)
           for k, v in tree.items()}
    return {"type": "Dict", "subspaces": sub}


def _write_tree(group: Any, tree: dict[str, Any], ep: dict[str, np.ndarray]) -> None:
    for key, value in tree.items():
        if isinstance(value, dict):
            _write_tree(group.create_group(key), value, ep)
        else:
            group.create_dataset(key, data=ep[value])


def _step_values(ep: dict[str, np.ndarray], T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minari's per-step rewards, terminations, truncations ``(T,)`` from the per-frame extras
    (the value recorded with frame ``t + 1`` is the step from ``t``'s)."""
    if "reward" in ep:
        return (ep["reward"][1:T + 1].astype(np.float64), ep["terminated"][1:T + 1].astype(bool),
                ep["truncated"][1:T + 1].astype(bool))
    truncs = np.zeros(T, bool)
    truncs[-1] = True  # cut by the collection's step limit
    return np.zeros(T), np.zeros(T, bool), truncs


# ---------------------------------------------------------------------------------- import
def import_minari(dataset_id: str, out: str | Path, root: str | Path | None = None, compression: str | None = "lzf",
                  env_id: str | None = None) -> dict[str, Any]:
    """Write the Minari dataset ``dataset_id`` (under ``root``) as the worldjepa dataset ``out``;
    returns a short report. ``env_id``: the Gymnasium id to record (default: the dataset's
    ``env_spec`` id, else ``minari/<dataset_id>``)."""
    import h5py

    from ..envs.adapter import ActionSpec
    from .writer import DatasetWriter

    src = minari_path(dataset_id, root)
    if not (src / "metadata.json").is_file() or not (src / "main_data.hdf5").is_file():
        raise DatasetError(f"no Minari dataset {dataset_id} at {src} (metadata.json and main_data.hdf5); pass --root")
    meta = json.loads((src / "metadata.json").read_text())
    if meta.get("data_format", "hdf5") != "hdf5":
        raise DatasetError(f"Minari dataset {dataset_id} is stored as {meta['data_format']}; worldjepa reads hdf5")
    obs_space = json.loads(meta["observation_space"])
    action_space = _gym_space(json.loads(meta["action_space"]))
    pixels, leaves = _find_pixels(obs_space)
    spec = ActionSpec.from_space(action_space, dataset_id)
    own = meta.get("worldjepa") or {}
    if env_id is None:
        env_spec = json.loads(meta["env_spec"]) if meta.get("env_spec") else {}
        env_id = own.get("env_id") or env_spec.get("id") or f"minari/{dataset_id}"
    jpeg = bool(meta.get("jpeg_encoding", False))
    with h5py.File(src / "main_data.hdf5", "r") as f:
        episodes = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
        if not episodes:
            raise DatasetError(f"Minari dataset {dataset_id} holds no episodes")
        first = _frames(f[episodes[0]]["observations"], pixels, jpeg)
        size = first.shape[1]
        info = {"env_id": env_id, "frame_size": size, "action_space": spec.to_dict(),
                "observation_space": meta["observation_space"], "policy": meta.get("algorithm_name", "minari"),
                "library_version": __version__, "source": {"minari": dataset_id, "minari_version":
                                                           meta.get("minari_version")},
                **({"env_kwargs": own["env_kwargs"]} if own.get("env_kwargs") else {})}
        with DatasetWriter(out, info, compression=compression) as w:
            for name in episodes:
                g = f[name]
                frames = _frames(g["observations"], pixels, jpeg)
                actions = np.stack([spec.encode(a) for a in g["actions"][()]]) if spec.kind == "discrete" else \
                    g["actions"][()].reshape(len(frames) - 1, -1).astype(np.float32)
                extras = {"/".join(path): np.asarray(_at(g["observations"], path)[()]) for path in leaves}
                T = len(actions)
                for key, src_key in zip(STEP_EXTRAS, ("rewards", "terminations", "truncations")):
                    per_frame = np.zeros(T + 1, np.float32)
                    per_frame[1:] = g[src_key][()]
                    extras[key] = per_frame
                seed = g.attrs.get("seed")
                w.add_episode(frames, actions, extras, int(seed) if seed is not None else -1)
    return {"episodes": len(episodes), "env_id": env_id, "frame_size": size, "out": str(out)}


def _gym_space(d: dict[str, Any]) -> Any:
    from gymnasium import spaces

    if d["type"] == "Box":
        return spaces.Box(np.asarray(d["low"], d["dtype"]), np.asarray(d["high"], d["dtype"]), tuple(d["shape"]),
                          np.dtype(d["dtype"]))
    if d["type"] == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    raise DatasetError(f"Minari action space of type {d['type']}: worldjepa takes Box or Discrete actions")


def _leaves(space: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if space["type"] == "Dict":
        for k, v in space["subspaces"].items():
            yield from _leaves(v, (*path, k))
    elif space["type"] == "Tuple":
        for i, v in enumerate(space["subspaces"]):
            yield from _leaves(v, (*path, f"_index_{i}"))
    else:
        yield path, space


def _is_image(space: dict[str, Any]) -> bool:
    shape = space.get("shape") or []
    return space["type"] == "Box" and space.get("dtype") == "uint8" and len(shape) == 3 and shape[2] == 3


def _find_pixels(obs_space: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The path of the image observation, and the paths of the other numeric entries (extras)."""
    leaves = [(p, s) for p, s in _leaves(obs_space) if s["type"] in ("Box", "Discrete", "MultiBinary", "MultiDiscrete")]
    images = [p for p, s in leaves if _is_image(s)]
    if not images:
        raise DatasetError("this Minari dataset has no image observation ((H, W, 3) uint8): worldjepa learns from "
                           "frames")
    named = [p for p in images if p and p[-1] in ("pixels", "image", "rgb")]
    pixels = (named or images)[0]
    shape = dict(leaves)[pixels]["shape"]
    if shape[0] != shape[1]:
        raise DatasetError(f"the Minari frames are {shape[1]}x{shape[0]}: worldjepa's frames are square")
    return pixels, [p for p, _ in leaves if p != pixels]


def _at(group: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        group = group[key]
    return group


def _frames(obs: Any, path: tuple[str, ...], jpeg: bool) -> np.ndarray:
    data = _at(obs, path)[()]
    if jpeg:
        import io

        from PIL import Image

        data = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in data])
    return np.ascontiguousarray(data, dtype=np.uint8)
