"""Objectives: the prediction error, SIGReg and LeJEPA, VICReg as a baseline.

Each loss is a small function or ``nn.Module``; the multi-term ones return a dict with a
``"loss"`` entry and named terms for logging (never ``.item()`` inside).
"""

from worldjepa.losses.lejepa import lejepa_loss
from worldjepa.losses.prediction import prediction_error
from worldjepa.losses.sigreg import SequenceSIGReg, SIGReg, SIGRegError, epps_pulley
from worldjepa.losses.vicreg import SequenceVICReg, VICReg

__all__ = ["SIGReg", "SIGRegError", "SequenceSIGReg", "SequenceVICReg", "VICReg", "epps_pulley", "lejepa_loss",
           "prediction_error"]
