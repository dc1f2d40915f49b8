"""Image data for GateLab: sources, cache, subsets, normalisation, corruptions and device batches.

Importing this package does not import torch. ``DeviceImages``, ``train_batches``
and ``eval_batches`` live in ``gating_core.data.pipeline``, which needs torch and
is imported on first access to those names, so that a web process can serve
single images with ``load_image`` alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gating_core.data.corruptions import CORRUPTION_KINDS, CORRUPTION_PARAMETERS, corrupt
from gating_core.data.normalization import measure_normalization, resolve_normalization
from gating_core.data.sources import (
    DatasetNotFoundError,
    ImageSet,
    list_dataset_names,
    load_image,
    load_images,
    release_memory_maps,
)
from gating_core.data.splits import subset_indices, validation_split

if TYPE_CHECKING:
    from gating_core.data.pipeline import DeviceImages, eval_batches, train_batches

_PIPELINE_NAMES = ("DeviceImages", "train_batches", "eval_batches")

__all__ = [
    "CORRUPTION_KINDS",
    "CORRUPTION_PARAMETERS",
    "DatasetNotFoundError",
    "DeviceImages",
    "ImageSet",
    "corrupt",
    "eval_batches",
    "list_dataset_names",
    "load_image",
    "load_images",
    "measure_normalization",
    "release_memory_maps",
    "resolve_normalization",
    "subset_indices",
    "train_batches",
    "validation_split",
]


def __getattr__(name: str) -> Any:
    if name in _PIPELINE_NAMES:
        return getattr(importlib.import_module("gating_core.data.pipeline"), name)
    raise AttributeError(f"module 'gating_core.data' has no attribute {name!r}")
