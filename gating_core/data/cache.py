"""Decoded images cached as .npy files, so that a data set is decoded once per source.

An entry is three files in ``<cache_dir>/decoded``: ``<key>.images.npy`` (uint8,
N x 32 x 32 x 3), ``<key>.labels.npy`` (int64, N) and ``<key>.json`` (classes,
source description, count). The key contains the data set name, the split and a
fingerprint of the source files, so editing, adding or removing a source file
gives a new key and the next load decodes again. Old entries are not deleted.

Every file is written to a temporary name in the same folder and then renamed,
and the JSON file is written last. A reader that finds the JSON file therefore
finds both arrays complete, even while another process writes the same entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

CACHE_SUBDIR = "decoded"
# Part of every fingerprint: raising it makes every existing entry a miss.
CACHE_FORMAT_VERSION = 1
_FILE_MODE = 0o644


@dataclass(frozen=True)
class CacheEntry:
    """The three file paths of one cache entry."""

    images: Path
    labels: Path
    metadata: Path


def fingerprint_files(root: Path, stats: Iterable[os.stat_result]) -> str:
    """Hash the source root, file count, total size and newest modification time.

    The hash changes when a file is added, removed, resized or rewritten. A rewrite
    that keeps both the size and the modification time goes unnoticed.
    """
    count = 0
    total_size = 0
    newest_mtime_ns = 0
    for stat in stats:
        count += 1
        total_size += stat.st_size
        newest_mtime_ns = max(newest_mtime_ns, stat.st_mtime_ns)
    text = f"v{CACHE_FORMAT_VERSION}|{root.resolve()}|{count}|{total_size}|{newest_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()


def cache_entry(cache_dir: Path, name: str, split: str, fingerprint: str) -> CacheEntry:
    """Build the file paths of the entry for one data set split and source fingerprint."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    key = f"{slug}-{split}-{fingerprint[:16]}"
    folder = cache_dir / CACHE_SUBDIR
    return CacheEntry(
        images=folder / f"{key}.images.npy",
        labels=folder / f"{key}.labels.npy",
        metadata=folder / f"{key}.json",
    )


def read_entry(entry: CacheEntry, mmap: bool = False) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """Read a cache entry and return (images, labels, metadata), or None when it is missing.

    With ``mmap`` the images stay on disk as a read-only memory map. A damaged
    entry is logged and treated as missing, so that the caller decodes again.
    """
    if not entry.metadata.exists():
        return None
    try:
        metadata = json.loads(entry.metadata.read_text())
        images = np.load(entry.images, mmap_mode="r" if mmap else None, allow_pickle=False)
        labels = np.load(entry.labels, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        logger.warning("ignoring damaged cache entry %s: %s", entry.metadata, error)
        return None

    count = metadata.get("count")
    if images.dtype != np.uint8 or images.shape != (count, 32, 32, 3) or labels.shape != (count,):
        logger.warning(
            "ignoring damaged cache entry %s: images %s %s and labels %s do not match count %s",
            entry.metadata, images.dtype, images.shape, labels.shape, count,
        )
        return None
    return images, labels, metadata


def write_entry(entry: CacheEntry, images: np.ndarray, labels: np.ndarray, metadata: dict) -> bool:
    """Write a cache entry atomically and return whether it was written.

    A cache folder that cannot be written is logged and skipped, because the
    caller still has the decoded arrays.
    """
    metadata = {**metadata, "count": int(len(images))}
    try:
        entry.metadata.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(entry.images, lambda handle: np.save(handle, images, allow_pickle=False))
        _write_atomically(entry.labels, lambda handle: np.save(handle, labels, allow_pickle=False))
        _write_atomically(entry.metadata, lambda handle: handle.write(json.dumps(metadata, indent=1).encode()))
    except OSError as error:
        logger.warning("failed to write the image cache %s, continuing without it: %s", entry.metadata.parent, error)
        return False
    return True


def _write_atomically(path: Path, write) -> None:
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    temporary = Path(handle.name)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            # NamedTemporaryFile creates files with mode 0600, but readers may run as another user.
            os.fchmod(handle.fileno(), _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
