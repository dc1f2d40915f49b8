"""Image data for GateLab: sources, cache, subsets, normalisation and corruptions.

Importing this package does not import torch, so that a web process can serve
single images with ``load_image`` alone.
"""

from __future__ import annotations

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

__all__ = [
    "CORRUPTION_KINDS",
    "CORRUPTION_PARAMETERS",
    "DatasetNotFoundError",
    "ImageSet",
    "corrupt",
    "list_dataset_names",
    "load_image",
    "load_images",
    "measure_normalization",
    "release_memory_maps",
    "resolve_normalization",
    "subset_indices",
    "validation_split",
]

