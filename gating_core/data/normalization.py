"""Per-channel input normalisation: named presets, explicit values, and measurement.

All values are on the 0-1 scale: a pixel p in 0-255 becomes (p / 255 - mean) / std.
"""

from __future__ import annotations

import numpy as np

from gating_core.spec import NAMED_NORMALIZATIONS, Normalization

Channels = tuple[float, float, float]

# Per-channel mean and population standard deviation over every pixel of the
# 50,000 original CIFAR-10 training images. The widely copied std
# (0.2023, 0.1994, 0.2010) is a mean of per-image stds and is not used here.
CIFAR10_MEAN: Channels = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: Channels = (0.2470, 0.2435, 0.2616)
# The same statistics for the CIFAR-100 training images.
# NOTE: taken from published tables, not measured here (CIFAR-100 was not available).
CIFAR100_MEAN: Channels = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: Channels = (0.2673, 0.2564, 0.2762)
# torchvision's ImageNet statistics, which the published CIFAR ResNet checkpoints
# were trained with.
IMAGENET_MEAN: Channels = (0.485, 0.456, 0.406)
IMAGENET_STD: Channels = (0.229, 0.224, 0.225)

_CIFAR_STATISTICS = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
}


def resolve_normalization(choice: str | Normalization | None, dataset: str) -> tuple[Channels, Channels]:
    """Return the (mean, std) that a normalisation choice means for a training data set.

    ``None`` and ``"cifar"`` give the training set's own statistics (CIFAR-10's or
    CIFAR-100's), ``"imagenet"`` gives torchvision's ImageNet values, and a
    ``Normalization`` gives its own values.
    """
    if isinstance(choice, Normalization):
        return tuple(choice.mean), tuple(choice.std)
    if choice is None:
        choice = "cifar"
    if choice == "imagenet":
        return IMAGENET_MEAN, IMAGENET_STD
    if choice != "cifar":
        raise ValueError(
            f"normalization must be one of {', '.join(NAMED_NORMALIZATIONS)} or explicit mean and std; "
            f"received {choice!r}"
        )
    if dataset not in _CIFAR_STATISTICS:
        raise ValueError(
            f"dataset must be one of {', '.join(_CIFAR_STATISTICS)} for normalization 'cifar'; received {dataset!r}"
        )
    return _CIFAR_STATISTICS[dataset]


def measure_normalization(images: np.ndarray) -> tuple[Channels, Channels]:
    """Measure the per-channel mean and population std of uint8 (N, H, W, 3) images on the 0-1 scale."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 of shape (N, H, W, 3); received {images.dtype} {images.shape}")
    total = np.zeros(3, dtype=np.float64)
    total_square = np.zeros(3, dtype=np.float64)
    # Chunks bound the float64 copy to about 100 MB for 32x32 images.
    for start in range(0, len(images), 4096):
        pixels = images[start:start + 4096].reshape(-1, 3).astype(np.float64)
        total += pixels.sum(axis=0)
        total_square += np.square(pixels).sum(axis=0)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(total_square / count - mean**2)
    return tuple(float(v) for v in mean / 255), tuple(float(v) for v in std / 255)
