"""TensorBoard, opt-in (``--tensorboard`` on ``train``, ``pretrain`` and ``eval``).

``pip install 'worldjepa[tensorboard]'`` installs it; ``metrics.jsonl`` and the results JSON
hold every number with or without it. The writer is torch's ``SummaryWriter``: scalars are
namespaced as in ``metrics.jsonl`` (``train/…``, ``val/…``, ``probe/…``, ``eval/…``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError

INSTALL_HINT = "pip install 'worldjepa[tensorboard]'"


def tensorboard_writer(logdir: str | Path) -> Any:
    """A ``torch.utils.tensorboard.SummaryWriter`` on ``logdir``; a one-line error naming the
    extra to install when the ``tensorboard`` package is missing."""
    try:
        import tensorboard  # noqa: F401  (torch's writer needs it, and says so less plainly)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}") from None
    return SummaryWriter(str(logdir))


def require_tensorboard() -> None:
    """Raise the same error as :func:`tensorboard_writer` before any work, when it would fail."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}")
