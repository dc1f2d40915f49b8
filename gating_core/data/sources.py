"""Find a data set on disk, decode it once and serve it from the image cache.

``load_images`` looks for a data set in the data directory, in the order given
by each ``_locate_*`` function, and returns an ``ImageSet``. Decoded arrays are
cached in ``<cache_dir>/decoded`` (see ``gating_core.data.cache``), so a later
call reads two .npy files instead of decoding again. Nothing here imports torch
at module level: torchvision is imported only to download, and only when the
caller allows downloads.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gating_core.data import readers
from gating_core.data.cache import cache_entry, fingerprint_files, read_entry, write_entry

logger = logging.getLogger(__name__)

SPLITS = ("train", "test")
DATASET_NAMES = ("cifar10", "cifar100", "fashion-mnist", "svhn", "npz:PATH")
NPZ_PREFIX = "npz:"
DOWNLOADS_SUBDIR = "downloads"
# Install folder of the gzipped IDX files of Debian's dataset-fashion-mnist package.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


class DatasetNotFoundError(FileNotFoundError):
    """Error for a data set that none of the searched locations contains."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Decoded images of one data set split, with labels and class names.

    ``images`` is uint8 of shape (N, 32, 32, 3) in RGB order and ``labels`` is
    int64 of shape (N,). Both arrays are read-only. ``source`` describes where
    the images were read from.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str
    split: str
    source: str

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class _Source:
    """A located data set: a description, the file status that fingerprints it and its reader."""

    description: str
    root: Path
    stats: list[os.stat_result]
    read: Callable[[], readers.DecodedImages]

    @property
    def fingerprint(self) -> str:
        return fingerprint_files(self.root, self.stats)


@dataclass(frozen=True)
class _CifarLayout:
    """File names of torchvision's CIFAR download for one of the two data sets."""

    folder: str
    batches: dict[str, list[str]]
    label_key: str
    meta_name: str
    class_key: str
    class_count: int
    torchvision_class: str


_CIFAR_LAYOUTS = {
    "cifar10": _CifarLayout(
        folder="cifar-10-batches-py",
        batches={"train": [f"data_batch_{number}" for number in range(1, 6)], "test": ["test_batch"]},
        label_key="labels",
        meta_name="batches.meta",
        class_key="label_names",
        class_count=10,
        torchvision_class="CIFAR10",
    ),
    "cifar100": _CifarLayout(
        folder="cifar-100-python",
        batches={"train": ["train"], "test": ["test"]},
        label_key="fine_labels",
        meta_name="meta",
        class_key="fine_label_names",
        class_count=100,
        torchvision_class="CIFAR100",
    ),
}


def list_dataset_names() -> tuple[str, ...]:
    """Return the data set names that ``load_images`` accepts. ``npz:PATH`` is the pattern for any .npz file."""
    return DATASET_NAMES


def load_images(name: str, split: str, data_dir: Path | str, cache_dir: Path | str,
                allow_download: bool = False) -> ImageSet:
    """Load one split of a data set, decoding it on the first call and reading the cache after.

    For ``npz:PATH`` the split is recorded but selects nothing, because the file
    contains one set of images.

    Raises:
        ValueError: an unknown name or split, an npz path outside the data
            directory, or files with the wrong shape or type.
        DatasetNotFoundError: the data set is in none of the places looked for.
    """
    return _load(name, split, Path(data_dir), Path(cache_dir), allow_download, mmap=False)


def load_image(name: str, split: str, index: int, data_dir: Path | str, cache_dir: Path | str) -> np.ndarray:
    """Read one uint8 image (32, 32, 3) from a memory map of the cached data set.

    The first call for a data set fills the cache if needed and opens the memory
    map. Later calls in the same process reuse it without checking the source
    files again. After ``release_memory_maps`` the next call checks them.
    """
    images = _memory_mapped_images(name, split, str(Path(data_dir).resolve()), str(Path(cache_dir).resolve()))
    position = operator.index(index)
    if not 0 <= position < len(images):
        raise ValueError(
            f"index must be between 0 and {len(images) - 1} for the {split} split of {name}; received {position}"
        )
    return np.array(images[position])


def release_memory_maps() -> None:
    """Close the memory maps that ``load_image`` keeps, so that its next call checks the source files."""
    _memory_mapped_images.cache_clear()


@functools.lru_cache(maxsize=32)
def _memory_mapped_images(name: str, split: str, data_dir: str, cache_dir: str) -> np.ndarray:
    return _load(name, split, Path(data_dir), Path(cache_dir), allow_download=False, mmap=True).images


def _load(name: str, split: str, data_dir: Path, cache_dir: Path, allow_download: bool, mmap: bool) -> ImageSet:
    _check_name_and_split(name, split)
    source = _locate(name, split, data_dir, cache_dir, allow_download)
    entry = cache_entry(cache_dir, name, split, source.fingerprint)

    cached = read_entry(entry, mmap=mmap)
    if cached is not None:
        images, labels, metadata = cached
        return _image_set(images, labels, metadata["classes"], name, split, metadata["source"])

    logger.info("reading the %s split of %s from %s; later loads use the cache in %s",
                split, name, source.description, entry.metadata.parent)
    decoded = source.read()
    _check_decoded(decoded, source.description)
    written = write_entry(
        entry, decoded.images, decoded.labels, {"classes": decoded.classes, "source": source.description}
    )
    if mmap and written:
        cached = read_entry(entry, mmap=True)
        if cached is not None:
            return _image_set(cached[0], cached[1], decoded.classes, name, split, source.description)
    return _image_set(decoded.images, decoded.labels, decoded.classes, name, split, source.description)


def _image_set(images: np.ndarray, labels: np.ndarray, classes: list[str], name: str, split: str,
               source: str) -> ImageSet:
    if images.flags.writeable:
        images.setflags(write=False)
    labels.setflags(write=False)
    return ImageSet(images, labels, list(classes), name, split, source)


def _check_name_and_split(name: str, split: str) -> None:
    known = isinstance(name, str) and (
        name in _CIFAR_LAYOUTS or name in ("fashion-mnist", "svhn") or name.startswith(NPZ_PREFIX)
    )
    if not known:
        raise ValueError(f"dataset name must be one of {', '.join(DATASET_NAMES)}; received {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; received {split!r}")


def _check_decoded(decoded: readers.DecodedImages, description: str) -> None:
    if decoded.images.shape != (len(decoded.labels), *readers.IMAGE_SHAPE):
        raise ValueError(
            f"{description}: read images of shape {decoded.images.shape} and {len(decoded.labels)} labels; "
            f"expected (N, 32, 32, 3) images with one label each"
        )
    if len(decoded.labels) and not 0 <= decoded.labels.min() <= decoded.labels.max() < len(decoded.classes):
        raise ValueError(
            f"{description}: labels range from {decoded.labels.min()} to {decoded.labels.max()}; "
            f"expected 0 to {len(decoded.classes) - 1} for {len(decoded.classes)} classes"
        )


def _locate(name: str, split: str, data_dir: Path, cache_dir: Path, allow_download: bool) -> _Source:
    if name.startswith(NPZ_PREFIX):
        return _locate_npz(name[len(NPZ_PREFIX):], data_dir)

    looked_for: list[str] = []
    downloads = cache_dir / DOWNLOADS_SUBDIR
    if name in _CIFAR_LAYOUTS:
        locate = functools.partial(_locate_cifar, _CIFAR_LAYOUTS[name], name)
    elif name == "svhn":
        locate = _locate_svhn
    else:
        locate = _locate_fashion_mnist
    source = locate(split, data_dir, downloads, looked_for)
    if source is not None:
        return source

    can_download = name != "fashion-mnist"
    if allow_download and can_download:
        _download(name, split, downloads)
        source = locate(split, data_dir, downloads, [])
        if source is not None:
            return source
    raise DatasetNotFoundError(_not_found_message(name, split, data_dir, looked_for, can_download))


def _not_found_message(name: str, split: str, data_dir: Path, looked_for: list[str], can_download: bool) -> str:
    state = "" if data_dir.is_dir() else " (the directory does not exist)"
    lines = [f"the {split} split of {name} was not found; data directory: {data_dir}{state}. Looked for:"]
    lines.extend(f"  - {location}" for location in looked_for)
    advice = "Set GATELAB_DATA_DIR to a directory that contains one of these"
    if can_download:
        advice += ", or allow downloads"
    if name == "fashion-mnist":
        advice += ", or install the Debian package dataset-fashion-mnist"
    lines.append(advice + ".")
    return "\n".join(lines)


def _locate_cifar(layout: _CifarLayout, name: str, split: str, data_dir: Path, downloads: Path,
                  looked_for: list[str]) -> _Source | None:
    for folder in (data_dir / layout.folder, data_dir / name / layout.folder):
        source = _cifar_batches_source(layout, folder, split, looked_for)
        if source is not None:
            return source

    folder_root = data_dir / name / split
    looked_for.append(f"{folder_root}/<class>/*.jpg|*.png (class folders)")
    if folder_root.is_dir():
        classes, files = readers.list_class_folders(folder_root)
        if len(classes) != layout.class_count:
            raise ValueError(
                f"{folder_root} must contain {layout.class_count} class folders for {name}; "
                f"found {len(classes)}: {', '.join(classes[:12])}"
            )
        return _Source(
            description=f"class folders in {folder_root}",
            root=folder_root,
            stats=[item.stat for item in files],
            read=lambda: readers.read_class_folders(classes, files),
        )

    return _cifar_batches_source(layout, downloads / layout.folder, split, looked_for, note="earlier download")


def _cifar_batches_source(layout: _CifarLayout, folder: Path, split: str, looked_for: list[str],
                          note: str = "torchvision's pickled batches") -> _Source | None:
    looked_for.append(f"{folder} ({note})")
    names = [*layout.batches[split], layout.meta_name]
    paths = [folder / file_name for file_name in names]
    if not all(path.is_file() for path in paths):
        return None
    return _Source(
        description=f"{note} in {folder}",
        root=folder,
        stats=[path.stat() for path in paths],
        read=lambda: readers.read_cifar_batches(
            folder, layout.batches[split], layout.label_key, layout.meta_name, layout.class_key
        ),
    )


def _locate_fashion_mnist(split: str, data_dir: Path, downloads: Path, looked_for: list[str]) -> _Source | None:
    prefix = "train" if split == "train" else "t10k"
    for folder in (data_dir / "fashion-mnist", DEBIAN_FASHION_MNIST_DIR):
        looked_for.append(f"{folder}/{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]")
        images_path = _first_file(folder, f"{prefix}-images-idx3-ubyte")
        labels_path = _first_file(folder, f"{prefix}-labels-idx1-ubyte")
        if images_path is not None and labels_path is not None:
            return _Source(
                description=f"Fashion-MNIST IDX files in {folder}",
                root=folder,
                stats=[images_path.stat(), labels_path.stat()],
                read=lambda: readers.read_idx_pair(images_path, labels_path),
            )
    return None


def _first_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _locate_svhn(split: str, data_dir: Path, downloads: Path, looked_for: list[str]) -> _Source | None:
    for folder, note in ((data_dir / "svhn", "torchvision's SVHN file"), (downloads / "svhn", "earlier download")):
        path = folder / f"{split}_32x32.mat"
        looked_for.append(f"{path} ({note})")
        if path.is_file():
            return _Source(
                description=f"SVHN file {path}",
                root=path,
                stats=[path.stat()],
                read=lambda: readers.read_svhn_mat(path),
            )
    return None


def _locate_npz(relative: str, data_dir: Path) -> _Source:
    if not relative or Path(relative).is_absolute():
        raise ValueError(
            f"npz path must be relative to the data directory {data_dir}; received {relative!r}"
        )
    root = data_dir.resolve()
    path = (data_dir / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(
            f"npz path must stay inside the data directory {data_dir}; received {relative!r}, "
            f"which resolves to {path}"
        )
    if path.suffix != ".npz":
        raise ValueError(f"npz path must name a .npz file; received {relative!r}")
    if not path.is_file():
        raise DatasetNotFoundError(
            f"npz file {relative!r} was not found in the data directory {data_dir} (looked for {path}). "
            f"Set GATELAB_DATA_DIR to the directory that contains it."
        )
    return _Source(
        description=f"npz file {path}",
        root=path,
        stats=[path.stat()],
        read=lambda: readers.read_npz(path),
    )


def _download(name: str, split: str, downloads: Path) -> None:
    import torchvision.datasets

    downloads.mkdir(parents=True, exist_ok=True)
    try:
        if name == "svhn":
            torchvision.datasets.SVHN(root=str(downloads / "svhn"), split=split, download=True)
        else:
            dataset_class = getattr(torchvision.datasets, _CIFAR_LAYOUTS[name].torchvision_class)
            dataset_class(root=str(downloads), train=split == "train", download=True)
    except (OSError, RuntimeError) as error:
        raise DatasetNotFoundError(
            f"downloading the {split} split of {name} into {downloads} failed: {error}. "
            f"Check the network connection, or put the files in the data directory."
        ) from error
