"""Checkpoints: safetensors weights with the JSON config in the same file. Never pickle.

A checkpoint is one ``.safetensors`` file whose header metadata holds ``"worldjepa"``: a
JSON object with the model architecture, the training config, the env id, frame size,
action space, dataset fingerprint and library version. A run directory holds
``model.safetensors`` (weights for inference), ``last.safetensors`` (weights + optimizer +
RNG state for exact resume) and a readable ``config.json`` copy. Every file is written to a
temporary name and renamed, so a killed process never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from .errors import CheckpointError
from .utils import sniff

MODEL_FILE = "model.safetensors"
RESUME_FILE = "last.safetensors"
BEST_FILE = "best.safetensors"  # --keep K > 1: the weights of the best validation so far
KEPT_DIR = "checkpoints"  # --keep K > 1: step_N.safetensors, the weights of the last K saves


def resolve(path: str | Path, prefer: str = MODEL_FILE) -> Path:
    """A checkpoint file from a file path or a run directory."""
    p = Path(path)
    if p.is_dir():
        for name in (prefer, MODEL_FILE, RESUME_FILE):
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p} holds no checkpoint ({MODEL_FILE} or {RESUME_FILE}); did training run to its first save?")
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    return p


def save(path: str | Path, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``tensors`` (name -> torch.Tensor) and ``meta`` (JSON-able) atomically."""
    import torch
    from safetensors.torch import save as st_save

    from .atomic import atomic_write_bytes

    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    for k, v in flat.items():
        if not torch.is_tensor(v):
            raise TypeError(f"checkpoint entry {k} is not a tensor")
    atomic_write_bytes(path, st_save(flat, metadata={"worldjepa": json.dumps(meta)}))


_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
             "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def _header(p: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(worldjepa metadata, tensor entries) of a safetensors file, every entry checked against the
    file's size (a truncated or forged file is refused before any tensor is read)."""
    kind = sniff(p)
    if kind == "pickle":
        raise CheckpointError(f"{p} is a pickle (torch.save) file; worldjepa loads only safetensors checkpoints "
                              "and never unpickles (unpickling can run arbitrary code)")
    if kind != "safetensors":
        raise CheckpointError(f"{p} is not a safetensors checkpoint ({kind})")
    size = p.stat().st_size
    with open(p, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
    bad = f"{p} is truncated or corrupt"
    header = _json_object(raw, f"{bad}: its header")
    entries, end = {}, 0
    for name, e in header.items():
        if name == "__metadata__":
            continue
        try:
            shape, (lo, hi) = [int(v) for v in e["shape"]], e["data_offsets"]
            if e["dtype"] not in _ITEMSIZE or min(shape, default=0) < 0 or not 0 <= lo <= hi \
                    or hi - lo != math.prod(shape) * _ITEMSIZE[e["dtype"]]:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{bad}: tensor {name!r} has an invalid header entry") from None
        entries[name], end = e, max(end, hi)
    if 8 + n + end != size:
        raise CheckpointError(f"{bad}: its header describes {8 + n + end} bytes, the file has {size}")
    raw_meta = (header.get("__metadata__") or {}).get("worldjepa") if isinstance(header.get("__metadata__"), dict) else None
    if raw_meta is None:
        raise CheckpointError(f"{p} is a safetensors file without worldjepa metadata (not a worldjepa checkpoint)")
    return _json_object(raw_meta, f"{bad}: its worldjepa metadata"), entries


def _json_object(raw: Any, what: str) -> dict[str, Any]:
    try:
        out = json.loads(raw)
    except (TypeError, ValueError):  # UnicodeDecodeError is a ValueError
        raise CheckpointError(f"{what} is not JSON") from None
    if not isinstance(out, dict):
        raise CheckpointError(f"{what} is not a JSON object")
    return out


def load(path: str | Path, prefer: str = MODEL_FILE) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, meta) of a checkpoint file or run directory; clear errors for anything else."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = resolve(path, prefer)
    meta, _ = _header(p)
    try:
        tensors = load_file(str(p))
    except (SafetensorError, ValueError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{p} is truncated or corrupt: {e}") from None
    return tensors, meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata of a checkpoint without loading its tensors (the header is checked against the
    file's size)."""
    p = resolve(path)
    meta, entries = _header(p)
    meta["_tensors"] = {k: v["shape"] for k, v in entries.items()}
    return meta


def check_compatible(meta: dict[str, Any], env_id: str | None = None, frame_size: int | None = None,
                     action_dim: int | None = None, where: str = "checkpoint") -> None:
    """Raise CheckpointError if the checkpoint was made for another env, frame size or action space."""
    if env_id is not None and meta.get("env_id") not in (None, env_id):
        raise CheckpointError(f"{where} was trained on {meta.get('env_id')}, not {env_id}")
    if frame_size is not None and meta.get("frame_size") not in (None, frame_size):
        raise CheckpointError(f"{where} expects {meta.get('frame_size')}x{meta.get('frame_size')} frames, "
                              f"the data has {frame_size}x{frame_size}")
    dim = (meta.get("action_space") or {}).get("dim")
    if action_dim is not None and dim not in (None, action_dim):
        raise CheckpointError(f"{where} expects {dim}-d actions, got {action_dim}-d")


def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An optimizer ``state_dict`` as (tensors, JSON) so it can live in safetensors."""
    import torch

    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for name, v in entries.items():
            if torch.is_tensor(v):
                tensors[f"optim/{pid}/{name}"] = v
            else:
                scalars[f"{pid}/{name}"] = v
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim/"):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = v
    for key, v in info.get("scalars", {}).items():
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = v
    return {"state": state, "param_groups": info["param_groups"]}
