"""Evaluation: the held-out planning protocol, metrics, probes of embeddings, media."""
