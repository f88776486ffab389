"""An agent's options: its config from flat keywords, and how a model's latent is weighed in the cost."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..config import deep_merge, from_dict, normalize, to_dict
from ..configs import AgentConfig, split_agent_options
from ..errors import WorldJepaError

__all__ = ["agent_config", "cost_scale"]


def agent_config(config: AgentConfig | None = None, planner: str | None = None, **options: Any) -> AgentConfig:
    """An :class:`AgentConfig` from a base config, a planner name and flat options (``horizon=8``,
    ``samples=500``, ``seed=1``: planner options go to ``planner``); unknown names are errors."""
    flat = dict(options, **({"planner": planner} if planner is not None else {}))
    base = normalize(AgentConfig, to_dict(config or AgentConfig()))
    return from_dict(AgentConfig, deep_merge(base, normalize(AgentConfig, split_agent_options(flat))))


def cost_scale(m: Any, i: int, cfg: AgentConfig, device: torch.device) -> Tensor | None:
    """Model ``i``'s per-dimension scale of the latent in the cost: ``None`` (all 1), or a part
    weighted ``w`` scaled by ``sqrt(w)`` under MSE (``w`` under L1), so that it weighs ``w`` in the mean."""
    parts = []
    if cfg.proprio_weight != 1.0 and m.proprio:
        parts.append((slice(m.visual_dim, m.latent_dim), cfg.proprio_weight))
    if cfg.keypoint_weight != 1.0:
        n_kp = int(getattr(m.encoder, "keypoints", 0))
        if not n_kp or getattr(m.projector, "layers", None) != 0:
            raise WorldJepaError(
                f"keypoint_weight needs a latent that holds the encoder's keypoints (a cnn encoder trained with "
                f"keypoints and --projector-layers 0); model {i} has {n_kp} keypoints and "
                f"{getattr(m.projector, 'layers', '?')} projector layers")
        parts.append((slice(m.visual_dim - 2 * n_kp, m.visual_dim), cfg.keypoint_weight))
    if not parts:
        return None
    scale = torch.ones(m.latent_dim, device=device)
    power = 0.5 if cfg.metric == "mse" else 1.0
    for where, w in parts:
        scale[where] = float(w) ** power
    return scale
