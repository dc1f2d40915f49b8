"""One run from spec to results: load data, build the model, train, evaluate every test image.

The worker and `gatelab train` both call `run_experiment`; they differ only in
the callbacks they pass and in where they store the results.
"""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision

from gating_core.data import load_images, resolve_normalization, subset_indices, validation_split
from gating_core.data.pipeline import DeviceImages
from gating_core.evaluate import SampleRecords
from gating_core.models import build_model
from gating_core.models.weights import LoadReport, load_matching_weights
from gating_core.spec import NormalizationChoice, RunSpec
from gating_core.train.callbacks import Callback
from gating_core.train.checkpoint import CheckpointCallback, restore_checkpoint
from gating_core.train.precision import plan_precision, resolve_device
from gating_core.train.trainer import (
    Trainer,
    TrainingData,
    TrainState,
    iterations_per_epoch,
    make_optimizer,
)

logger = logging.getLogger(__name__)


@dataclass
class ExperimentResult:
    """What a finished run produced."""

    state: TrainState
    test_samples: SampleRecords
    train_samples: SampleRecords | None
    classes: list[str]
    precision: str
    environment: dict[str, str]
    load_report: LoadReport | None
    resumed_from_epoch: int


def prepare_data(
    spec: RunSpec,
    data_dir: Path,
    cache_dir: Path,
    device: torch.device,
    normalization: NormalizationChoice | None = None,
    allow_download: bool = False,
) -> TrainingData:
    """Load the run's training, validation and test images onto `device`."""
    dataset = spec.data.dataset
    train_set = load_images(dataset, "train", data_dir, cache_dir, allow_download=allow_download)
    test_name = spec.data.test_dataset or dataset
    test_set = load_images(test_name, "test", data_dir, cache_dir, allow_download=allow_download)

    train_indices, validation_indices = validation_split(len(train_set.labels), spec.data.validation_size)
    if spec.data.train_subset is not None:
        train_indices = train_indices[: spec.data.train_subset]
    test_indices = subset_indices(len(test_set.labels), spec.data.test_subset)

    mean, std = resolve_normalization(spec.data.normalization or normalization, dataset)
    validation = None
    if len(validation_indices):
        validation = DeviceImages.from_image_set(train_set, validation_indices, device)

    return TrainingData(
        train=DeviceImages.from_image_set(train_set, train_indices, device),
        test=DeviceImages.from_image_set(test_set, test_indices, device),
        validation=validation,
        num_classes=len(train_set.classes),
        classes=list(train_set.classes),
        mean=mean,
        std=std,
    )


def run_experiment(
    spec: RunSpec,
    *,
    data_dir: Path,
    cache_dir: Path,
    device: str = "auto",
    callbacks: Sequence[Callback] = (),
    checkpoint_path: Path | None = None,
    init_weights: Mapping[str, torch.Tensor] | None = None,
    normalization: NormalizationChoice | None = None,
    allow_download: bool = False,
    cpu_threads: int | None = None,
) -> ExperimentResult:
    """Train `spec` and evaluate every test image.

    When `checkpoint_path` exists, training resumes from it; after each epoch the
    state is saved there. `init_weights` (from a finished run or an imported
    baseline) are loaded into every matching backbone tensor, and the gate
    layers keep their fresh initialisation. `normalization` is the default that
    the spec's own `data.normalization` overrides. `cpu_threads` caps the
    threads that torch uses on the CPU; by default it uses every core.
    """
    torch_device = resolve_device(device)
    configure_backends(torch_device, cpu_threads)
    precision = plan_precision(spec.train.precision, torch_device)
    data = prepare_data(spec, data_dir, cache_dir, torch_device, normalization, allow_download)

    torch.manual_seed(spec.seed)
    model = build_model(spec.model, data.num_classes)
    load_report = load_matching_weights(model, init_weights) if init_weights is not None else None
    memory_format = torch.channels_last if spec.train.channels_last else torch.contiguous_format
    model = model.to(device=torch_device, memory_format=memory_format)

    generator = torch.Generator(device=torch_device)
    generator.manual_seed(spec.seed)
    state = TrainState(
        spec=spec,
        model=model,
        optimizer=make_optimizer(model, spec),
        generator=generator,
        iterations_per_epoch=iterations_per_epoch(len(data.train.indices), spec.train.batch_size),
    )

    all_callbacks = list(callbacks)
    if checkpoint_path is not None:
        if restore_checkpoint(checkpoint_path, state):
            logger.info("resumed from %s after epoch %d", checkpoint_path, state.epoch)
        all_callbacks.insert(0, CheckpointCallback(checkpoint_path))
    resumed_from_epoch = state.epoch

    trainer = Trainer(state, data, precision, all_callbacks, forward=_maybe_compile(model, spec, torch_device))
    trainer.fit()

    train_samples = None
    if spec.record_train_samples:
        train_samples = trainer.evaluate(data.train)

    return ExperimentResult(
        state=state,
        test_samples=trainer.evaluate(data.test),
        train_samples=train_samples,
        classes=data.classes,
        precision=precision.name,
        environment=describe_environment(torch_device),
        load_report=load_report,
        resumed_from_epoch=resumed_from_epoch,
    )


def configure_backends(device: torch.device, cpu_threads: int | None = None) -> None:
    """Let cuDNN pick the fastest kernels on CUDA; on the CPU use `cpu_threads`, or every available core."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cpu_threads is not None:
        torch.set_num_threads(cpu_threads)
    elif device.type != "cuda":
        torch.set_num_threads(len(os.sched_getaffinity(0)))


def _maybe_compile(model: torch.nn.Module, spec: RunSpec, device: torch.device) -> torch.nn.Module:
    if spec.train.compile and device.type == "cuda":
        return torch.compile(model)
    if spec.train.compile:
        logger.warning("train.compile is set but the device is %s; compiling only on CUDA", device)
    return model


def describe_environment(device: torch.device) -> dict[str, str]:
    """Return the versions and hardware that a run's results depend on."""
    environment = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda or "none",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "code_version": code_version(),
        "cpu_threads": str(torch.get_num_threads()),
    }
    return environment


def code_version() -> str:
    """Return the git commit of the code, with '-dirty' for local changes.

    Without git or a checkout, as in the Docker image, return GATELAB_CODE_VERSION
    (the commit the image was built from), else 'unknown'.
    """
    source_dir = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source_dir, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source_dir,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GATELAB_CODE_VERSION") or "unknown"
    return f"{commit}-dirty" if dirty else commit
