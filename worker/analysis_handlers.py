"""The analyses themselves: each takes a run context and validated parameters and returns a JSON-ready result."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import torch

from backend.schemas import HardSkipParams, OodParams, TrainSamplesParams
from backend.storage import runs as run_storage
from backend.storage import samples as sample_storage
from gating_core.analysis.hard_skip import hard_skip_curve
from gating_core.analysis.ood import DEFAULT_TPR, DetectorScores, compare_detectors
from gating_core.data import corrupt, subset_indices, validation_split
from gating_core.data.pipeline import DeviceImages
from gating_core.evaluate import SampleRecords
from gating_core.models import build_model
from gating_core.models.complexity import count_macs
from gating_core.spec import GateSpec, ModelSpec, RunSpec
from worker.analysis_runner import RunContext

logger = logging.getLogger(__name__)

# Label of an image whose class is not among the run's classes, such as a
# Fashion-MNIST image under a CIFAR-10 model. Such images count as wrong and
# their stored loss is 0, because a cross-entropy needs a class of the model.
NO_LABEL = -1
# torch's cross_entropy skips targets equal to its ignore_index, -100, and gives them loss 0.
IGNORED_TARGET = -100
HISTOGRAM_BINS = 40


def _store(context: RunContext, dataset: str, split: str, records: SampleRecords, classes: list[str], variant: str) -> int:
    with context.sessions() as session:
        evaluation = sample_storage.write_evaluation(
            session, context.run_id, dataset, split, records, list(context.model.gate_names), classes, variant
        )
        session.commit()
        return evaluation.id


def _summary(records: SampleRecords, labelled: bool) -> dict[str, Any]:
    gate = records.gate
    return {
        "count": len(records),
        "accuracy": records.accuracy if labelled else None,
        "mean_gate": float(gate.mean()) if gate is not None else None,
        "mean_confidence": float(records.confidence.mean()),
        "mean_energy": float(records.energy.mean()),
    }


def _in_distribution(context: RunContext, batch_size: int) -> tuple[SampleRecords, dict[str, Any]]:
    """Return the run's float32 test results, evaluating them when the stored ones used bf16."""
    dataset = context.test_dataset
    variant = "" if context.run_precision in (None, "float32") else "float32"
    with context.sessions() as session:
        evaluation = sample_storage.find_evaluation(session, context.run_id, dataset, "test", variant)
        if evaluation is not None:
            columns = sample_storage.sample_columns(session, evaluation.id)
            records = SampleRecords(
                indices=columns["index"],
                labels=columns["label"],
                predictions=columns["prediction"],
                confidence=columns["confidence"],
                loss=columns["loss"],
                energy=columns["energy"],
                gates=sample_storage.gate_matrix(evaluation),
            )
            return records, {"dataset": dataset, "variant": variant, "evaluation_id": evaluation.id}

    test_set = context.load(dataset, "test")
    images = DeviceImages.from_image_set(test_set, context.test_indices(len(test_set)), context.device)
    records = context.evaluate(images, batch_size)
    evaluation_id = _store(context, dataset, "test", records, list(test_set.classes), variant)
    return records, {"dataset": dataset, "variant": variant, "evaluation_id": evaluation_id}


def _ood_images(context: RunContext, params: OodParams) -> tuple[DeviceImages, str, list[str], bool]:
    """Return the OOD images, the data set name they are stored under, its classes, and whether labels apply."""
    if params.dataset == "corruption":
        test_set = context.load(context.test_dataset, "test")
        indices = context.test_indices(len(test_set), params.limit)
        pixels = corrupt(np.ascontiguousarray(test_set.images[indices]), params.corruption, params.severity, seed=0)
        images = DeviceImages(
            torch.from_numpy(pixels).to(context.device),
            torch.from_numpy(np.ascontiguousarray(test_set.labels[indices])).to(context.device),
            indices,
        )
        return images, context.test_dataset, list(test_set.classes), True

    ood_set = context.load(params.dataset, "test")
    size = min(params.limit, len(ood_set)) if params.limit is not None else None
    indices = subset_indices(len(ood_set), size)
    pixels = torch.from_numpy(np.ascontiguousarray(ood_set.images[indices])).to(context.device)
    labels = torch.full((len(indices),), IGNORED_TARGET, dtype=torch.int64, device=context.device)
    return DeviceImages(pixels, labels, indices), params.dataset, list(ood_set.classes), False


def _gate_histograms(inside: np.ndarray | None, outside: np.ndarray | None) -> dict[str, list] | None:
    if inside is None or outside is None:
        return None
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    return {
        "edges": edges.tolist(),
        "in": np.histogram(inside, bins=edges)[0].tolist(),
        "out": np.histogram(outside, bins=edges)[0].tolist(),
    }


def run_ood(context: RunContext, values: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the run on OOD images, store them as an evaluation, and compare gate, MSP and energy as detectors."""
    params = OodParams.model_validate(values)
    inside, reference = _in_distribution(context, params.batch_size)
    images, dataset, classes, labelled = _ood_images(context, params)
    outside = context.evaluate(images, params.batch_size)
    if not labelled:
        outside = dataclasses.replace(outside, labels=np.full(len(outside), NO_LABEL, dtype=np.int64))
    # The run's classes name the predictions, so an unlabelled set is stored with them too.
    stored_classes = classes if labelled else list(reference_classes(context))
    evaluation_id = _store(context, dataset, "test", outside, stored_classes, params.variant)

    detectors = compare_detectors(
        DetectorScores(inside.gate, inside.confidence, inside.energy),
        DetectorScores(outside.gate, outside.confidence, outside.energy),
        DEFAULT_TPR,
    )
    return {
        "dataset": dataset,
        "split": "test",
        "variant": params.variant,
        "evaluation_id": evaluation_id,
        "tpr": DEFAULT_TPR,
        "in_distribution": {**reference, **_summary(inside, True)},
        "out_of_distribution": {"dataset": dataset, "variant": params.variant, **_summary(outside, labelled)},
        "detectors": detectors,
        "gate_histograms": _gate_histograms(inside.gate, outside.gate),
    }


def reference_classes(context: RunContext) -> list[str]:
    with context.sessions() as session:
        evaluation = sample_storage.find_evaluation(session, context.run_id, context.test_dataset, "test")
        if evaluation is not None:
            return list(evaluation.classes)
    return list(context.load(context.spec.data.dataset, "test").classes)


def _ungated_macs(model_spec: ModelSpec, num_classes: int) -> int:
    plain = model_spec.model_copy(update={"gate": GateSpec(kind="none")})
    return count_macs(build_model(plain, num_classes))


def _baseline_point(context: RunContext, baseline_run_id: int | None, num_classes: int) -> dict[str, Any] | None:
    run_id = baseline_run_id or context.sweep_baseline_run_id
    if run_id is None:
        return None
    with context.sessions() as session:
        baseline = run_storage.get_run(session, run_id)
        if baseline is None or baseline.test_accuracy is None:
            logger.warning("baseline run %s of run %s has no test accuracy; the curve has no baseline point", run_id, context.run_id)
            return None
        spec = RunSpec.model_validate(baseline.spec)
        accuracy = baseline.test_accuracy
        name = baseline.name
    return {
        "run_id": run_id,
        "name": name,
        "gate_kind": spec.model.gate.kind,
        "test_accuracy": accuracy,
        "test_images": spec.data.test_subset,
        "macs_per_image": count_macs(build_model(spec.model, num_classes)),
    }


def run_hard_skip(context: RunContext, values: dict[str, Any]) -> dict[str, Any]:
    """Measure accuracy, skipped fraction, MACs and wall time per image over the thresholds, beside the baseline."""
    params = HardSkipParams.model_validate(values)
    test_set = context.load(context.test_dataset, "test")
    images = DeviceImages.from_image_set(test_set, context.test_indices(len(test_set), params.limit), context.device)
    mean, std = context.normalization
    model = context.model
    curve = hard_skip_curve(model, images, mean, std, params.thresholds, params.batch_size)
    num_classes = model.num_classes
    return {
        **curve.as_dict(),
        "dataset": context.test_dataset,
        "ungated_macs": _ungated_macs(context.spec.model, num_classes),
        "baseline": _baseline_point(context, params.baseline_run_id, num_classes),
        "batch_size": params.batch_size,
        "device": str(context.device),
        "threads": torch.get_num_threads(),
    }


def run_train_samples(context: RunContext, values: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the training images and store their per-sample gate values as the run's training-split results."""
    params = TrainSamplesParams.model_validate(values)
    data = context.spec.data
    train_set = context.load(data.dataset, "train")
    if params.images == "all":
        indices = np.arange(len(train_set), dtype=np.int64)
    else:
        indices, _ = validation_split(len(train_set), data.validation_size)
        if data.train_subset is not None:
            indices = indices[: data.train_subset]
    images = DeviceImages.from_image_set(train_set, indices, context.device)
    records = context.evaluate(images, params.batch_size)
    evaluation_id = _store(context, data.dataset, "train", records, list(train_set.classes), "")
    return {"dataset": data.dataset, "split": "train", "images": params.images, "evaluation_id": evaluation_id, **_summary(records, True)}
