"""Tests of data set lookup, the readers and the decoded-image cache, on small files made here."""

from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gating_core.data import DatasetNotFoundError, list_dataset_names, load_image, load_images, release_memory_maps
from gating_core.data.readers import CIFAR10_CLASSES

REPO_ROOT = Path(__file__).resolve().parents[2]
# File stems per class, in the numeric order the loader must return them in.
STEMS = (0, 1, 2, 10)


def make_class_folders(root: Path, dataset: str = "cifar10", split: str = "test") -> None:
    """Write 10 class folders of 32x32 PNGs whose red channel is the label and green channel the stem."""
    split_root = root / dataset / split
    # Create folders in reverse order, so that creation order differs from sorted order.
    for label, class_name in reversed(list(enumerate(sorted(CIFAR10_CLASSES)))):
        folder = split_root / class_name
        folder.mkdir(parents=True)
        for stem in reversed(STEMS):
            pixels = np.zeros((32, 32, 3), dtype=np.uint8)
            pixels[..., 0] = label
            pixels[..., 1] = stem
            pixels[..., 2] = 200
            Image.fromarray(pixels).save(folder / f"{stem}.png")
        (folder / "notes.txt").write_text("not an image")


def write_cifar_batches(folder: Path, count: int) -> np.ndarray:
    """Write a torchvision-style CIFAR-10 test batch and meta file; return the images (N, 32, 32, 3)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    rows = images.transpose(0, 3, 1, 2).reshape(count, -1)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump({"data": rows, "labels": [i % 10 for i in range(count)]}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": list(CIFAR10_CLASSES)}, handle)
    return images


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_class_folders_sorted_labels_and_numeric_order(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)

    images = load_images("cifar10", "test", tmp_path, cache_dir)

    assert images.images.shape == (40, 32, 32, 3)
    assert images.images.dtype == np.uint8
    assert images.labels.dtype == np.int64
    assert images.classes == sorted(CIFAR10_CLASSES)
    assert images.labels.tolist() == [label for label in range(10) for _ in STEMS]
    assert images.images[:, 0, 0, 0].tolist() == images.labels.tolist()
    assert images.images[:, 0, 0, 1].tolist() == list(STEMS) * 10
    assert str(tmp_path / "cifar10" / "test") in images.source
    assert not images.images.flags.writeable


def test_class_folders_wrong_class_count(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    for path in (tmp_path / "cifar10" / "test" / "truck").iterdir():
        path.unlink()
    (tmp_path / "cifar10" / "test" / "truck").rmdir()

    with pytest.raises(ValueError, match="must contain 10 class folders for cifar10; found 9"):
        load_images("cifar10", "test", tmp_path, cache_dir)


def test_class_folder_without_images(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    for path in (tmp_path / "cifar10" / "test" / "ship").glob("*.png"):
        path.unlink()

    with pytest.raises(ValueError, match="ship contains no .jpg or .png images"):
        load_images("cifar10", "test", tmp_path, cache_dir)


def test_torchvision_batches_before_class_folders(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    expected = write_cifar_batches(tmp_path / "cifar10" / "cifar-10-batches-py", count=7)

    images = load_images("cifar10", "test", tmp_path, cache_dir)

    assert len(images) == 7
    np.testing.assert_array_equal(images.images, expected)
    assert images.labels.tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert images.classes == list(CIFAR10_CLASSES)
    assert "cifar-10-batches-py" in images.source


def test_missing_dataset_message_lists_locations(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        load_images("cifar10", "train", tmp_path, cache_dir)

    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert f"data directory: {tmp_path}" in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert str(tmp_path / "cifar10" / "cifar-10-batches-py") in message
    assert str(tmp_path / "cifar10" / "train") + "/<class>" in message
    assert str(cache_dir / "downloads" / "cifar-10-batches-py") in message
    assert "GATELAB_DATA_DIR" in message


def test_missing_data_directory_is_named(tmp_path: Path, cache_dir: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(DatasetNotFoundError, match="the directory does not exist"):
        load_images("svhn", "test", missing, cache_dir)


def test_unknown_name_and_split(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="cifar10, cifar100, fashion-mnist, svhn, npz:PATH; received 'mnist'"):
        load_images("mnist", "test", tmp_path, cache_dir)
    with pytest.raises(ValueError, match="split must be one of train, test; received 'val'"):
        load_images("cifar10", "val", tmp_path, cache_dir)


def test_list_dataset_names() -> None:
    assert list_dataset_names() == ("cifar10", "cifar100", "fashion-mnist", "svhn", "npz:PATH")


def test_fashion_mnist_idx_from_data_dir(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    gray = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28) % 251 + 1
    header = bytes([0, 0, 8, 3]) + np.array([3, 28, 28], dtype=">i4").tobytes()
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + gray.astype(np.uint8).tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + np.array([3], dtype=">i4").tobytes() + bytes([9, 0, 4]))

    images = load_images("fashion-mnist", "test", tmp_path, cache_dir)

    assert images.images.shape == (3, 32, 32, 3)
    assert images.labels.tolist() == [9, 0, 4]
    assert images.classes[9] == "Ankle boot"
    np.testing.assert_array_equal(images.images[:, 2:30, 2:30, 1], gray.astype(np.uint8))
    assert images.images[:, :2].max() == 0
    assert images.images[:, :, 30:].max() == 0
    np.testing.assert_array_equal(images.images[..., 0], images.images[..., 2])


def test_fashion_mnist_bad_idx_header(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + bytes(12))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(4))

    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes with 3 dimensions"):
        load_images("fashion-mnist", "test", tmp_path, cache_dir)


def test_svhn_mat_maps_ten_to_zero(tmp_path: Path, cache_dir: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    (tmp_path / "svhn").mkdir()
    savemat(tmp_path / "svhn" / "train_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": np.array([[10], [1], [5], [10]])})

    loaded = load_images("svhn", "train", tmp_path, cache_dir)

    np.testing.assert_array_equal(loaded.images, images)
    assert loaded.labels.tolist() == [0, 1, 5, 0]
    assert loaded.classes == [str(digit) for digit in range(10)]


def test_npz_classes_default_and_given(tmp_path: Path, cache_dir: Path) -> None:
    images = np.full((3, 32, 32, 3), 7, dtype=np.uint8)
    write_npz(tmp_path / "sets" / "small.npz", x=images, y=np.array([0, 9, 3], dtype=np.uint8))
    write_npz(tmp_path / "sets" / "wide.npz", x=images, y=np.array([0, 11, 3]))
    write_npz(tmp_path / "sets" / "named.npz", x=images, y=np.array([0, 1, 1]), classes=np.array(["cat", "dog"]))

    small = load_images("npz:sets/small.npz", "test", tmp_path, cache_dir)
    wide = load_images("npz:sets/wide.npz", "test", tmp_path, cache_dir)
    named = load_images("npz:sets/named.npz", "test", tmp_path, cache_dir)

    assert small.classes == list(CIFAR10_CLASSES)
    assert small.labels.dtype == np.int64
    assert wide.classes == [str(label) for label in range(12)]
    assert named.classes == ["cat", "dog"]
    np.testing.assert_array_equal(named.images, images)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"y": np.zeros(2, dtype=np.int64)}, "has no array 'x'"),
        ({"x": np.zeros((2, 32, 32, 3), dtype=np.uint8)}, "has no array 'y'"),
        ({"x": np.zeros((2, 32, 32, 3), dtype=np.float32), "y": np.zeros(2)},
         r"field x must be uint8 of shape \(N, 32, 32, 3\); received float32 \(2, 32, 32, 3\)"),
        ({"x": np.zeros((2, 28, 28, 3), dtype=np.uint8), "y": np.zeros(2)},
         r"field x must be uint8 of shape \(N, 32, 32, 3\); received uint8 \(2, 28, 28, 3\)"),
        ({"x": np.zeros((2, 32, 32, 3), dtype=np.uint8), "y": np.zeros(3, dtype=np.int64)},
         r"field y must be integer labels of shape \(2,\); received int64 \(3,\)"),
        ({"x": np.zeros((2, 32, 32, 3), dtype=np.uint8), "y": np.zeros(2, dtype=np.float64)},
         r"field y must be integer labels of shape \(2,\); received float64 \(2,\)"),
        ({"x": np.zeros((2, 32, 32, 3), dtype=np.uint8), "y": np.array([0, -1])},
         "field y must hold labels of 0 or more; received -1"),
        ({"x": np.zeros((2, 32, 32, 3), dtype=np.uint8), "y": np.array([0, 2]), "classes": np.array(["a", "b"])},
         "field classes must name every label 0 to 2; received 2 names"),
    ],
)
def test_npz_invalid_fields(tmp_path: Path, cache_dir: Path, arrays: dict, message: str) -> None:
    write_npz(tmp_path / "bad.npz", **arrays)

    with pytest.raises(ValueError, match=message):
        load_images("npz:bad.npz", "test", tmp_path, cache_dir)


def test_npz_path_escape_rejected(tmp_path: Path, cache_dir: Path) -> None:
    data_dir = tmp_path / "data"
    outside = tmp_path / "outside.npz"
    write_npz(outside, x=np.zeros((1, 32, 32, 3), dtype=np.uint8), y=np.zeros(1, dtype=np.int64))
    data_dir.mkdir()
    (data_dir / "link.npz").symlink_to(outside)

    with pytest.raises(ValueError, match="npz path must be relative to the data directory .*received '/"):
        load_images(f"npz:{outside}", "test", data_dir, cache_dir)
    with pytest.raises(ValueError, match=r"must stay inside the data directory .*received '\.\./outside\.npz'"):
        load_images("npz:../outside.npz", "test", data_dir, cache_dir)
    with pytest.raises(ValueError, match="must stay inside the data directory .*received 'link.npz'"):
        load_images("npz:link.npz", "test", data_dir, cache_dir)


def test_npz_missing_file_and_wrong_suffix(tmp_path: Path, cache_dir: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="npz file 'absent.npz' was not found .*GATELAB_DATA_DIR"):
        load_images("npz:absent.npz", "test", tmp_path, cache_dir)
    with pytest.raises(ValueError, match="must name a .npz file; received 'images.txt'"):
        load_images("npz:images.txt", "test", tmp_path, cache_dir)


def test_cache_second_load_skips_decoding(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    first = load_images("cifar10", "test", tmp_path, cache_dir)
    assert len(list((cache_dir / "decoded").glob("cifar10-test-*.json"))) == 1

    # Replace one PNG with bytes that PIL cannot decode, keeping its size and
    # modification time, so the source fingerprint stays the same.
    victim = tmp_path / "cifar10" / "test" / "airplane" / "0.png"
    status = victim.stat()
    victim.write_bytes(b"\xff" * status.st_size)
    os.utime(victim, ns=(status.st_atime_ns, status.st_mtime_ns))
    second = load_images("cifar10", "test", tmp_path, cache_dir)

    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.classes == first.classes
    assert second.source == first.source


def test_cache_changed_source_decodes_again(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    load_images("cifar10", "test", tmp_path, cache_dir)
    Image.fromarray(np.full((32, 32, 3), 99, dtype=np.uint8)).save(tmp_path / "cifar10" / "test" / "cat" / "11.png")

    reloaded = load_images("cifar10", "test", tmp_path, cache_dir)

    assert len(reloaded) == 41
    assert reloaded.images[3 * len(STEMS) + len(STEMS), 0, 0, 0] == 99
    assert len(list((cache_dir / "decoded").glob("cifar10-test-*.json"))) == 2


def test_cache_damaged_entry_is_rebuilt(tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_class_folders(tmp_path)
    first = load_images("cifar10", "test", tmp_path, cache_dir)
    (images_file,) = (cache_dir / "decoded").glob("cifar10-test-*.images.npy")
    images_file.write_bytes(images_file.read_bytes()[:500])

    with caplog.at_level(logging.WARNING, logger="gating_core.data.cache"):
        second = load_images("cifar10", "test", tmp_path, cache_dir)

    np.testing.assert_array_equal(second.images, first.images)
    assert "ignoring damaged cache entry" in caplog.text
    assert np.load(images_file).shape == (40, 32, 32, 3)


def test_cache_files_complete_and_no_temporaries(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    load_images("cifar10", "test", tmp_path, cache_dir)

    names = sorted(path.name for path in (cache_dir / "decoded").iterdir())
    (metadata_file,) = (cache_dir / "decoded").glob("*.json")
    metadata = json.loads(metadata_file.read_text())

    assert len(names) == 3
    assert not [name for name in names if name.endswith(".tmp")]
    assert metadata["count"] == 40
    assert metadata["classes"] == sorted(CIFAR10_CLASSES)
    assert (metadata_file.stat().st_mode & 0o777) == 0o644


def test_load_image_matches_load_images(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    release_memory_maps()

    image = load_image("cifar10", "test", 13, tmp_path, cache_dir)
    full = load_images("cifar10", "test", tmp_path, cache_dir)

    assert image.shape == (32, 32, 3)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, full.images[13])
    with pytest.raises(ValueError, match="index must be between 0 and 39 for the test split of cifar10; received 40"):
        load_image("cifar10", "test", 40, tmp_path, cache_dir)
    with pytest.raises(ValueError, match="received -1"):
        load_image("cifar10", "test", -1, tmp_path, cache_dir)
    release_memory_maps()


def test_load_image_does_not_import_torch(tmp_path: Path, cache_dir: Path) -> None:
    make_class_folders(tmp_path)
    script = (
        "import sys\n"
        "from gating_core.data import load_image\n"
        f"image = load_image('cifar10', 'test', 5, {str(tmp_path)!r}, {str(cache_dir)!r})\n"
        "assert image.shape == (32, 32, 3), image.shape\n"
        "print('torch' in sys.modules)\n"
    )

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
