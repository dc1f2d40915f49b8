"""Tests of the device batches: normalisation, shuffling and crop-and-flip augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gating_core.data import DeviceImages, ImageSet, eval_batches, train_batches

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def random_image_set(count: int, seed: int = 0) -> ImageSet:
    """Random images whose label is their index, so a batch row names its source image."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    return ImageSet(images, np.arange(count, dtype=np.int64), [str(i) for i in range(count)], "random", "train", "test")


def to_pixels(batch: torch.Tensor) -> np.ndarray:
    """Undo the normalisation of a (B, 3, 32, 32) batch and return uint8 (B, 32, 32, 3) pixels."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    pixels = ((batch * std + mean) * 255).round()
    assert float((pixels - (batch * std + mean) * 255).abs().max()) < 0.01
    return pixels.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def crop_candidates(image: np.ndarray) -> dict[bytes, tuple[int, int, bool]]:
    """Map every 32x32 crop of the zero-padded image, plain and mirrored, to (row, column, flipped)."""
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    candidates = {}
    for row in range(9):
        for column in range(9):
            crop = padded[row:row + 32, column:column + 32]
            candidates[crop.tobytes()] = (row, column, False)
            candidates[crop[:, ::-1].tobytes()] = (row, column, True)
    return candidates


def test_augmented_outputs_are_padded_crops() -> None:
    image_set = random_image_set(16)
    data = DeviceImages.from_image_set(image_set)
    candidates = [crop_candidates(image) for image in image_set.images]
    assert all(len(table) == 162 for table in candidates)
    generator = torch.Generator().manual_seed(0)

    seen = set()
    for _ in range(200):
        for batch, labels in train_batches(data, 16, MEAN, STD, generator):
            for pixels, label in zip(to_pixels(batch), labels.tolist()):
                placement = candidates[label].get(pixels.tobytes())
                assert placement is not None, f"output for image {label} is no crop of its padded image"
                seen.add(placement)

    assert len(seen) == 81 * 2


def test_train_without_augment_is_normalized_image() -> None:
    image_set = random_image_set(10)
    data = DeviceImages.from_image_set(image_set)
    generator = torch.Generator().manual_seed(1)

    for batch, labels in train_batches(data, 4, MEAN, STD, generator, augment=False):
        source = torch.from_numpy(image_set.images[labels.numpy()]).permute(0, 3, 1, 2).to(torch.float32)
        expected = (source / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        torch.testing.assert_close(batch, expected, rtol=0, atol=2e-6)


def test_train_epoch_shuffles_each_image_once() -> None:
    data = DeviceImages.from_image_set(random_image_set(50))
    generator = torch.Generator().manual_seed(2)

    first = torch.cat([labels for _, labels in train_batches(data, 8, MEAN, STD, generator)])
    second = torch.cat([labels for _, labels in train_batches(data, 8, MEAN, STD, generator)])

    assert sorted(first.tolist()) == list(range(50))
    assert sorted(second.tolist()) == list(range(50))
    assert first.tolist() != second.tolist()
    assert first.tolist() != list(range(50))


def test_train_same_seed_same_batches() -> None:
    data = DeviceImages.from_image_set(random_image_set(20))

    runs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(3)
        runs.append(list(train_batches(data, 6, MEAN, STD, generator)))

    for (first_images, first_labels), (second_images, second_labels) in zip(*runs):
        assert torch.equal(first_images, second_images)
        assert torch.equal(first_labels, second_labels)


def test_train_batch_sizes_and_drop_last() -> None:
    data = DeviceImages.from_image_set(random_image_set(10))
    generator = torch.Generator().manual_seed(4)

    all_batches = [len(labels) for _, labels in train_batches(data, 4, MEAN, STD, generator)]
    dropped = [len(labels) for _, labels in train_batches(data, 4, MEAN, STD, generator, drop_last=True)]

    assert all_batches == [4, 4, 2]
    assert dropped == [4, 4]


def test_batch_layout_and_dtype() -> None:
    data = DeviceImages.from_image_set(random_image_set(6))
    generator = torch.Generator().manual_seed(5)

    last, _ = next(train_batches(data, 6, MEAN, STD, generator))
    plain, _ = next(train_batches(data, 6, MEAN, STD, generator, channels_last=False))

    assert last.shape == (6, 3, 32, 32)
    assert last.dtype == torch.float32
    assert last.is_contiguous(memory_format=torch.channels_last)
    assert plain.is_contiguous()


def test_eval_batches_in_order_without_augmentation() -> None:
    image_set = random_image_set(10)
    data = DeviceImages.from_image_set(image_set, indices=[7, 2, 5])

    batches = list(eval_batches(data, 2, MEAN, STD))
    labels = torch.cat([labels for _, labels in batches])
    pixels = np.concatenate([to_pixels(images) for images, _ in batches])

    assert labels.tolist() == [7, 2, 5]
    np.testing.assert_array_equal(pixels, image_set.images[[7, 2, 5]])
    assert data.indices.tolist() == [7, 2, 5]
    assert [len(batch) for batch, _ in batches] == [2, 1]


def test_device_images_layout() -> None:
    image_set = random_image_set(3)
    data = DeviceImages.from_image_set(image_set)

    assert data.images.shape == (3, 3, 32, 32)
    assert data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert torch.equal(data.images.permute(0, 2, 3, 1), torch.from_numpy(image_set.images))
    assert len(data) == 3


def test_invalid_arguments() -> None:
    data = DeviceImages.from_image_set(random_image_set(3))
    generator = torch.Generator().manual_seed(6)

    with pytest.raises(ValueError, match="indices must be between 0 and 2 .*received values from 0 to 3"):
        DeviceImages.from_image_set(random_image_set(3), indices=[0, 3])
    with pytest.raises(ValueError, match="batch_size must be an integer of 1 or more; received 0"):
        next(train_batches(data, 0, MEAN, STD, generator))
    with pytest.raises(ValueError, match="mean and std must have 3 values each"):
        next(eval_batches(data, 2, (0.5, 0.5), STD))
    with pytest.raises(ValueError, match=r"std must be above 0 in every channel; received \[0.2, 0.0, 0.2\]"):
        next(eval_batches(data, 2, MEAN, (0.2, 0.0, 0.2)))
