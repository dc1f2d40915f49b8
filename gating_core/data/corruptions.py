"""Common corruptions of 32x32 images at five severities, after CIFAR-10-C.

The parameters per severity are those of CIFAR-10-C (Hendrycks and Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019), as set in ``ImageNet-C/create_c/make_cifar_c.py`` of
github.com/hendrycks/robustness:

| kind           | parameter                                   | 1    | 2    | 3    | 4    | 5    |
|----------------|---------------------------------------------|------|------|------|------|------|
| gaussian_noise | noise std on the 0-1 scale                  | 0.04 | 0.06 | 0.08 | 0.09 | 0.10 |
| gaussian_blur  | kernel sigma in pixels                      | 0.4  | 0.6  | 0.7  | 0.8  | 1.0  |
| contrast       | factor on the distance from the image mean  | 0.75 | 0.5  | 0.4  | 0.3  | 0.15 |
| jpeg           | JPEG quality (PIL)                          | 80   | 65   | 58   | 50   | 40   |

This module differs from that script in three ways, so its pixels differ
slightly from the published CIFAR-10-C files. Results are rounded to the nearest
integer, where the script truncates. The blur is a numpy convolution with the
settings of scikit-image's ``gaussian`` (edge pixels repeated, kernel cut at
4 sigma). The noise comes from a seeded numpy Generator.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np

CORRUPTION_PARAMETERS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "jpeg": (80, 65, 58, 50, 40),
}
CORRUPTION_KINDS = tuple(CORRUPTION_PARAMETERS)
SEVERITIES = (1, 2, 3, 4, 5)

# Images per block of float work, so that memory stays bounded. The noise stream
# does not depend on it because numpy draws blocks one after another.
_BLOCK = 1024
# scipy.ndimage.gaussian_filter (behind scikit-image's gaussian) cuts the kernel at 4 sigma.
_BLUR_TRUNCATE = 4.0


def corrupt(images: np.ndarray, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply one corruption at one severity to uint8 (N, H, W, 3) RGB images.

    Returns a new uint8 array of the same shape. Only gaussian_noise is random;
    it draws from ``np.random.default_rng(seed)``, so a seed gives the same pixels
    on every call.
    """
    if kind not in CORRUPTION_PARAMETERS:
        raise ValueError(f"kind must be one of {', '.join(CORRUPTION_KINDS)}; received {kind!r}")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of 1, 2, 3, 4, 5; received {severity!r}")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        received = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"images must be a uint8 array of shape (N, H, W, 3); received {received}")

    parameter = CORRUPTION_PARAMETERS[kind][severity - 1]
    if kind == "gaussian_noise":
        return _gaussian_noise(images, parameter, seed)

    output = np.empty_like(images)
    for start in range(0, len(images), _BLOCK):
        block = images[start:start + _BLOCK]
        if kind == "gaussian_blur":
            output[start:start + _BLOCK] = _to_uint8(_gaussian_blur(block / 255.0, parameter))
        elif kind == "contrast":
            output[start:start + _BLOCK] = _contrast(block, parameter)
        else:
            output[start:start + _BLOCK] = _jpeg(block, int(parameter))
    return output


def _to_uint8(values: np.ndarray) -> np.ndarray:
    """Convert 0-1 floats to uint8, clipping and rounding to the nearest integer."""
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _gaussian_noise(images: np.ndarray, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    output = np.empty_like(images)
    for start in range(0, len(images), _BLOCK):
        block = images[start:start + _BLOCK]
        noise = rng.standard_normal(block.shape, dtype=np.float32) * np.float32(std)
        output[start:start + _BLOCK] = _to_uint8(block / np.float32(255.0) + noise)
    return output


def _gaussian_blur(values: np.ndarray, sigma: float) -> np.ndarray:
    """Blur (N, H, W, C) floats along H and W with a separable Gaussian kernel."""
    radius = int(_BLUR_TRUNCATE * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()

    for axis in (1, 2):
        padding = [(0, 0)] * values.ndim
        padding[axis] = (radius, radius)
        padded = np.pad(values, padding, mode="edge")
        length = values.shape[axis]
        blurred = np.zeros_like(values)
        for weight, start in zip(kernel, range(2 * radius + 1)):
            blurred += weight * np.take(padded, np.arange(start, start + length), axis=axis)
        values = blurred
    return values


def _contrast(images: np.ndarray, factor: float) -> np.ndarray:
    values = images / 255.0
    # Mean per image and channel, over the pixels, as in CIFAR-10-C.
    means = values.mean(axis=(1, 2), keepdims=True)
    return _to_uint8((values - means) * factor + means)


def _jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    output = np.empty_like(images)
    for position, image in enumerate(images):
        buffer = BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            output[position] = np.asarray(decoded.convert("RGB"))
    return output
