"""Self-supervised objectives: SIGReg and LeJEPA, VICReg as a baseline.

Each loss is a small function or ``nn.Module``; the multi-term ones return a dict with a
``"loss"`` entry and named terms for logging (never ``.item()`` inside).
"""

from worldjepa.losses.lejepa import lejepa_loss
from worldjepa.losses.sigreg import SIGReg, SIGRegError, epps_pulley
from worldjepa.losses.vicreg import VICReg

__all__ = ["SIGReg", "SIGRegError", "VICReg", "epps_pulley", "lejepa_loss"]
