"""The ``--minutes`` budget: how many steps fit, from the speed measured so far.

A run with ``--minutes M`` fixes its step count from the mean speed of its first
:data:`CALIBRATION_STEPS` steps, re-estimates it every as many steps during the first 60%
of the budget (a shared CPU's speed swings 10x within minutes; the mean is the steadier
guess), never goes past ``--steps``, and stops once 110% of the budget is spent. Under
``torchrun`` rank 0's estimate is broadcast, so every rank runs the same number of steps.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)
CALIBRATION_STEPS = 20  # with --minutes, the step count is fixed after timing this many steps


class MinutesBudget:
    """The step count of a run with ``minutes`` > 0 (``minutes`` 0: ``max_steps``, never changed).

    ``reserve``: the fraction of a step's time to keep free per step (e.g. for validation).
    ``calibrated`` is saved with the run and restored on resume."""

    def __init__(self, minutes: float, max_steps: int, reserve: float = 0.0, world: int = 1) -> None:
        self.minutes, self.max_steps, self.reserve, self.world = minutes, max_steps, reserve, world
        self.calibrated = minutes <= 0
        self.mark = (0, 0.0)  # (step, elapsed seconds) the speed is measured from

    def start(self, step: int, elapsed: float) -> None:
        """Measure the speed from here (the start of this process's steps: a resume's too)."""
        self.mark = (step, elapsed)

    def update(self, step: int, elapsed: float, total: int) -> int | None:
        """After step ``step`` (``elapsed`` seconds into the run, ``total`` steps planned): the new
        step count when it changed or was re-estimated, else None."""
        if self.minutes <= 0:
            return None
        if elapsed > 66 * self.minutes and total > step:
            logger.warning("over the --minutes budget; stopping at step %d", step)
            return step
        if step % CALIBRATION_STEPS or (self.calibrated and elapsed >= 36 * self.minutes):
            return None
        return self._estimate(step, elapsed)

    def _estimate(self, step: int, elapsed: float) -> int:
        per_step = (elapsed - self.mark[1]) / max(1, step - self.mark[0])
        total = step + int((self.minutes * 60 - elapsed) / per_step)
        total = int(total / (1 + self.reserve))
        t = torch.tensor([max(min(step + 1, self.max_steps), min(self.max_steps, total))])  # never past --steps
        if self.world > 1:
            torch.distributed.broadcast(t, 0)
        self.calibrated = True
        logger.debug("%.2f s/step -> %d steps fit in %.1f minutes", per_step, int(t), self.minutes)
        return int(t)
