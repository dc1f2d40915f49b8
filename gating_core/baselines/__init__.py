"""Published CIFAR ResNet checkpoints as baselines: the import options and their errors.

This package imports no torch, so the API can check a request's options before it
loads anything heavy. `gating_core.baselines.checkpoints` reads, matches and evaluates
the checkpoint itself.
"""

from __future__ import annotations

import math
import re

from gating_core.data.normalization import resolve_normalization
from gating_core.spec import MAX_DEPTH, ModelSpec, Normalization

# Training data sets a baseline can come from, with their class counts.
BASELINE_DATASETS = {"cifar10": 10, "cifar100": 100}
ARCH_PATTERN = re.compile(r"resnet([0-9]+)")
ARCH_EXAMPLES = "resnet20, resnet32, resnet44, resnet56, resnet110"
NORMALIZATION_FORMAT = (
    "imagenet, cifar, or MEAN/STD with three comma-separated numbers on each side, "
    "e.g. 0.5,0.5,0.5/0.25,0.25,0.25"
)


class BaselineError(ValueError):
    """A checkpoint or import option that cannot make a baseline; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def model_spec_for_arch(arch: str) -> ModelSpec:
    """Map an architecture name such as 'resnet56' to the original CIFAR ResNet (basic units, option A)."""
    match = ARCH_PATTERN.fullmatch(arch.strip().lower()) if isinstance(arch, str) else None
    depth = int(match.group(1)) if match else 0
    if not 8 <= depth <= MAX_DEPTH or (depth - 2) % 6 != 0:
        raise BaselineError(
            "arch",
            f"arch must be resnetN with N = 6n+2 from 8 to {MAX_DEPTH} ({ARCH_EXAMPLES}, ...); received {arch!r}",
        )
    return ModelSpec(arch="resnet", block="basic", depth=depth, shortcut="A")


def arch_name(spec: ModelSpec) -> str:
    """Return the short name of a baseline's network, 'resnet56' for a ResNet-56."""
    return f"resnet{spec.depth}"


def check_dataset(dataset: str) -> str:
    """Return `dataset` when a baseline can be trained on it, else raise BaselineError."""
    if dataset not in BASELINE_DATASETS:
        raise BaselineError("dataset", f"dataset must be one of {', '.join(BASELINE_DATASETS)}; received {dataset!r}")
    return dataset


def parse_normalization(text: str, dataset: str) -> Normalization:
    """Turn 'imagenet', 'cifar' or 'm1,m2,m3/s1,s2,s3' into explicit per-channel mean and std.

    'cifar' means the statistics of the baseline's training set `dataset`. Values are
    on the 0-1 pixel scale.
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    if value in ("imagenet", "cifar"):
        mean, std = resolve_normalization(value, check_dataset(dataset))
        return Normalization(mean=mean, std=std)

    parts = value.split("/")
    try:
        if len(parts) != 2:
            raise ValueError("expected one '/'")
        mean = tuple(float(number) for number in parts[0].split(","))
        std = tuple(float(number) for number in parts[1].split(","))
        if len(mean) != 3 or len(std) != 3:
            raise ValueError("expected three values on each side")
        if not all(math.isfinite(number) for number in mean):
            raise ValueError("every mean must be finite")
        return Normalization(mean=mean, std=std)
    except ValueError as error:
        raise BaselineError(
            "normalization", f"normalization must be {NORMALIZATION_FORMAT}, with every std above 0; received {text!r}"
        ) from error


def describe_normalization(normalization: Normalization, dataset: str) -> str:
    """Return 'imagenet' or 'cifar' when the values are those presets, else MEAN/STD in the import format."""
    for name in ("imagenet", "cifar"):
        mean, std = resolve_normalization(name, dataset)
        if _close(normalization.mean, mean) and _close(normalization.std, std):
            return name
    mean_text = ",".join(f"{value:g}" for value in normalization.mean)
    std_text = ",".join(f"{value:g}" for value in normalization.std)
    return f"{mean_text}/{std_text}"


def _close(values: tuple[float, ...], reference: tuple[float, ...]) -> bool:
    return all(abs(a - b) < 1e-9 for a, b in zip(values, reference))
