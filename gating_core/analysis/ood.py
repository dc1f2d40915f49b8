"""Out-of-distribution detection metrics: AUROC and the false positive rate at 95% true positive rate.

In-distribution images are the positives. Every score follows one convention:
a higher score means "more in-distribution". The three detectors compared are

- gate: 1 - g. Easy, in-distribution images are expected to skip the gated
  computation (low g), and unfamiliar images to use it (high g).
- msp: the maximum softmax probability (Hendrycks and Gimpel, ICLR 2017).
- energy: -E(x) = logsumexp of the logits (Liu et al., NeurIPS 2020). The stored
  per-sample energy is E(x) = -logsumexp, so the score is its negative.

An AUROC below 0.5 means that the detector ranks the two sets the wrong way
round, for example when out-of-distribution images get lower gate values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The true positive rate at which the false positive rate is reported, as in
# Hendrycks and Gimpel (ICLR 2017) and Liu et al. (NeurIPS 2020).
DEFAULT_TPR = 0.95


def _check_scores(name: str, values: np.ndarray | list[float]) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of scores; received shape {scores.shape}")
    if not np.isfinite(scores).all():
        bad = int((~np.isfinite(scores)).sum())
        raise ValueError(f"{name} must contain only finite scores; received {bad} NaN or infinite values")
    return scores


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Rank values from 1 upwards, giving tied values the mean of the ranks they share."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # The tie group of the k-th smallest unique value covers ranks start+1 .. start+count.
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    group_ranks = starts + (counts + 1) / 2.0
    return group_ranks[inverse]


def auroc(positive: np.ndarray | list[float], negative: np.ndarray | list[float]) -> float:
    """Compute the area under the ROC curve of scores where positives should score higher.

    This is the Mann-Whitney statistic: the probability that a random positive
    scores above a random negative, with a tie counting one half.
    """
    positives = _check_scores("positive", positive)
    negatives = _check_scores("negative", negative)
    ranks = average_ranks(np.concatenate((positives, negatives)))
    positive_rank_sum = ranks[: positives.size].sum()
    count_p = positives.size
    u_statistic = positive_rank_sum - count_p * (count_p + 1) / 2.0
    return float(u_statistic / (count_p * negatives.size))


def fpr_at_tpr(
    positive: np.ndarray | list[float], negative: np.ndarray | list[float], tpr: float = DEFAULT_TPR
) -> float:
    """Return the fraction of negatives accepted at the highest threshold that accepts `tpr` of the positives.

    A score s is accepted at threshold t when s >= t. Thresholds are the observed
    scores, so tied scores are always accepted or rejected together.
    """
    if not 0.0 < tpr <= 1.0:
        raise ValueError(f"tpr must be in (0, 1]; received {tpr!r}")
    positives = np.sort(_check_scores("positive", positive))
    negatives = np.sort(_check_scores("negative", negative))
    thresholds = np.unique(np.concatenate((positives, negatives)))

    accepted_positives = positives.size - np.searchsorted(positives, thresholds, side="left")
    true_positive_rates = accepted_positives / positives.size
    # TPR falls as the threshold rises, so the last threshold that reaches `tpr` is the highest one.
    # The smallest threshold accepts every positive, so one always exists.
    highest = np.nonzero(true_positive_rates >= tpr - 1e-12)[0].max()
    accepted_negatives = negatives.size - np.searchsorted(negatives, thresholds[highest], side="left")
    return float(accepted_negatives / negatives.size)


@dataclass(frozen=True)
class DetectorScores:
    """Per-image values of one evaluation that the detectors read."""

    gate: np.ndarray | None
    confidence: np.ndarray
    energy: np.ndarray

    def in_distribution_scores(self) -> dict[str, np.ndarray]:
        """Return each detector's score, higher meaning more in-distribution."""
        scores = {"msp": np.asarray(self.confidence, dtype=np.float64), "energy": -np.asarray(self.energy, dtype=np.float64)}
        if self.gate is not None:
            scores = {"gate": 1.0 - np.asarray(self.gate, dtype=np.float64), **scores}
        return scores


DETECTOR_DESCRIPTIONS = {
    "gate": "1 - g: a low gate value counts as in-distribution",
    "msp": "maximum softmax probability",
    "energy": "logsumexp of the logits (negative energy)",
}


def compare_detectors(
    in_distribution: DetectorScores, out_of_distribution: DetectorScores, tpr: float = DEFAULT_TPR
) -> list[dict[str, float | str]]:
    """Compute AUROC and FPR at `tpr` of the gate, MSP and energy detectors, one row per detector.

    The gate row is present only when both evaluations have gate values.
    """
    inside = in_distribution.in_distribution_scores()
    outside = out_of_distribution.in_distribution_scores()
    rows: list[dict[str, float | str]] = []
    for name, positive in inside.items():
        if name not in outside:
            continue
        negative = outside[name]
        rows.append(
            {
                "detector": name,
                "score": DETECTOR_DESCRIPTIONS[name],
                "auroc": auroc(positive, negative),
                "fpr_at_tpr": fpr_at_tpr(positive, negative, tpr),
                "mean_in": float(positive.mean()),
                "mean_out": float(negative.mean()),
            }
        )
    return rows
