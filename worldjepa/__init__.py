"""worldjepa: JEPA world models that learn physics from reward-free recordings and plan.

``import worldjepa`` is cheap: torch and the rest load when first used. It also registers
the built-in environments with Gymnasium (``gymnasium.make("worldjepa/TwoRoom-v0")``)
without importing Gymnasium: see :func:`_register_envs_with_gymnasium`.
"""

from __future__ import annotations

import sys
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


class _RegisterOnImport:
    """A one-shot ``sys.meta_path`` finder: when ``gymnasium`` is first imported, it lets the
    normal finders locate it and runs :func:`worldjepa.envs.register` right after the
    module's body has run."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "gymnasium":
            return None
        import importlib.util

        sys.meta_path.remove(self)  # one shot; and find_spec below must not come back here
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_body = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_body(module)
            _register_now()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's loader only
        return spec


def _register_now() -> None:
    if "worldjepa.envs" in sys.modules:  # imported, or being imported: it registers the ids itself
        return
    from .envs import register

    register()


def _register_envs_with_gymnasium() -> None:
    """Make the built-in ids known to Gymnasium, keeping ``import worldjepa`` free of it.

    Gymnasium >= 1.0 no longer reads plugin entry points, and importing it (numpy included)
    would cost ``worldjepa --help`` ~0.15 s. So: if Gymnasium is already imported, register
    now (cheap: the ids point at their classes by entry-point strings); otherwise register
    the moment it is imported. ``gymnasium.make("worldjepa:worldjepa/TwoRoom-v0")``
    (Gymnasium's own "import this module first" form) works as well.
    """
    if "gymnasium" in sys.modules:
        _register_now()
    elif not any(isinstance(f, _RegisterOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


_register_envs_with_gymnasium()
