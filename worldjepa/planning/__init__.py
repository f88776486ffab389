"""Planners that search action sequences against a latent cost, and MPC around them.

Every planner takes a cost function ``(B, S, H, A) -> (B, S)`` and an initial guess
``(B, H, A)`` and returns a :class:`PlanResult`. ``make_planner("cem", low=-1, high=1)``
builds one by name.
"""

from __future__ import annotations

from typing import Any

from .base import BasePlanner, PlanResult
from .cem import CEM
from .cem_gd import CEMGD
from .cost import LatentCost, MeanCost, latent_cost, make_latent_cost
from .gradient import GradientPlanner
from .icem import ICEM, colored_noise
from .mpc import MPC
from .mppi import MPPI

PLANNERS: dict[str, type] = {"cem": CEM, "icem": ICEM, "mppi": MPPI, "gd": GradientPlanner,
                             "cem_gd": CEMGD}


def make_planner(name: str, **kwargs: Any) -> BasePlanner | CEMGD:
    """Build the planner registered as ``name`` with its keyword arguments.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    try:
        cls = PLANNERS[name]
    except KeyError:
        raise ValueError(f"unknown planner {name!r}; valid names: "
                         f"{', '.join(sorted(PLANNERS))}") from None
    return cls(**kwargs)


__all__ = ["BasePlanner", "PlanResult", "CEM", "ICEM", "MPPI", "GradientPlanner", "CEMGD",
           "MPC", "PLANNERS", "make_planner", "LatentCost", "MeanCost", "latent_cost", "make_latent_cost", "colored_noise"]
