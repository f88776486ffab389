"""Understanding the physical world, measured: surprise at impossible events.

* :func:`surprise` (``worldjepa.physics.surprise(run_or_model, frames, actions)``): a world
  model's per-step surprise along a clip;
* :mod:`~worldjepa.physics.voe`: matched possible / impossible clip pairs from the built-in
  envs (teleportation, solidity, permanence, continuity, constancy), made by the scenes of
  :mod:`~worldjepa.physics.scenes`;
* :mod:`~worldjepa.physics.metrics`: pairwise accuracy and AUROC of surprise on those pairs;
* :mod:`~worldjepa.physics.benchmark`: the ``worldjepa physics`` evaluation with its controls
  (:mod:`~worldjepa.physics.plots` draws its figure).
"""

from .surprise import surprise

__all__ = ["surprise"]
