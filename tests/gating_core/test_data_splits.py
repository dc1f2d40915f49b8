"""Tests of deterministic subsets, validation splits and normalisation choices."""

from __future__ import annotations

import numpy as np
import pytest

from gating_core.data import measure_normalization, resolve_normalization, subset_indices, validation_split
from gating_core.data.normalization import CIFAR10_MEAN, CIFAR100_MEAN, IMAGENET_STD
from gating_core.spec import DataSpec, Normalization


def test_subset_same_seed_same_indices() -> None:
    first = subset_indices(50_000, 1000, seed=4)
    second = subset_indices(50_000, 1000, seed=4)

    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.int64
    assert len(np.unique(first)) == 1000
    assert first.min() >= 0
    assert first.max() < 50_000


def test_subset_seed_changes_selection() -> None:
    assert not np.array_equal(subset_indices(50_000, 1000, seed=0), subset_indices(50_000, 1000, seed=1))


def test_subset_smaller_is_prefix_of_larger() -> None:
    small = subset_indices(10_000, 100, seed=2)
    large = subset_indices(10_000, 500, seed=2)

    np.testing.assert_array_equal(small, large[:100])
    assert small.tolist() != sorted(small.tolist())


def test_subset_none_keeps_original_order() -> None:
    np.testing.assert_array_equal(subset_indices(7, None), np.arange(7))


@pytest.mark.parametrize(
    ("total", "size", "message"),
    [
        (10, 11, "size must be between 1 and 10 .*received 11"),
        (10, 0, "size must be 1 or more; received 0"),
        (10, 2.5, "size must be an integer; received 2.5"),
        (-1, None, "total must be 0 or more; received -1"),
    ],
)
def test_subset_invalid_arguments(total: int, size: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        subset_indices(total, size)


def test_validation_split_disjoint_and_complete() -> None:
    train, validation = validation_split(50_000, 5000, seed=0)

    assert len(train) == 45_000
    assert len(validation) == 5000
    assert not set(train.tolist()) & set(validation.tolist())
    np.testing.assert_array_equal(np.sort(np.concatenate([train, validation])), np.arange(50_000))
    np.testing.assert_array_equal(validation, validation_split(50_000, 5000, seed=0)[1])
    assert not np.array_equal(validation, validation_split(50_000, 5000, seed=1)[1])
    assert train.dtype == np.int64
    assert validation.dtype == np.int64


@pytest.mark.parametrize("validation_size", [0, 1000])
def test_validation_split_train_prefix_is_random(validation_size: int) -> None:
    train, _ = validation_split(10_000, validation_size, seed=0)
    labels = np.repeat(np.arange(10), 1000)  # class-sorted, like images read from class folders

    counts = np.bincount(labels[train[:1000]], minlength=10)

    assert counts.min() > 50
    assert counts.max() < 150


def test_validation_split_zero_and_too_large() -> None:
    train, validation = validation_split(100, 0)

    np.testing.assert_array_equal(np.sort(train), np.arange(100))
    assert validation.shape == (0,)
    assert validation.dtype == np.int64
    with pytest.raises(ValueError, match=r"validation_size must be below the number of images \(100\).*received 100"):
        validation_split(100, 100)


def test_resolve_normalization_choices() -> None:
    assert resolve_normalization(None, "cifar10") == resolve_normalization("cifar", "cifar10")
    assert resolve_normalization("cifar", "cifar10")[0] == CIFAR10_MEAN
    assert resolve_normalization("cifar", "cifar100")[0] == CIFAR100_MEAN
    assert resolve_normalization("imagenet", "cifar100")[1] == IMAGENET_STD
    explicit = Normalization(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert resolve_normalization(explicit, "cifar10") == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_resolve_normalization_from_spec() -> None:
    spec = DataSpec(dataset="cifar100", normalization="imagenet")

    assert resolve_normalization(spec.normalization, spec.dataset)[0] == (0.485, 0.456, 0.406)


def test_resolve_normalization_invalid() -> None:
    with pytest.raises(ValueError, match="normalization must be one of cifar, imagenet .*received 'mnist'"):
        resolve_normalization("mnist", "cifar10")
    with pytest.raises(ValueError, match="dataset must be one of cifar10, cifar100 .*received 'svhn'"):
        resolve_normalization("cifar", "svhn")


def test_measure_normalization_known_values() -> None:
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    images[0] = 255
    images[..., 2] = 51

    mean, std = measure_normalization(images)

    np.testing.assert_allclose(mean, (0.5, 0.5, 0.2))
    np.testing.assert_allclose(std, (0.5, 0.5, 0.0), atol=1e-7)
