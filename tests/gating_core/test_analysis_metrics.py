"""Known-answer tests of the analysis computations: OOD metrics, correlations, tables and comparisons."""

from __future__ import annotations

import numpy as np
import pytest

from gating_core.analysis.compare import compare_skip_decisions
from gating_core.analysis.difficulty import gate_difficulty_correlations, skip_rate_by_decile, spearman
from gating_core.analysis.distributions import gate_histogram, mean_gate_by_class, skip_rate_by_class
from gating_core.analysis.ood import DetectorScores, auroc, average_ranks, compare_detectors, fpr_at_tpr
from gating_core.analysis.seeds import summarise_by_lambda

# AUROC


def test_auroc_perfect_separation():
    assert auroc([1, 2, 3, 4], [-1, 0, 0.5]) == 1.0


def test_auroc_reversed_separation():
    assert auroc([-1, 0], [1, 2, 3]) == 0.0


def test_auroc_counts_pairs():
    # Pairs (positive, negative): (3,2) (3,0) (1,0) are ordered, (1,2) is not: 3 of 4.
    assert auroc([3, 1], [2, 0]) == 0.75


def test_auroc_ties_count_half():
    assert auroc([0.5, 0.5], [0.5, 0.5, 0.5]) == 0.5
    # (1 vs 1) is a tie, (1 vs 0) ordered, (2 vs 1) and (2 vs 0) ordered: (0.5 + 3) / 4.
    assert auroc([1, 2], [1, 0]) == 0.875


def test_auroc_matches_pair_count_on_random_ties():
    rng = np.random.default_rng(0)
    positive = rng.integers(0, 5, size=40).astype(float)
    negative = rng.integers(0, 5, size=30).astype(float)
    greater = (positive[:, None] > negative[None, :]).sum()
    equal = (positive[:, None] == negative[None, :]).sum()

    assert auroc(positive, negative) == pytest.approx((greater + 0.5 * equal) / (40 * 30))


def test_average_ranks_share_ties():
    assert average_ranks(np.array([10.0, 20.0, 10.0, 30.0])).tolist() == [1.5, 3.0, 1.5, 4.0]


def test_auroc_rejects_nan_and_empty():
    with pytest.raises(ValueError, match="positive must contain only finite scores"):
        auroc([1.0, float("nan")], [0.0])
    with pytest.raises(ValueError, match="negative must be a non-empty 1-D array"):
        auroc([1.0], [])


# FPR at 95% TPR


def test_fpr_at_tpr_known_threshold():
    positive = np.arange(1, 21, dtype=float)  # 20 positives: t = 2 accepts 19 of them, 95%
    negative = [0.0, 1.5, 2.0, 5.0]  # 2.0 and 5.0 pass t = 2

    assert fpr_at_tpr(positive, negative) == 0.5


def test_fpr_at_tpr_ties_accepted_together():
    # Every positive ties at 1, so the threshold is 1 and the tied negative passes too.
    assert fpr_at_tpr([1.0] * 20, [1.0, 0.0]) == 0.5


def test_fpr_at_tpr_perfect_and_worst():
    assert fpr_at_tpr([5, 6, 7], [1, 2, 3]) == 0.0
    assert fpr_at_tpr([1, 2, 3], [5, 6, 7]) == 1.0


def test_fpr_at_tpr_needs_enough_positives():
    # With 10 positives, 95% needs all 10: t = 1, which the negatives 1.0 and 9.0 pass.
    positive = np.arange(1, 11, dtype=float)
    assert fpr_at_tpr(positive, [0.5, 1.0, 9.0, 0.0]) == 0.5
    # At 90% TPR nine positives suffice: t = 2.
    assert fpr_at_tpr(positive, [0.5, 1.0, 9.0, 0.0], tpr=0.9) == 0.25


def test_fpr_at_tpr_rejects_bad_tpr():
    with pytest.raises(ValueError, match=r"tpr must be in \(0, 1\]; received 1.5"):
        fpr_at_tpr([1.0], [0.0], tpr=1.5)


def test_compare_detectors_orients_scores():
    # In-distribution images skip (low g) and are confident; OOD images use the stage.
    inside = DetectorScores(gate=np.array([0.1, 0.2]), confidence=np.array([0.9, 0.8]), energy=np.array([-9.0, -8.0]))
    outside = DetectorScores(gate=np.array([0.8, 0.9]), confidence=np.array([0.3, 0.4]), energy=np.array([-2.0, -1.0]))

    rows = {row["detector"]: row for row in compare_detectors(inside, outside)}

    assert list(rows) == ["gate", "msp", "energy"]
    for row in rows.values():
        assert row["auroc"] == 1.0
        assert row["fpr_at_tpr"] == 0.0


def test_compare_detectors_without_gate():
    inside = DetectorScores(gate=None, confidence=np.array([0.9]), energy=np.array([-9.0]))
    outside = DetectorScores(gate=None, confidence=np.array([0.3]), energy=np.array([-2.0]))

    assert [row["detector"] for row in compare_detectors(inside, outside)] == ["msp", "energy"]


# Spearman correlation


def test_spearman_monotonic_rankings():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])

    assert spearman(x, x**3).rho == pytest.approx(1.0)
    assert spearman(x, -x).rho == pytest.approx(-1.0)


def test_spearman_known_value():
    # Ranks of y: 2, 1, 4, 3, 5; d = (1, -1, 1, -1, 0); rho = 1 - 6 * 4 / (5 * 24) = 0.8.
    assert spearman(np.array([1, 2, 3, 4, 5.0]), np.array([20, 10, 40, 30, 50.0])).rho == pytest.approx(0.8)


def test_spearman_drops_nan_pairs():
    result = spearman(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), np.array([1.0, 2.0, 5.0, 3.0, np.nan]))

    assert result.count == 3
    assert result.rho == pytest.approx(1.0)


def test_spearman_undefined_for_constant_column():
    result = spearman(np.array([1.0, 2.0, 3.0]), np.array([7.0, 7.0, 7.0]))

    assert result.rho is None
    assert result.p_value is None
    assert result.count == 3


def test_gate_difficulty_correlations_signs():
    gate = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    loss = np.array([0.01, 0.05, 0.1, 1.0, 2.0])
    correct = np.array([True, True, True, False, False])

    result = gate_difficulty_correlations(gate, loss, correct)

    assert result["loss"].rho == pytest.approx(1.0)
    assert result["misclassified"].rho > 0.8


# Skip rate by decile


def test_skip_rate_by_decile_table():
    scores = np.arange(1, 101, dtype=float)  # decile d holds scores 10(d-1)+1 .. 10d
    gate = np.where(scores <= 30, 0.1, 0.9)  # the three lowest deciles skip
    gate[scores == 35] = 0.2  # one image of decile 4 skips

    rows = skip_rate_by_decile(scores, gate, threshold=0.5)

    assert [row["decile"] for row in rows] == list(range(1, 11))
    assert [row["count"] for row in rows] == [10] * 10
    assert [row["skip_rate"] for row in rows] == [1.0, 1.0, 1.0, 0.1, 0, 0, 0, 0, 0, 0]
    assert rows[0]["score_from"] == 1.0
    assert rows[-1]["score_to"] == 100.0
    assert rows[3]["mean_gate"] == pytest.approx((9 * 0.9 + 0.2) / 10)


def test_skip_rate_by_decile_keeps_ties_together():
    scores = np.array([0.0] * 50 + list(range(1, 51)), dtype=float)
    gate = np.zeros(100)

    rows = skip_rate_by_decile(scores, gate, threshold=0.5)

    assert sum(row["count"] for row in rows) == 100
    tied_rows = [row for row in rows if row["score_to"] == 0.0 and row["count"]]
    assert all(row["score_from"] == 0.0 for row in tied_rows)
    assert max(row["count"] for row in rows) >= 50
    assert any(row["count"] == 0 and row["skip_rate"] is None for row in rows)


def test_skip_rate_by_decile_ignores_missing_scores():
    scores = np.array([np.nan] * 5 + list(range(20)), dtype=float)
    rows = skip_rate_by_decile(scores, np.ones(25), threshold=0.5)

    assert sum(row["count"] for row in rows) == 20


# Distributions


def test_gate_histogram_splits_correct_and_wrong():
    gate = np.array([0.0, 0.05, 0.55, 1.0, np.nan])
    correct = np.array([True, False, True, False, True])

    histogram = gate_histogram(gate, correct, bins=10)

    assert len(histogram["edges"]) == 11
    assert histogram["correct"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert histogram["wrong"] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]


def test_skip_rate_by_class_table():
    labels = np.array([0, 0, 1, 1, 1])
    gate = np.array([0.1, 0.9, 0.2, 0.3, 0.7])
    correct = np.array([True, False, True, True, True])

    rows = skip_rate_by_class(labels, gate, correct, 0.5, ["cat", "dog", "frog"])

    assert [row["count"] for row in rows] == [2, 3, 0]
    assert rows[0]["skip_rate"] == 0.5
    assert rows[1]["skip_rate"] == pytest.approx(2 / 3)
    assert rows[0]["accuracy"] == 0.5
    assert rows[2]["skip_rate"] is None


def test_mean_gate_by_class_matrix():
    labels = np.array([0, 0, 2])
    matrix = np.array([[0.0, 1.0], [0.5, 1.0], [0.2, 0.4]])

    means = mean_gate_by_class(labels, matrix, 3)

    assert means.shape == (2, 3)
    assert means[:, 0].tolist() == [0.25, 1.0]
    assert np.isnan(means[:, 1]).all()
    assert means[:, 2].tolist() == pytest.approx([0.2, 0.4])


def test_mean_gate_by_class_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must be from 0 to 1"):
        mean_gate_by_class(np.array([0, 2]), np.zeros((2, 1)), 2)


# Seeds table


def test_summarise_by_lambda_over_seeds():
    runs = [
        {"gate_loss_weight": 0.1, "status": "succeeded", "test_accuracy": 0.90, "train_loss": 0.2, "mean_gate": 0.4, "skip_rate": 0.6},
        {"gate_loss_weight": 0.1, "status": "succeeded", "test_accuracy": 0.92, "train_loss": 0.4, "mean_gate": 0.6, "skip_rate": 0.4},
        {"gate_loss_weight": 0.1, "status": "succeeded", "test_accuracy": 0.97, "train_loss": 0.3, "mean_gate": 0.5, "skip_rate": 0.5},
        {"gate_loss_weight": 0.1, "status": "failed", "test_accuracy": None, "train_loss": None, "mean_gate": None, "skip_rate": None},
        {"gate_loss_weight": 0.001, "status": "succeeded", "test_accuracy": 0.8, "train_loss": 0.1, "mean_gate": None, "skip_rate": None},
    ]

    rows = summarise_by_lambda(runs)

    assert [row["lambda"] for row in rows] == [0.001, 0.1]
    assert rows[0]["std_test_accuracy"] is None
    assert rows[0]["mean_gate"] is None
    assert rows[1]["runs"] == 4
    assert rows[1]["finished"] == 3
    assert rows[1]["mean_test_accuracy"] == pytest.approx(0.93)
    assert rows[1]["median_test_accuracy"] == pytest.approx(0.92)
    assert rows[1]["std_test_accuracy"] == pytest.approx(np.std([0.90, 0.92, 0.97], ddof=1))
    assert rows[1]["mean_train_loss"] == pytest.approx(0.3)


# Comparing two runs


def test_compare_skip_decisions_matches_by_index():
    comparison = compare_skip_decisions(
        indices_a=np.array([5, 1, 2, 3]),
        gate_a=np.array([0.1, 0.2, 0.9, 0.8]),
        indices_b=np.array([1, 2, 3, 7]),
        gate_b=np.array([0.3, 0.1, 0.9, 0.0]),
        threshold=0.5,
    )

    assert comparison.common == 3
    assert comparison.indices.tolist() == [2]
    assert comparison.gate_a.tolist() == [0.9]
    assert comparison.gate_b.tolist() == [0.1]
    assert comparison.skipped_by_both == 1
    assert comparison.skipped_by_a_only == 0
    assert comparison.skipped_by_b_only == 1
