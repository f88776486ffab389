"""Understanding the physical world, measured.

* :func:`surprise` (``worldjepa.physics.surprise(run_or_model, frames, actions)``): a world
  model's per-step surprise along a clip.
"""

from .surprise import surprise

__all__ = ["surprise"]
