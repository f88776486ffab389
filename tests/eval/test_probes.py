"""Probes on synthetic embeddings whose answers are known."""

import numpy as np
import pytest
import torch

from worldjepa.errors import WorldJepaError
from worldjepa.eval.probes import format_table, knn_accuracy, linear_accuracy, linear_r2, rankme


def test_linear_r2_is_one_for_a_linear_target_and_zero_for_noise():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(800, 16))
    y = z @ rng.normal(size=(16, 3)) + 0.01 * rng.normal(size=(800, 3))
    zt, yt, zs, ys = z[:400], y[:400], z[400:], y[400:]
    r = linear_r2(zt, yt, zs, ys)
    assert r["r2"] > 0.999 and len(r["r2_per_target"]) == 3
    noise = rng.normal(size=(800, 2))
    r = linear_r2(zt, noise[:400], zs, noise[400:])
    assert abs(r["r2"]) < 0.1
    # torch inputs give the same answer
    assert linear_r2(torch.as_tensor(zt), torch.as_tensor(yt), torch.as_tensor(zs), torch.as_tensor(ys))["r2"] == pytest.approx(
        linear_r2(zt, yt, zs, ys)["r2"])


def test_accuracies_on_separable_clusters_and_on_shuffled_labels():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 8)) * 10
    labels = rng.integers(0, 4, 800)
    z = centres[labels] + rng.normal(size=(800, 8))
    zt, lt, zs, ls = z[:400], labels[:400], z[400:], labels[400:]
    assert knn_accuracy(zt, lt, zs, ls) == 1.0
    assert linear_accuracy(zt, lt, zs, ls) == 1.0
    shuffled = rng.permutation(labels)
    assert knn_accuracy(zt, shuffled[:400], zs, shuffled[400:]) < 0.45  # chance is 0.25
    assert linear_accuracy(zt, shuffled[:400], zs, shuffled[400:]) < 0.45


def test_rankme_of_rank_one_and_isotropic_embeddings():
    rng = np.random.default_rng(2)
    rank1 = np.outer(rng.normal(size=2000), rng.normal(size=32))
    assert rankme(rank1) < 1.05
    iso = rng.normal(size=(4000, 32))
    assert 0.9 * 32 < rankme(iso) <= 32
    two = np.concatenate([rng.normal(size=(2000, 2)), np.zeros((2000, 30))], 1)
    assert 1.8 < rankme(two) < 2.05


def test_probe_input_errors():
    z = np.zeros((10, 4))
    with pytest.raises(WorldJepaError, match="targets"):
        linear_r2(z, np.zeros((9, 1)), z, np.zeros((10, 1)))
    with pytest.raises(WorldJepaError, match="differ in shape"):
        knn_accuracy(z, np.zeros(10, int), np.zeros((10, 5)), np.zeros(10, int))


def test_format_table_lists_every_metric():
    table = format_table({"eval/r2": 0.91234, "eval/r2_per_target": [0.9, 0.92], "eval/n_test": 5})
    lines = table.splitlines()
    assert lines[0] == "| metric | value |" and len(lines) == 5
    assert "| eval/r2 | 0.9123 |" in lines and "| eval/n_test | 5 |" in lines
