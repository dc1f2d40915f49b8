"""Deterministic subsets and train/validation splits, as indices into the original data set.

Indices always point at the original images, so a per-sample result can name
the image that it belongs to. Every function here returns indices in ascending
order, which keeps evaluation order equal to the data set's own order.
"""

from __future__ import annotations

import numpy as np


def subset_indices(total: int, size: int | None, seed: int = 0) -> np.ndarray:
    """Choose ``size`` of ``total`` images: the first ``size`` of a fixed random permutation.

    The permutation depends only on ``total`` and ``seed``, so a smaller subset is
    always part of a larger one. ``None`` selects every image. The result is
    int64 and sorted.
    """
    _check_count("total", total, minimum=0)
    if size is None:
        return np.arange(total, dtype=np.int64)
    _check_count("size", size, minimum=1)
    if size > total:
        raise ValueError(f"size must be between 1 and {total} (the number of images); received {size}")

    permutation = np.random.default_rng(seed).permutation(total)
    return np.sort(permutation[:size]).astype(np.int64)


def validation_split(total: int, validation_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``total`` images into (train_indices, validation_indices), both sorted int64 arrays.

    The validation set is the first ``validation_size`` images of a fixed random
    permutation, so it is the same for every run that uses the same seed.
    A size of 0 puts every image in the training set.
    """
    _check_count("total", total, minimum=0)
    _check_count("validation_size", validation_size, minimum=0)
    if validation_size >= total and validation_size > 0:
        raise ValueError(
            f"validation_size must be below the number of images ({total}), so that some remain "
            f"for training; received {validation_size}"
        )

    permutation = np.random.default_rng(seed).permutation(total)
    validation = np.sort(permutation[:validation_size]).astype(np.int64)
    train = np.sort(permutation[validation_size:]).astype(np.int64)
    return train, validation


def _check_count(field: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field} must be an integer; received {value!r}")
    if value < minimum:
        raise ValueError(f"{field} must be {minimum} or more; received {value}")
