"""Deterministic subsets and train/validation splits, as indices into the original data set.

Indices always point at the original images, so a per-sample result can name
the image that it belongs to. Subsets come in the order of a fixed random
permutation, so any prefix of a returned array is itself a random subset.
"""

from __future__ import annotations

import numpy as np


def subset_indices(total: int, size: int | None, seed: int = 0) -> np.ndarray:
    """Choose ``size`` of ``total`` images: the first ``size`` of a fixed random permutation.

    The permutation depends only on ``total`` and ``seed``, so a smaller subset is
    a prefix of a larger one. ``None`` selects every image, in the original order.
    The result is int64.
    """
    _check_count("total", total, minimum=0)
    if size is None:
        return np.arange(total, dtype=np.int64)
    _check_count("size", size, minimum=1)
    if size > total:
        raise ValueError(f"size must be between 1 and {total} (the number of images); received {size}")

    permutation = np.random.default_rng(seed).permutation(total)
    return permutation[:size].astype(np.int64)


def validation_split(total: int, validation_size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split ``total`` images into (train_indices, validation_indices), both int64.

    The validation set is the first ``validation_size`` images of a fixed random
    permutation and the training set is the rest, in permutation order, even for
    a size of 0. A prefix of the training indices is therefore a random subset.
    """
    _check_count("total", total, minimum=0)
    _check_count("validation_size", validation_size, minimum=0)
    if validation_size >= total and validation_size > 0:
        raise ValueError(
            f"validation_size must be below the number of images ({total}), so that some remain "
            f"for training; received {validation_size}"
        )

    permutation = np.random.default_rng(seed).permutation(total).astype(np.int64)
    return permutation[validation_size:], permutation[:validation_size]


def _check_count(field: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field} must be an integer; received {value!r}")
    if value < minimum:
        raise ValueError(f"{field} must be {minimum} or more; received {value}")
