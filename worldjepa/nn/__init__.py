"""Neural-network parts of the world model: encoders, projector heads and predictors.

Shapes: frames ``(B, 3, H, W)`` in [0, 1]; embeddings ``(B, D)`` / ``(B, T, D)``; actions
``(B, T, A)``; planner candidates ``(B, S, H, A)``. See ``docs/models.md``.
"""

from worldjepa.nn._checks import ShapeError
from worldjepa.nn.encoders import ENCODERS, CNNEncoder, ViTTiny, build_encoder, encoder_from_config, frames_to_float
from worldjepa.nn.external import ExternalEncoder, trust_module
from worldjepa.nn.heads import ActionEncoder, InverseHead, ProprioEncoder, Projector
from worldjepa.nn.predictors import (
    PREDICTORS,
    PRESETS,
    GRUPredictor,
    MLPPredictor,
    build_predictor,
)
from worldjepa.nn.transformer import TransformerPredictor

__all__ = [
    "ENCODERS",
    "PREDICTORS",
    "PRESETS",
    "ActionEncoder",
    "CNNEncoder",
    "ExternalEncoder",
    "GRUPredictor",
    "InverseHead",
    "MLPPredictor",
    "ProprioEncoder",
    "Projector",
    "ShapeError",
    "TransformerPredictor",
    "ViTTiny",
    "build_encoder",
    "build_predictor",
    "encoder_from_config",
    "frames_to_float",
    "trust_module",
]
