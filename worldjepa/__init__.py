"""worldjepa: JEPA world models that learn physics from reward-free recordings and plan.

``import worldjepa`` is cheap: torch and the rest load when first used.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "Dataset", "WindowDataset", "make_env", "collect", "CollectConfig", "Agent",
           "AgentConfig", "PlannerConfig", "History", "load_checkpoint", "load_world_model", "MemoryStore",
           "physics"]

_LAZY = {
    "Dataset": ("worldjepa.data.dataset", "Dataset"),
    "WindowDataset": ("worldjepa.data.windows", "WindowDataset"),
    "make_env": ("worldjepa.envs.adapter", "make_env"),
    "collect": ("worldjepa.data.collect", "collect"),
    "CollectConfig": ("worldjepa.configs", "CollectConfig"),
    "AgentConfig": ("worldjepa.configs", "AgentConfig"),
    "PlannerConfig": ("worldjepa.configs", "PlannerConfig"),
    "Agent": ("worldjepa.agent", "Agent"),
    "History": ("worldjepa.agent", "History"),
    "load_checkpoint": ("worldjepa.world_model", "load_world_model"),
    "load_world_model": ("worldjepa.world_model", "load_world_model"),
    "MemoryStore": ("worldjepa.memory", "MemoryStore"),
}
_SUBPACKAGES = {"physics"}  # worldjepa.physics.surprise(...) after a plain `import worldjepa`


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'worldjepa' has no attribute {name!r}")
