"""Pairwise accuracy and AUROC on hand-made scores with known values."""

import numpy as np
import pytest

from worldjepa.physics.metrics import after_event, auroc, pairwise_accuracy, score_pairs


def test_separated_scores_give_one_and_reversed_ones_zero():
    low, high = np.array([0.1, 0.2, 0.3]), np.array([0.4, 0.5, 0.9])
    assert auroc(low, high) == 1.0 and pairwise_accuracy(low, high) == 1.0
    assert auroc(high, low) == 0.0 and pairwise_accuracy(high, low) == 0.0


def test_ties_count_one_half():
    same = np.full(4, 2.0)
    assert auroc(same, same) == 0.5 and pairwise_accuracy(same, same) == 0.5


def test_a_mixed_case_by_hand():
    # positives 2 and 4 against negatives 1, 2, 3: 2 beats 1, ties 2, loses to 3; 4 beats all -> 4.5 / 6
    assert auroc(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])) == pytest.approx(0.75)
    # pairs (possible, impossible): (1, 2) won, (3, 3) tied, (5, 4) lost -> 1.5 / 3
    assert pairwise_accuracy(np.array([1.0, 3.0, 5.0]), np.array([2.0, 3.0, 4.0])) == pytest.approx(0.5)


def test_auroc_is_the_mann_whitney_statistic():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    neg, pos = rng.integers(0, 6, 40).astype(float), rng.integers(2, 8, 30).astype(float)  # many ties
    u = stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
    assert auroc(neg, pos) == pytest.approx(u / (len(pos) * len(neg)))


def test_after_event_reads_only_the_steps_that_can_see_the_event():
    steps, s = np.arange(2, 10), np.array([9.0, 9.0, 1.0, 2.0, 6.0, 3.0, np.nan, 4.0])
    assert after_event(s, steps, 4) == 6.0  # steps 4..9: 1, 2, 6, 3, (nan), 4
    assert after_event(s, steps, 4, "mean") == pytest.approx(16 / 5)
    assert np.isnan(after_event(s, steps, 12))


def test_score_pairs_reports_max_and_mean_per_violation():
    steps = np.arange(5)
    possible = [np.array([1.0, 1, 1, 1, 1]), np.array([1.0, 1, 1, 5, 1])]
    impossible = [np.array([1.0, 1, 4, 1, 1]), np.array([1.0, 1, 1, 4, 4])]
    out = score_pairs(possible, impossible, [steps, steps], [2, 2])
    assert out["pairs"] == 2
    assert out["pairwise_max"] == 0.5  # pair 0: 4 > 1; pair 1: 4 < 5
    assert out["pairwise_mean"] == 1.0  # 2 > 1 and 3 > 7/3
    assert out["auroc_max"] == pytest.approx(0.5)  # 4, 4 against 1, 5


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError):
        pairwise_accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        auroc(np.zeros(0), np.zeros(2))
