"""Small helpers with no better home: file sniffing, seeding, pretty sizes, the learning-rate
schedule, the device and precision a model runs in. (Atomic writes: :mod:`worldjepa.atomic`.)"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def derive_seed(*parts: int) -> int:
    """A 32-bit seed derived from integers, stable across processes and platforms."""
    import numpy as np

    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def warmup_cosine(step: int, total: int, lr: float, warmup_steps: int, min_ratio: float) -> float:
    """Learning rate at ``step`` (0-based) of ``total``: linear warm-up over ``warmup_steps``,
    then cosine decay to ``min_ratio * lr``. The one schedule of every training loop here."""
    import math

    warm = max(0, warmup_steps)
    if step < warm:
        return lr * (step + 1) / warm
    frac = min(1.0, (step - warm) / max(1, total - warm))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def sniff(path: str | Path) -> str:
    """'safetensors', 'pickle', 'hdf5', 'sqlite' (a memory file) or 'unknown', from the first bytes of a file."""
    with open(path, "rb") as f:
        head = f.read(16)
    # safetensors first: its 8-byte little-endian header length may well start with 0x80,
    # the byte that opens a pickle (protocol >= 2 writes 0x80 then the protocol number)
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 0 < n < 100 * 2**20:
            return "safetensors"
    if head[:4] == b"PK\x03\x04" or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")):
        return "pickle"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head == b"SQLite format 3\x00":
        return "sqlite"
    return "unknown"


def pick_device(name: str, index: int = 0):  # -> torch.device
    """``auto`` (CUDA when torch sees a device), ``cpu`` or ``cuda`` (an error without one)."""
    import torch

    from .errors import WorldJepaError

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise WorldJepaError("--device cuda, but torch sees no CUDA device")
        return torch.device("cuda", index)
    if name not in ("auto", "cpu"):
        raise WorldJepaError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device("cpu")


def autocast(device: Any, precision: str):  # -> a context manager
    """The context a model computes in: ``"bf16"``, torch's autocast to bfloat16 on ``device``'s
    type (``cpu`` or ``cuda``: matrix products and convolutions in bf16, reductions and the
    weights in float32); ``"float32"``, nothing changes."""
    import contextlib

    import torch

    from .errors import ConfigError

    if precision == "float32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ConfigError(f"unknown precision {precision!r}; choose float32 or bf16")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
