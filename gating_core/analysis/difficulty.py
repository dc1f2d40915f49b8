"""Whether gates follow difficulty: rank correlations and skip rates by score decile.

An image skips the gated computation when its gate value g is below the
threshold. Difficulty can be the image's own loss, whether it was misclassified,
or an imported per-image score such as the C-score (Jiang et al. 2021), where
near 1 means typical and easy and near 0 atypical and hard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

DECILES = 10


@dataclass(frozen=True)
class Correlation:
    """Spearman's rank correlation of two per-image columns over the images where both are finite."""

    rho: float | None
    p_value: float | None
    count: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"rho": self.rho, "p_value": self.p_value, "count": self.count}


def _finite_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first = np.asarray(x, dtype=np.float64)
    second = np.asarray(y, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"x and y must be 1-D arrays of the same length; received shapes {first.shape} and {second.shape}")
    keep = np.isfinite(first) & np.isfinite(second)
    return first[keep], second[keep]


def spearman(x: np.ndarray, y: np.ndarray) -> Correlation:
    """Compute Spearman's rho and its two-sided p-value, ignoring pairs with a NaN or infinite value.

    rho and p_value are None when fewer than three pairs remain or when either
    column is constant, because the correlation is undefined there.
    """
    first, second = _finite_pairs(x, y)
    count = int(first.size)
    if count < 3 or np.all(first == first[0]) or np.all(second == second[0]):
        return Correlation(None, None, count)
    result = stats.spearmanr(first, second)
    rho = float(result.statistic)
    p_value = float(result.pvalue)
    return Correlation(rho if math.isfinite(rho) else None, p_value if math.isfinite(p_value) else None, count)


def gate_difficulty_correlations(gate: np.ndarray, loss: np.ndarray, correct: np.ndarray) -> dict[str, Correlation]:
    """Correlate g with each image's loss and with misclassification (1 for a wrong prediction, else 0)."""
    misclassified = 1.0 - np.asarray(correct, dtype=np.float64)
    return {"loss": spearman(gate, loss), "misclassified": spearman(gate, misclassified)}


def decile_of(scores: np.ndarray, deciles: int = DECILES) -> tuple[np.ndarray, np.ndarray]:
    """Assign each finite score to a quantile bin 0..deciles-1 and return the bins and the bin edges.

    Edges are the 0, 1/deciles, ..., 1 quantiles (numpy's linear interpolation).
    A score equal to an inner edge goes to the upper bin, so tied scores always
    share a bin, and a heavily tied column can leave some bins empty.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise ValueError("scores must contain at least one finite value; received none")
    edges = np.quantile(values, np.linspace(0.0, 1.0, deciles + 1))
    bins = np.searchsorted(edges[1:-1], values, side="right")
    return bins, edges


def skip_rate_by_decile(
    scores: np.ndarray, gate: np.ndarray, threshold: float, deciles: int = DECILES
) -> list[dict[str, float | int | None]]:
    """Tabulate, for each score decile from the lowest scores up, the images' count, skip rate and mean g.

    Images whose score or gate is not finite are left out. A row of an empty bin
    has count 0 and None for the rates.
    """
    if deciles < 2:
        raise ValueError(f"deciles must be at least 2; received {deciles!r}")
    score_values, gate_values = _finite_pairs(scores, gate)
    bins, edges = decile_of(score_values, deciles)
    rows: list[dict[str, float | int | None]] = []
    for number in range(deciles):
        member = bins == number
        count = int(member.sum())
        rows.append(
            {
                "decile": number + 1,
                "score_from": float(edges[number]),
                "score_to": float(edges[number + 1]),
                "count": count,
                "skip_rate": float((gate_values[member] < threshold).mean()) if count else None,
                "mean_gate": float(gate_values[member].mean()) if count else None,
            }
        )
    return rows
