"""Understanding the physical world, measured: surprise at impossible events, and probes.

* :func:`surprise` (``worldjepa.physics.surprise(run_or_model, frames, actions)``): a world
  model's per-step surprise along a clip;
* :mod:`~worldjepa.physics.voe`: matched possible / impossible clip pairs from the built-in
  envs (teleportation, solidity, permanence, continuity, constancy; gravity and collisions
  on Balls), made by the scenes of :mod:`~worldjepa.physics.scenes`,
  :mod:`~worldjepa.physics.reacher` and :mod:`~worldjepa.physics.balls`;
* :mod:`~worldjepa.physics.metrics`: pairwise accuracy and AUROC of surprise on those pairs;
* :mod:`~worldjepa.physics.benchmark`: the ``worldjepa physics`` evaluation with its controls
  (the untrained architecture, pixel difference, a pixel-space predictor);
* :mod:`~worldjepa.physics.forecast`: an action-free world model's forecasts 1..H steps ahead
  against copy-last, the mean embedding and a pixel-space predictor;
* :mod:`~worldjepa.physics.probes`: ``worldjepa probe``, linear and MLP probes of physical
  quantities from frozen embeddings (:mod:`~worldjepa.physics.plots` draws both figures).
"""

from .surprise import surprise

__all__ = ["surprise"]
