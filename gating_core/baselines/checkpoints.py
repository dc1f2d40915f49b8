"""Read a published CIFAR ResNet checkpoint, match it onto our network and evaluate it.

A checkpoint is read with ``torch.load(weights_only=True)``, so it may contain tensors and
plain containers but no code. Its tensor names are translated to ours: wrapper prefixes
are removed, and torchvision's ``fc`` and ``downsample`` are renamed. Every tensor of the
network must be present with the same shape, and tensors left over are reported.
Evaluation runs in float32 with TF32 disabled, because lower precision changes
predictions near the decision boundary, and the measured counts must match the
authors' figures exactly.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gating_core.baselines import BASELINE_DATASETS, BaselineError, check_dataset
from gating_core.data import ImageSet
from gating_core.data.pipeline import DeviceImages
from gating_core.evaluate import evaluate_samples
from gating_core.models import GatedResNet, LoadReport, build_model, load_matching_weights
from gating_core.models.weights import strip_wrapper_prefixes
from gating_core.spec import ModelSpec, Normalization
from gating_core.train.precision import PrecisionPlan

logger = logging.getLogger(__name__)

# Containers that training scripts wrap a state dict in, tried in this order.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
# Other names for our tensors: torchvision calls the classifier `fc` and the
# projection shortcut `downsample`.
NAME_ALIASES = ((re.compile(r"^fc\."), "linear."), (re.compile(r"\.downsample\."), ".shortcut."))
# Tensor names of residual units, such as layer3.8.conv2.weight.
UNIT_TENSOR = re.compile(r"layer\d+\.\d+\.")
EVALUATION_BATCH_SIZE = 500
# Names listed in full in an error message; the rest are counted.
LISTED_NAMES = 8


@dataclass(frozen=True)
class MatchedCheckpoint:
    """A plain network with the checkpoint's tensors loaded, and how the names were matched."""

    model: GatedResNet
    report: LoadReport
    renamed: int
    tensor_count: int

    def as_dict(self) -> dict[str, object]:
        """Return the match as JSON-ready values: counts, and the names left over."""
        return {
            "tensors_in_file": self.tensor_count,
            "loaded": len(self.report.loaded),
            "renamed": self.renamed,
            "left_over": list(self.report.unexpected),
            "missing": list(self.report.missing),
            "mismatched": {name: [list(a), list(b)] for name, (a, b) in self.report.mismatched.items()},
        }


@dataclass(frozen=True)
class EvaluationResult:
    """Correct predictions of a baseline on one test set."""

    dataset: str
    correct: int
    count: int
    seconds: float
    device: str

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else float("nan")


def read_checkpoint(path: Path) -> dict[str, Tensor]:
    """Read the tensors of a checkpoint file, unwrapped from a training script's container.

    Raises BaselineError (field 'file') for a file that torch.load(weights_only=True)
    cannot read or that contains no mapping of names to tensors.
    """
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch.load of an untrusted file can raise many types
        raise BaselineError(
            "file",
            f"file is not a PyTorch checkpoint that torch.load(weights_only=True) can read: {_load_failure(error)}",
        ) from error

    for key in STATE_DICT_KEYS:
        if isinstance(contents, Mapping) and isinstance(contents.get(key), Mapping):
            contents = contents[key]
            break
    if not isinstance(contents, Mapping):
        raise BaselineError(
            "file", f"file must contain a state dict (names mapped to tensors); received a {type(contents).__name__}"
        )
    tensors = {str(name): value for name, value in contents.items() if isinstance(value, Tensor)}
    if not tensors:
        raise BaselineError(
            "file", f"file contains no tensors; its top-level entries are {_listing(list(map(str, contents)))}"
        )
    return tensors


def _load_failure(error: Exception) -> str:
    """Return the informative part of torch.load's error, whose full text is mostly advice."""
    text = str(error)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\. Please|\n\n|$)", text, flags=re.DOTALL)
    if found:
        return found.group(1).strip()
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(error).__name__}: {first_line}"[:300] if first_line else type(error).__name__


def translate_names(tensors: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], int]:
    """Rename checkpoint tensors to our names; return them and how many names changed beyond prefixes."""
    translated: dict[str, Tensor] = {}
    origins: dict[str, str] = {}
    renamed = 0
    for original, tensor in tensors.items():
        name = strip_wrapper_prefixes(original)
        aliased = name
        for pattern, replacement in NAME_ALIASES:
            aliased = pattern.sub(replacement, aliased)
        renamed += aliased != name
        if aliased in translated:
            raise BaselineError(
                "file", f"tensors {origins[aliased]!r} and {original!r} both translate to {aliased!r}"
            )
        translated[aliased] = tensor
        origins[aliased] = original
    return translated, renamed


def match_checkpoint(tensors: Mapping[str, Tensor], spec: ModelSpec, dataset: str) -> MatchedCheckpoint:
    """Load the checkpoint into a plain network of `spec`, or raise BaselineError naming what does not fit.

    Every tensor of the network must be present with its shape; BatchNorm's
    `num_batches_tracked` counters are optional. Other tensors left over are reported,
    except residual units that the network lacks: those mean a deeper network, and
    the checkpoint is rejected.
    """
    check_dataset(dataset)
    translated, renamed = translate_names(tensors)
    model = build_model(spec, BASELINE_DATASETS[dataset])
    report = load_matching_weights(model, translated)
    extra_units = [name for name in report.unexpected if UNIT_TENSOR.match(name)]
    if report.missing or report.mismatched or extra_units:
        raise BaselineError("file", _mismatch_message(report, extra_units, spec, dataset, len(translated)))
    return MatchedCheckpoint(model=model, report=report, renamed=renamed, tensor_count=len(translated))


def _mismatch_message(
    report: LoadReport, extra_units: list[str], spec: ModelSpec, dataset: str, tensor_count: int
) -> str:
    problems = []
    if report.missing:
        problems.append(f"{len(report.missing)} tensors are missing: {_listing(report.missing)}")
    if report.mismatched:
        shapes = [f"{name} (network {list(ours)}, file {list(theirs)})" for name, (ours, theirs) in report.mismatched.items()]
        problems.append(f"{len(shapes)} tensors have another shape: {_listing(shapes)}")
    if extra_units:
        problems.append(f"{len(extra_units)} tensors belong to residual units the network lacks: {_listing(extra_units)}")
    classifier = report.mismatched.get("linear.weight")
    if classifier is not None and classifier[0][1] == classifier[1][1]:
        hint = f"The file's classifier has {classifier[1][0]} outputs; choose the dataset with that many classes."
    else:
        hint = "Check that arch names the network the checkpoint was trained as."
    return (
        f"the checkpoint's {tensor_count} tensors do not fit {spec.display_name} (basic units, shortcut "
        f"{spec.effective_shortcut}) for {dataset}: {'; '.join(problems)}. {hint}"
    )


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_NAMES])
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


@contextlib.contextmanager
def strict_float32() -> Iterator[None]:
    """Disable TF32 in CUDA convolutions and matrix products inside the block, then restore the settings."""
    cudnn_tf32 = torch.backends.cudnn.allow_tf32
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = cudnn_tf32
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32


def evaluate_baseline(
    model: GatedResNet, images: ImageSet, normalization: Normalization, device: torch.device
) -> EvaluationResult:
    """Count the model's correct predictions on every image of `images`, in float32."""
    if len(images) and int(images.labels.max()) >= model.num_classes:
        raise BaselineError(
            "test_dataset",
            f"test set {images.name} has labels up to {int(images.labels.max())}, but the network has "
            f"{model.num_classes} classes; choose a test set of the baseline's data set",
        )
    started = time.perf_counter()
    model = model.to(device=device, memory_format=torch.channels_last)
    data = DeviceImages.from_image_set(images, device=device)
    with strict_float32():
        records = evaluate_samples(
            model,
            data,
            tuple(normalization.mean),
            tuple(normalization.std),
            PrecisionPlan(None, device),
            batch_size=EVALUATION_BATCH_SIZE,
        )
    seconds = time.perf_counter() - started
    correct = int(records.correct.sum())
    logger.info("%s: %d of %d correct on %s in %.1f s on %s", model.spec.display_name, correct, len(records), images.name, seconds, device)
    return EvaluationResult(dataset=images.name, correct=correct, count=len(records), seconds=seconds, device=str(device))
