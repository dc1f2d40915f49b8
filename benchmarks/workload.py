"""Data and trainers for the benchmarks, built the way `gating_core.experiment.run_experiment` builds them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.config import BenchConfig
from gating_core.data import ImageSet, load_images, resolve_normalization, subset_indices
from gating_core.data.pipeline import DeviceImages
from gating_core.models import build_model
from gating_core.spec import RunSpec
from gating_core.train.callbacks import Callback
from gating_core.train.precision import plan_precision
from gating_core.train.trainer import Trainer, TrainingData, TrainState, iterations_per_epoch, make_optimizer

CIFAR10_CLASSES = 10


@dataclass(frozen=True)
class Cifar10:
    """The CIFAR-10 splits, decoded once and shared by every benchmark of one run."""

    train: ImageSet
    test: ImageSet
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def train_indices(self, count: int) -> np.ndarray:
        return subset_indices(len(self.train), count)

    def test_indices(self, count: int) -> np.ndarray:
        return subset_indices(len(self.test), count)


def load_cifar10(config: BenchConfig) -> Cifar10:
    """Read CIFAR-10 from the data directory through the decoded-image cache; never download."""
    train = load_images("cifar10", "train", config.data_dir, config.cache_dir, allow_download=False)
    test = load_images("cifar10", "test", config.data_dir, config.cache_dir, allow_download=False)
    mean, std = resolve_normalization("cifar", "cifar10")
    return Cifar10(train, test, mean, std)


def make_spec(config: BenchConfig, *, gate: str = "none", precision: str = "auto", seed: int = 0,
              epochs: int = 1, gate_loss_weight: float = 0.0, depth: int | None = None) -> RunSpec:
    """Build the spec of a benchmark run: the benchmark's depth, batch size and schedule."""
    milestones = [milestone for milestone in config.accuracy_milestones if milestone < epochs]
    return RunSpec.model_validate(
        {
            "model": {"depth": depth or config.depth, "gate": {"kind": gate}},
            "train": {
                "epochs": epochs,
                "batch_size": config.batch_size,
                "precision": precision,
                "lr_milestones": milestones,
            },
            "gate_loss_weight": gate_loss_weight,
            "seed": seed,
        }
    )


def build_trainer(spec: RunSpec, data: TrainingData, device: torch.device,
                  callbacks: list[Callback] | None = None) -> Trainer:
    """Build the model, optimiser, generator and trainer for `spec`, as a worker does."""
    precision = plan_precision(spec.train.precision, device)
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, data.num_classes)
    memory_format = torch.channels_last if spec.train.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    generator = torch.Generator(device=device)
    generator.manual_seed(spec.seed)
    state = TrainState(
        spec=spec,
        model=model,
        optimizer=make_optimizer(model, spec),
        generator=generator,
        iterations_per_epoch=iterations_per_epoch(len(data.train), spec.train.batch_size),
    )
    return Trainer(state, data, precision, callbacks)


def training_data(cifar: Cifar10, train_count: int, test_count: int, device: torch.device) -> TrainingData:
    """Put the first `train_count` and `test_count` images of CIFAR-10's fixed random orders on `device`."""
    return TrainingData(
        train=DeviceImages.from_image_set(cifar.train, cifar.train_indices(train_count), device),
        test=DeviceImages.from_image_set(cifar.test, cifar.test_indices(test_count), device),
        validation=None,
        num_classes=CIFAR10_CLASSES,
        classes=list(cifar.train.classes),
        mean=cifar.mean,
        std=cifar.std,
    )


def train_seconds(images: int, images_per_second: float) -> float:
    """Return the time of an epoch's training pass, which the trainer reports as its image rate."""
    return images / images_per_second
