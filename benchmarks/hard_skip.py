"""Hard skip at inference: the wall time it saves per image against the multiply-accumulates it saves."""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.config import BenchConfig
from benchmarks.report import Report, median, ratio_figure
from benchmarks.workload import CIFAR10_CLASSES, Cifar10, make_spec
from gating_core.analysis.hard_skip import HardSkipCurve, hard_skip_curve
from gating_core.data.pipeline import DeviceImages, eval_batches
from gating_core.models import build_model
from gating_core.models.complexity import gated_stage_macs
from gating_core.models.resnet import GatedResNet

SAVING_TARGET = 0.7
# Above every gate value (a use weight is at most 1), so every image skips.
ALL_SKIP_THRESHOLD = 1.01


@torch.no_grad()
def time_soft_pass(model: GatedResNet, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Return the seconds of one plain forward pass over the batches, which runs every unit for every image."""
    started = time.perf_counter()
    for images, _ in batches:
        model(images)
    return time.perf_counter() - started


def benchmark_hard_skip(config: BenchConfig, cifar: Cifar10, report: Report) -> None:
    """Time the plain forward pass and hard skip at thresholds where none, half and all of the images skip."""
    torch.manual_seed(0)
    spec = make_spec(config, gate="model1", precision="float32")
    model = build_model(spec.model, CIFAR10_CLASSES).to(memory_format=torch.channels_last).eval()
    if gated_stage_macs(model) == 0:
        raise ValueError(
            f"depth must give the gated stage two or more units (14 or more for basic units); received {config.depth}"
        )
    data = DeviceImages.from_image_set(cifar.test, cifar.test_indices(config.hard_skip_images))
    batches = list(eval_batches(data, config.hard_skip_batch, cifar.mean, cifar.std, channels_last=True))
    with torch.no_grad():
        gates = torch.cat([model(images).gates[:, 0] for images, _ in batches]).numpy()
    thresholds = [0.0, float(np.median(gates)), ALL_SKIP_THRESHOLD]

    soft_seconds: list[float] = []
    curves: list[HardSkipCurve] = []
    for _ in range(config.warmup_rounds + config.hard_skip_repeats):
        soft_seconds.append(time_soft_pass(model, batches))
        curves.append(hard_skip_curve(model, data, cifar.mean, cifar.std, thresholds, config.hard_skip_batch))
    soft_seconds, curves = soft_seconds[config.warmup_rounds:], curves[config.warmup_rounds:]

    count = len(data)
    soft_per_image = median(soft_seconds) / count
    full_macs = curves[0].full_macs
    rows = []
    for position, title in ((1, "half of the images skip"), (2, "every image skips")):
        point_seconds = median([curve.points[position].seconds_per_image for curve in curves])
        point = curves[0].points[position]
        wall_saving = 1 - point_seconds / soft_per_image
        mac_saving = 1 - point.macs_per_image / full_macs
        ratio = wall_saving / mac_saving
        detail = f"time {-100 * wall_saving:+.1f} % for MACs {-100 * mac_saving:+.1f} %"
        name = f"Hard-skip wall-time saving / MAC saving, {title}"
        report.figures.append(ratio_figure("e", name, ratio, SAVING_TARGET, at_most=False, detail=detail))
        rows.append((title, point.skipped_fraction, point_seconds, point.macs_per_image))

    none_seconds = median([curve.points[0].seconds_per_image for curve in curves])
    report.add_details("e. Hard skip", _hard_skip_details(config, soft_per_image, none_seconds, full_macs, rows))


def _hard_skip_details(config: BenchConfig, soft_per_image: float, none_seconds: float, full_macs: int,
                       rows: list[tuple[str, float, float, float]]) -> list[str]:
    lines = [
        f"A model1 ResNet-{config.depth} (gate over stage 3) with fresh weights, in float32 at batch "
        f"{config.hard_skip_batch} on {config.hard_skip_images:,} CIFAR-10 test images on the CPU. Thresholds are "
        "set from the gate values so that none, half or all of the images skip; a skipped image does not run stage "
        "3's units after the first. Times come from `gating_core.analysis.hard_skip.hard_skip_curve` and are "
        "compared with a plain forward pass over the same batches. Medians of "
        f"{config.hard_skip_repeats} repetitions after {config.warmup_rounds} warm-up(s); MACs from `count_macs` and "
        "`gated_stage_macs`.",
        "",
        "| Pass | images skipped | µs per image | MACs per image |",
        "|---|---|---|---|",
        f"| plain forward | 0 % | {1e6 * soft_per_image:.1f} | {full_macs / 1e6:.2f} M |",
        f"| hard skip, no image below the threshold | 0 % | {1e6 * none_seconds:.1f} | {full_macs / 1e6:.2f} M |",
    ]
    for title, fraction, seconds, macs in rows:
        lines.append(f"| hard skip, {title} | {100 * fraction:.0f} % | {1e6 * seconds:.1f} | {macs / 1e6:.2f} M |")
    return lines
