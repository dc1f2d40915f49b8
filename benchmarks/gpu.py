"""ResNet-110 epoch time on a GPU: 50,000 32x32 images through the full pipeline.

The images live on the GPU as uint8, batches are cropped and flipped there,
and the trainer runs with channels_last, bf16 autocast where the GPU supports
it and cudnn.benchmark (see `configure_backends`). `python -m benchmarks.run`
calls `time_gpu_epochs` when CUDA is available; on its own,
`python -m benchmarks.gpu` prints the result as JSON.

NOTE: this script has run on the CPU only, with tiny sizes in the smoke test.
Its CUDA path and timings have not been checked on a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.config import BenchConfig
from benchmarks.report import Figure, Report, load_average, median
from benchmarks.workload import CIFAR10_CLASSES, build_trainer
from gating_core.data import DatasetNotFoundError, ImageSet, load_images, resolve_normalization
from gating_core.data.pipeline import DeviceImages
from gating_core.experiment import configure_backends
from gating_core.spec import RunSpec
from gating_core.train.trainer import TrainingData

TIMED_EPOCHS = 2
TEST_IMAGES = 10_000


def gpu_images(count: int, data_dir: Path, cache_dir: Path) -> tuple[ImageSet, str]:
    """Return `count` CIFAR-10 training images, repeated if needed, or random images where CIFAR-10 is missing."""
    try:
        source = load_images("cifar10", "train", data_dir, cache_dir, allow_download=False)
        positions = np.arange(count) % len(source)
        images, labels, description = source.images[positions], source.labels[positions], "CIFAR-10 training images"
    except DatasetNotFoundError:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, CIFAR10_CLASSES, count).astype(np.int64)
        description = "random images (CIFAR-10 not found)"
    image_set = ImageSet(images, labels, [str(label) for label in range(CIFAR10_CLASSES)], "gpu-bench", "train", "")
    return image_set, description


def time_gpu_epochs(depth: int, images: int, data_dir: Path, cache_dir: Path, device_name: str = "cuda",
                    compile_model: bool = False, threads: int | None = None) -> dict[str, object]:
    """Train one warm-up epoch and TIMED_EPOCHS timed epochs; return the median seconds and the setup.

    `threads` overrides the number of CPU threads, which matters only when `device_name` is "cpu".
    """
    device = torch.device(device_name)
    configure_backends(device)
    if threads is not None:
        torch.set_num_threads(threads)
    image_set, description = gpu_images(images, data_dir, cache_dir)
    mean, std = resolve_normalization("cifar", "cifar10")
    test_positions = np.arange(min(TEST_IMAGES, images))
    data = TrainingData(
        train=DeviceImages.from_image_set(image_set, None, device),
        test=DeviceImages.from_image_set(image_set, test_positions, device),
        validation=None,
        num_classes=CIFAR10_CLASSES,
        classes=list(image_set.classes),
        mean=mean,
        std=std,
    )
    spec = RunSpec.model_validate(
        {"model": {"depth": depth}, "train": {"epochs": TIMED_EPOCHS + 1, "compile": compile_model}}
    )
    trainer = build_trainer(spec, data, device)
    if compile_model and device.type == "cuda":
        trainer.forward = torch.compile(trainer.state.model)

    train_seconds, epoch_seconds = [], []
    for _ in range(TIMED_EPOCHS + 1):
        started = time.perf_counter()
        metrics = trainer.run_epoch()
        epoch_seconds.append(time.perf_counter() - started)
        train_seconds.append(images / metrics.images_per_second)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "depth": depth,
        "images": images,
        "test_images": len(test_positions),
        "source": description,
        "precision": trainer.precision.name,
        "compile": compile_model,
        "train_seconds": median(train_seconds[1:]),
        "epoch_seconds": median(epoch_seconds[1:]),
        "warmup_seconds": epoch_seconds[0],
    }


def benchmark_gpu(config: BenchConfig, report: Report, device_name: str | None = None) -> None:
    """Time GPU epochs when CUDA is available (or on `device_name`), else record that no GPU was used."""
    name = f"Epoch time, ResNet-{config.gpu_depth} on {config.gpu_images:,} images, GPU"
    if device_name is None and not torch.cuda.is_available():
        report.figures.append(Figure("f", name, "not measured: no GPU available", "none set", None, load_average(),
                                     note="run `python -m benchmarks.run` or `python -m benchmarks.gpu` on a "
                                          "machine with a CUDA GPU"))
        return
    result = time_gpu_epochs(config.gpu_depth, config.gpu_images, config.data_dir, config.cache_dir,
                             device_name or "cuda")
    value = f"{result['train_seconds']:.1f} s training, {result['epoch_seconds']:.1f} s with evaluation"
    report.figures.append(Figure("f", name, value, "none set", None, load_average()))
    report.add_details("f. GPU epoch", [
        f"{result['device']}: ResNet-{result['depth']}, batch 128, {result['images']:,} {result['source']} kept on "
        f"the device as uint8, {result['precision']}, channels_last, compile {result['compile']}. Median of "
        f"{TIMED_EPOCHS} epochs after a warm-up epoch of {result['warmup_seconds']:.1f} s; the evaluation covers "
        f"{result['test_images']:,} images.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description="Time ResNet training epochs on a CUDA GPU and print JSON.")
    parser.add_argument("--depth", type=int, default=110, help="ResNet depth (6n+2).")
    parser.add_argument("--images", type=int, default=50_000, help="Training images per epoch.")
    parser.add_argument("--data-dir", type=Path, required=True, help="Folder with cifar10/; random images if absent.")
    parser.add_argument("--cache-dir", type=Path, required=True, help="Folder for the decoded-image cache.")
    parser.add_argument("--compile", action="store_true", help="Compile the model with torch.compile.")
    arguments = parser.parse_args()
    if not torch.cuda.is_available():
        parser.error("CUDA is not available on this machine")
    result = time_gpu_epochs(arguments.depth, arguments.images, arguments.data_dir, arguments.cache_dir,
                             compile_model=arguments.compile)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
