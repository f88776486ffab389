"""Probes of frozen embeddings: what do they know, and have they collapsed?

The probes themselves are pure functions in :mod:`worldjepa.metrics` (``linear_r2``,
``linear_accuracy``, ``knn_accuracy``, ``rankme``); :func:`evaluate_encoder` runs them all on a
LeJEPA encoder and a dataset's train (fit) and test (score) frames, and :func:`format_table`
prints its result (both live with the encoder model, in :mod:`worldjepa.encoder_model`).
"""

from __future__ import annotations

from ..encoder_model import evaluate_encoder, format_table
from ..metrics import knn_accuracy, linear_accuracy, linear_r2, rankme

__all__ = ["evaluate_encoder", "format_table", "knn_accuracy", "linear_accuracy", "linear_r2", "rankme"]
