"""Readers for the on-disk image formats: class folders, CIFAR pickles, IDX, SVHN .mat and .npz.

Each reader returns uint8 images of shape (N, 32, 32, 3) in RGB order, int64
labels of shape (N,) and the class names in label order. Readers use numpy, PIL
and (for SVHN) scipy, never torch.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

IMAGE_SHAPE = (32, 32, 3)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Class names as torchvision.datasets.FashionMNIST lists them, in label order.
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True, eq=False)
class DecodedImages:
    """Images, labels and class names read from one source."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]


@dataclass(frozen=True)
class ImageFile:
    """One image file of a class folder, with its label and file status."""

    path: Path
    label: int
    stat: os.stat_result


def list_class_folders(root: Path) -> tuple[list[str], list[ImageFile]]:
    """List the class names (sorted) and image files of an ImageFolder-style tree.

    Within a class, files with integer stems come first in numeric order, then the
    other files by name, so ``10.jpg`` follows ``9.jpg``.
    """
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    files: list[ImageFile] = []
    for label, class_name in enumerate(classes):
        class_files = []
        with os.scandir(root / class_name) as entries:
            for entry in entries:
                if entry.is_file() and entry.name.lower().endswith(IMAGE_SUFFIXES):
                    class_files.append(ImageFile(Path(entry.path), label, entry.stat()))
        if not class_files:
            raise ValueError(
                f"class folder {root / class_name} contains no .jpg or .png images; "
                f"remove it or add the images of that class"
            )
        class_files.sort(key=lambda item: _file_sort_key(item.path))
        files.extend(class_files)
    return classes, files


def _file_sort_key(path: Path) -> tuple[int, int, str]:
    stem = path.stem
    if stem.isdigit():
        return (0, int(stem), path.name)
    return (1, 0, path.name)


def read_class_folders(classes: list[str], files: list[ImageFile]) -> DecodedImages:
    """Decode the listed image files with PIL, in list order."""
    from PIL import Image

    started = time.perf_counter()
    images = np.empty((len(files), *IMAGE_SHAPE), dtype=np.uint8)
    for position, item in enumerate(files):
        with Image.open(item.path) as image:
            if image.size != IMAGE_SHAPE[:2]:
                raise ValueError(
                    f"image {item.path} is {image.size[0]}x{image.size[1]} pixels; expected 32x32"
                )
            images[position] = np.asarray(image.convert("RGB"))
    labels = np.fromiter((item.label for item in files), dtype=np.int64, count=len(files))
    logger.info("decoded %d images in %.1f s", len(files), time.perf_counter() - started)
    return DecodedImages(images, labels, list(classes))


def read_cifar_batches(folder: Path, batch_names: list[str], label_key: str, meta_name: str,
                       class_key: str) -> DecodedImages:
    """Read the pickled batches of torchvision's CIFAR-10 or CIFAR-100 download.

    NOTE: unpickling runs code from the file, so only read CIFAR batches from a
    trusted folder (torchvision reads them the same way).
    """
    image_parts = []
    label_parts = []
    for batch_name in batch_names:
        batch = _unpickle(folder / batch_name)
        image_parts.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        label_parts.append(np.asarray(batch[label_key], dtype=np.int64))
    images = np.ascontiguousarray(np.concatenate(image_parts).transpose(0, 2, 3, 1))
    classes = [str(name) for name in _unpickle(folder / meta_name)[class_key]]
    return DecodedImages(images, np.concatenate(label_parts), classes)


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as handle:
        return pickle.load(handle, encoding="latin1")


def read_idx_pair(images_path: Path, labels_path: Path) -> DecodedImages:
    """Read Fashion-MNIST IDX files, zero-pad to 32x32 and repeat the gray channel three times."""
    gray = _read_idx(images_path, expected_dims=3)
    labels = _read_idx(labels_path, expected_dims=1).astype(np.int64)
    if gray.shape[1:] != (28, 28) or len(labels) != len(gray):
        raise ValueError(
            f"Fashion-MNIST files {images_path} and {labels_path} contain images of shape {gray.shape} and labels "
            f"of shape {labels.shape}; expected (N, 28, 28) and (N,)"
        )
    padded = np.pad(gray, ((0, 0), (2, 2), (2, 2)))
    images = np.ascontiguousarray(np.repeat(padded[..., np.newaxis], 3, axis=3))
    return DecodedImages(images, labels, list(FASHION_MNIST_CLASSES))


def _read_idx(path: Path, expected_dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    # IDX header: two zero bytes, type code 0x08 (unsigned byte), the number of
    # dimensions, then one big-endian int32 per dimension.
    if len(data) < 4 or data[0:3] != b"\x00\x00\x08" or data[3] != expected_dims:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes with {expected_dims} dimensions")
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">i4", count=expected_dims, offset=4))
    offset = 4 + 4 * expected_dims
    values = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if values.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: the header gives shape {shape}, the file contains {values.size} values")
    return values.reshape(shape)


def read_svhn_mat(path: Path) -> DecodedImages:
    """Read one of SVHN's ``*_32x32.mat`` files, where the digit 0 has label 10."""
    from scipy.io import loadmat

    contents = loadmat(path)
    images = np.ascontiguousarray(np.asarray(contents["X"], dtype=np.uint8).transpose(3, 0, 1, 2))
    labels = np.asarray(contents["y"], dtype=np.int64).reshape(-1) % 10
    return DecodedImages(images, labels, [str(digit) for digit in range(10)])


def read_npz(path: Path) -> DecodedImages:
    """Read an .npz of uint8 images ``x`` (N, 32, 32, 3), integer labels ``y`` and optional ``classes``.

    Without ``classes`` the names are CIFAR-10's when every label is below 10,
    else "0" to "K-1" for the largest label K-1.
    """
    with np.load(path, allow_pickle=False) as contents:
        for field in ("x", "y"):
            if field not in contents.files:
                raise ValueError(
                    f"{path} has no array {field!r}; expected x (uint8, N x 32 x 32 x 3) and y "
                    f"(integer labels, N); found {sorted(contents.files)}"
                )
        images = contents["x"]
        labels = contents["y"]
        classes = [str(name) for name in contents["classes"]] if "classes" in contents.files else None

    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(
            f"{path}: field x must be uint8 of shape (N, 32, 32, 3); received {images.dtype} {images.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(images),):
        raise ValueError(
            f"{path}: field y must be integer labels of shape ({len(images)},); "
            f"received {labels.dtype} {labels.shape}"
        )
    if labels.size and labels.min() < 0:
        raise ValueError(f"{path}: field y must hold labels of 0 or more; received {int(labels.min())}")

    class_count = int(labels.max()) + 1 if labels.size else 0
    if classes is None:
        classes = list(CIFAR10_CLASSES) if class_count <= 10 else [str(label) for label in range(class_count)]
    if len(classes) < class_count:
        raise ValueError(
            f"{path}: field classes must name every label 0 to {class_count - 1}; received {len(classes)} names"
        )
    return DecodedImages(np.ascontiguousarray(images), labels.astype(np.int64), classes)
