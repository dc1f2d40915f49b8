"""Tests on the real data sets: CIFAR-10 from the data directory and Debian's Fashion-MNIST.

They skip where the data is missing, except with CI=true, where they fail.
Only the 10,000-image CIFAR-10 test split is decoded, once per module.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gating_core.data import ImageSet, load_image, load_images, measure_normalization, release_memory_maps
from gating_core.data.normalization import CIFAR10_MEAN, CIFAR10_STD
from gating_core.data.readers import CIFAR10_CLASSES
from gating_core.data.sources import DEBIAN_FASHION_MNIST_DIR
from tests.support.services import skip_or_fail


@pytest.fixture(scope="module")
def real_data_dir() -> Path:
    """The data directory named by GATELAB_DATA_DIR, which must contain cifar10/test."""
    value = os.environ.get("GATELAB_DATA_DIR")
    if not value:
        skip_or_fail("GATELAB_DATA_DIR is not set; point it at the folder that contains cifar10/{train,test}")
    path = Path(value)
    if not (path / "cifar10" / "test").is_dir():
        skip_or_fail(f"GATELAB_DATA_DIR={path} has no cifar10/test folder")
    return path


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image-cache")


@pytest.fixture(scope="module")
def cifar10_test(real_data_dir: Path, module_cache: Path) -> ImageSet:
    return load_images("cifar10", "test", real_data_dir, module_cache)


def test_cifar10_test_split_counts_and_classes(cifar10_test: ImageSet) -> None:
    assert cifar10_test.images.shape == (10_000, 32, 32, 3)
    assert cifar10_test.images.dtype == np.uint8
    assert cifar10_test.classes == list(CIFAR10_CLASSES)
    assert np.bincount(cifar10_test.labels).tolist() == [1000] * 10
    assert cifar10_test.labels.tolist() == sorted(cifar10_test.labels.tolist())


def test_cifar10_test_pixels_match_files(cifar10_test: ImageSet, real_data_dir: Path) -> None:
    for label, rank in ((0, 0), (3, 17), (9, 999)):
        path = real_data_dir / "cifar10" / "test" / CIFAR10_CLASSES[label] / f"{rank:04d}.jpg"
        with Image.open(path) as image:
            expected = np.asarray(image.convert("RGB"))

        np.testing.assert_array_equal(cifar10_test.images[label * 1000 + rank], expected)


def test_cifar10_cached_load_and_single_image(cifar10_test: ImageSet, real_data_dir: Path,
                                              module_cache: Path) -> None:
    release_memory_maps()

    again = load_images("cifar10", "test", real_data_dir, module_cache)
    image = load_image("cifar10", "test", 4321, real_data_dir, module_cache)

    np.testing.assert_array_equal(again.images, cifar10_test.images)
    np.testing.assert_array_equal(image, cifar10_test.images[4321])
    release_memory_maps()


def test_cifar10_statistics_match_constants(real_data_dir: Path) -> None:
    path = real_data_dir / "cifar10-exact" / "train-first-4000.npz"
    if not path.is_file():
        skip_or_fail(f"{path} is missing")
    with np.load(path) as contents:
        images = contents["x"]

    mean, std = measure_normalization(images)

    # 4,000 of the 50,000 training images: close to, not equal to, the full-set values.
    np.testing.assert_allclose(mean, CIFAR10_MEAN, atol=0.005)
    np.testing.assert_allclose(std, CIFAR10_STD, atol=0.005)


def test_fashion_mnist_from_debian_package(tmp_path: Path) -> None:
    if not (DEBIAN_FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        skip_or_fail(f"{DEBIAN_FASHION_MNIST_DIR} has no Fashion-MNIST files; install dataset-fashion-mnist")

    images = load_images("fashion-mnist", "test", tmp_path / "empty-data-dir", tmp_path / "cache")

    assert images.images.shape == (10_000, 32, 32, 3)
    assert images.images.dtype == np.uint8
    assert np.bincount(images.labels).tolist() == [1000] * 10
    assert images.images[:, :2].max() == 0
    assert images.images[:, :, :2].max() == 0
    assert images.images[:, 2:30, 2:30].max() == 255
    np.testing.assert_array_equal(images.images[..., 0], images.images[..., 1])
    assert str(DEBIAN_FASHION_MNIST_DIR) in images.source
