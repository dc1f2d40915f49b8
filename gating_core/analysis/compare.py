"""Images on which two runs disagree about skipping the gated computation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DecisionComparison:
    """The images that both runs evaluated, matched by data set index, and which of them differ.

    The arrays `indices`, `gate_a` and `gate_b` list only the differing images,
    in increasing data set index.
    """

    common: int
    skipped_by_both: int
    skipped_by_a_only: int
    skipped_by_b_only: int
    indices: np.ndarray
    gate_a: np.ndarray
    gate_b: np.ndarray

    @property
    def differing(self) -> int:
        return int(self.indices.size)


def compare_skip_decisions(
    indices_a: np.ndarray, gate_a: np.ndarray, indices_b: np.ndarray, gate_b: np.ndarray, threshold: float
) -> DecisionComparison:
    """Match the two evaluations' images by data set index and find those skipped (g < threshold) by only one run."""
    common, position_a, position_b = np.intersect1d(
        np.asarray(indices_a, dtype=np.int64), np.asarray(indices_b, dtype=np.int64), return_indices=True
    )
    values_a = np.asarray(gate_a, dtype=np.float64)[position_a]
    values_b = np.asarray(gate_b, dtype=np.float64)[position_b]
    skip_a = values_a < threshold
    skip_b = values_b < threshold
    differs = skip_a != skip_b
    return DecisionComparison(
        common=int(common.size),
        skipped_by_both=int((skip_a & skip_b).sum()),
        skipped_by_a_only=int((skip_a & ~skip_b).sum()),
        skipped_by_b_only=int((~skip_a & skip_b).sum()),
        indices=common[differs],
        gate_a=values_a[differs],
        gate_b=values_b[differs],
    )
