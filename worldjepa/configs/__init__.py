"""Every option of every command, and the one table of presets. Torch-free.

Each command's options are one frozen dataclass whose fields carry their help text; the CLI
builds its flags from these fields (nested ones included: ``ModelConfig.encoder`` gives
``--encoder``, ``--encoder-dim``, ...), so ``--help``, YAML files, ``key=value`` overrides,
the Python API and the JSON saved beside every artefact all speak the same names. Checks
live in ``__post_init__``. Importing this module loads no torch: ``worldjepa --help`` stays
fast.

One place where an option is defined, documented and range-checked, read as a table: the
model (``model.py``), the agent (``agent.py``), the training commands (``training.py``) and
the other commands with the presets (``commands.py``). The machinery (flags, YAML, aliases) is :mod:`worldjepa.config`.
"""

from .agent import PLANNER_OPTIONS, AgentConfig, PlannerConfig, split_agent_options
from .commands import (DEFAULT_EPISODES, PRESETS, CollectConfig, EvalConfig, MemoryBuildConfig, PhysicsConfig,
                       PlanConfig, ProbeConfig)
from .model import TRANSFORMER_SIZES, EncoderConfig, ModelConfig, parse_proprio
from .training import PretrainConfig, TrainConfig

__all__ = ["AgentConfig", "CollectConfig", "DEFAULT_EPISODES", "EncoderConfig", "EvalConfig", "MemoryBuildConfig",
           "ModelConfig", "PLANNER_OPTIONS", "PRESETS", "PhysicsConfig", "PlanConfig", "PlannerConfig", "PretrainConfig",
           "ProbeConfig", "TRANSFORMER_SIZES", "TrainConfig", "parse_proprio", "split_agent_options"]
