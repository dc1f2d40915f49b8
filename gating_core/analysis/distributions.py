"""Distributions of gate values over the images of one evaluation: histograms and per-class tables."""

from __future__ import annotations

import numpy as np


def gate_histogram(gate: np.ndarray, correct: np.ndarray, bins: int = 40) -> dict[str, list[float] | list[int]]:
    """Count gate values in `bins` equal bins over [0, 1], separately for correct and wrong predictions.

    Returns the bin edges and one count list each for correct and wrong images.
    The last bin includes g = 1. Images without a finite gate value are left out.
    """
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1000:
        raise ValueError(f"bins must be an integer from 1 to 1000; received {bins!r}")
    values = np.asarray(gate, dtype=np.float64)
    is_correct = np.asarray(correct, dtype=bool)
    keep = np.isfinite(values)
    edges = np.linspace(0.0, 1.0, bins + 1)
    correct_counts, _ = np.histogram(values[keep & is_correct], bins=edges)
    wrong_counts, _ = np.histogram(values[keep & ~is_correct], bins=edges)
    return {"edges": edges.tolist(), "correct": correct_counts.tolist(), "wrong": wrong_counts.tolist()}


def skip_rate_by_class(
    labels: np.ndarray, gate: np.ndarray, correct: np.ndarray, threshold: float, classes: list[str]
) -> list[dict[str, float | int | str | None]]:
    """Tabulate per class: image count, skip rate (g < threshold), mean g and accuracy.

    A class with no images has count 0 and None for the rates.
    """
    label_values = np.asarray(labels, dtype=np.int64)
    gate_values = np.asarray(gate, dtype=np.float64)
    is_correct = np.asarray(correct, dtype=bool)
    rows: list[dict[str, float | int | str | None]] = []
    for label, name in enumerate(classes):
        member = label_values == label
        count = int(member.sum())
        rows.append(
            {
                "label": label,
                "class_name": name,
                "count": count,
                "skip_rate": float((gate_values[member] < threshold).mean()) if count else None,
                "mean_gate": float(gate_values[member].mean()) if count else None,
                "accuracy": float(is_correct[member].mean()) if count else None,
            }
        )
    return rows


def mean_gate_by_class(labels: np.ndarray, gate_matrix: np.ndarray, class_count: int) -> np.ndarray:
    """Return the (units, classes) matrix of the mean gate value of each unit over each class's images.

    Entries of a class without images are NaN.
    """
    label_values = np.asarray(labels, dtype=np.int64)
    matrix = np.asarray(gate_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != label_values.shape[0]:
        raise ValueError(
            f"gate_matrix must have shape (images, units) with one row per label ({label_values.shape[0]}); "
            f"received {matrix.shape}"
        )
    if label_values.size and not 0 <= label_values.min() <= label_values.max() < class_count:
        raise ValueError(
            f"labels must be from 0 to {class_count - 1}; received values from "
            f"{label_values.min()} to {label_values.max()}"
        )
    sums = np.zeros((class_count, matrix.shape[1]))
    np.add.at(sums, label_values, matrix)
    counts = np.bincount(label_values, minlength=class_count)[:class_count].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts[:, None]
    means[counts == 0] = np.nan
    return means.T
