"""Hard skip at inference: run the gated stage's later units only for images with g >= tau.

For each threshold tau the curve reports accuracy, the fraction of images that
skip, the multiply-accumulates (MACs) per image and the measured wall time per
image. MACs per image are the full network's MACs minus the skipped fraction
times the MACs of the gated stage's units after the first, which a skipped
image never runs (see `GatedResNet.forward_hard_skip`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from gating_core.data.pipeline import DeviceImages, eval_batches
from gating_core.models.complexity import count_macs, gated_stage_macs
from gating_core.models.resnet import GatedResNet

DEFAULT_THRESHOLDS = tuple(round(0.1 * step, 1) for step in range(11))


@dataclass(frozen=True)
class HardSkipPoint:
    """Accuracy and cost of the network at one skip threshold."""

    threshold: float
    accuracy: float
    skipped_fraction: float
    macs_per_image: float
    seconds_per_image: float


@dataclass(frozen=True)
class HardSkipCurve:
    """Points of one network over several thresholds, with its soft-gate accuracy and MAC counts."""

    points: list[HardSkipPoint]
    soft_accuracy: float
    full_macs: int
    gated_stage_macs: int
    images: int

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "points": [asdict(point) for point in self.points]}


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    values = list(thresholds)
    if not values:
        raise ValueError("thresholds must list at least one value; received none")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"every threshold must be a finite number; received {value!r}")
    return [float(value) for value in values]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _evaluate_at(
    model: GatedResNet, batches: list[tuple[Tensor, Tensor]], threshold: float | None
) -> tuple[int, int, float]:
    """Return the correct count, skipped count and seconds of one pass over the batches."""
    correct = 0
    skipped = 0
    device = batches[0][0].device
    _synchronize(device)
    started = time.perf_counter()
    for images, labels in batches:
        if threshold is None:
            output = model(images)
        else:
            output, skipped_mask = model.forward_hard_skip(images, threshold)
            skipped += int(skipped_mask.sum())
        correct += int((output.logits.argmax(dim=1) == labels).sum())
    _synchronize(device)
    return correct, skipped, time.perf_counter() - started


def hard_skip_curve(
    model: GatedResNet,
    data: DeviceImages,
    mean: Sequence[float],
    std: Sequence[float],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    batch_size: int = 500,
) -> HardSkipCurve:
    """Measure accuracy, skipped fraction, MACs and wall time per image at each threshold, in float32.

    The images are normalised once and kept on the model's device. One untimed pass
    at the first threshold warms up the kernels before any pass is timed.
    """
    values = _check_thresholds(thresholds)
    if len(data) == 0:
        raise ValueError("data must contain at least one image; received an empty set")
    was_training = model.training
    model.eval()
    try:
        batches = list(eval_batches(data, batch_size, mean, std, channels_last=True))
        full_macs = count_macs(model)
        stage_macs = gated_stage_macs(model)
        count = len(data)

        soft_correct, _, _ = _evaluate_at(model, batches, None)
        _evaluate_at(model, batches[:1], values[0])

        points = []
        for threshold in values:
            correct, skipped, seconds = _evaluate_at(model, batches, threshold)
            skipped_fraction = skipped / count
            points.append(
                HardSkipPoint(
                    threshold=threshold,
                    accuracy=correct / count,
                    skipped_fraction=skipped_fraction,
                    macs_per_image=full_macs - skipped_fraction * stage_macs,
                    seconds_per_image=seconds / count,
                )
            )
    finally:
        model.train(was_training)
    return HardSkipCurve(points, soft_correct / count, full_macs, stage_macs, count)


@torch.no_grad()
def count_executed_macs(model: GatedResNet, images: Tensor, threshold: float) -> int:
    """Count the MACs of every Conv2d and Linear call during one hard-skip pass over `images`.

    Unlike `hard_skip_curve`, which computes MACs from the skipped fraction, this
    counts the layer calls that really run, so it shows whether skipping saves work.
    """
    total = 0

    def record(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            total += output.numel() * (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        else:
            total += output.numel() * layer.in_features

    layers = [module for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    handles = [layer.register_forward_hook(record) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        model.forward_hard_skip(images, threshold)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total
