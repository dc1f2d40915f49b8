"""Tests of the CIFAR-10-C style corruptions."""

from __future__ import annotations

import numpy as np
import pytest

from gating_core.data import CORRUPTION_KINDS, corrupt


@pytest.fixture(scope="module")
def natural_images() -> np.ndarray:
    """Smooth random images with some texture, closer to photographs than white noise."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(30, 225, size=(64, 8, 8, 3))
    smooth = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    texture = rng.normal(0, 12, size=smooth.shape)
    return np.clip(smooth + texture, 0, 255).astype(np.uint8)


def mean_absolute_difference(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.abs(first.astype(np.int16) - second.astype(np.int16)).mean())


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_corrupt_shape_dtype_and_input_kept(kind: str, natural_images: np.ndarray) -> None:
    before = natural_images.copy()

    corrupted = corrupt(natural_images, kind, 3)

    assert corrupted.shape == natural_images.shape
    assert corrupted.dtype == np.uint8
    np.testing.assert_array_equal(natural_images, before)
    assert mean_absolute_difference(corrupted, natural_images) > 0.5


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
def test_corrupt_severity_monotonic(kind: str, natural_images: np.ndarray) -> None:
    differences = [mean_absolute_difference(corrupt(natural_images, kind, s), natural_images) for s in range(1, 6)]

    for weaker, stronger in zip(differences, differences[1:]):
        assert weaker < stronger, differences


def test_gaussian_noise_seeded() -> None:
    images = np.full((4, 32, 32, 3), 128, dtype=np.uint8)

    first = corrupt(images, "gaussian_noise", 2, seed=7)
    again = corrupt(images, "gaussian_noise", 2, seed=7)
    other = corrupt(images, "gaussian_noise", 2, seed=8)

    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # Severity 2 adds noise with std 0.06 on the 0-1 scale, 15.3 on the 0-255 scale.
    assert abs(float(first.astype(np.float64).std()) - 0.06 * 255) < 0.5


def test_contrast_and_blur_keep_uniform_images() -> None:
    images = np.full((2, 32, 32, 3), 77, dtype=np.uint8)

    np.testing.assert_array_equal(corrupt(images, "contrast", 5), images)
    np.testing.assert_array_equal(corrupt(images, "gaussian_blur", 5), images)


def test_contrast_scales_distance_from_mean() -> None:
    images = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    images[:, :, :16] = 200
    images[:, :, 16:] = 100

    corrupted = corrupt(images, "contrast", 2)

    # Factor 0.5 around the mean 150.
    assert corrupted[0, 0, 0].tolist() == [175, 175, 175]
    assert corrupted[0, 0, 31].tolist() == [125, 125, 125]


@pytest.mark.parametrize(
    ("kind", "severity", "message"),
    [
        ("fog", 1, "kind must be one of gaussian_noise, gaussian_blur, contrast, jpeg; received 'fog'"),
        ("jpeg", 0, "severity must be one of 1, 2, 3, 4, 5; received 0"),
        ("jpeg", 6, "severity must be one of 1, 2, 3, 4, 5; received 6"),
        ("jpeg", 2.0, "severity must be one of 1, 2, 3, 4, 5; received 2.0"),
    ],
)
def test_corrupt_invalid_kind_or_severity(kind: str, severity: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corrupt(np.zeros((1, 32, 32, 3), dtype=np.uint8), kind, severity)


def test_corrupt_invalid_images() -> None:
    with pytest.raises(ValueError, match=r"images must be a uint8 array of shape \(N, H, W, 3\); received float64"):
        corrupt(np.zeros((1, 32, 32, 3)), "jpeg", 1)
