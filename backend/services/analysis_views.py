"""Aggregates of one run's per-sample results that the API computes on request.

Each function reads the rows of one evaluation only (by its primary key prefix)
and returns JSON-ready values, so a page draws a histogram or a table of 10,000
images without fetching the rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from backend.db.models import Evaluation, Run, ScoreSet, Sweep
from backend.storage import runs as run_storage
from backend.storage import samples as sample_storage
from backend.storage import score_sets as score_storage
from gating_core.analysis.compare import DecisionComparison, compare_skip_decisions
from gating_core.analysis.difficulty import gate_difficulty_correlations, skip_rate_by_decile, spearman
from gating_core.analysis.distributions import gate_histogram, mean_gate_by_class, skip_rate_by_class
from gating_core.analysis.seeds import summarise_by_lambda
from backend.services.published import published_accuracy


class ViewError(ValueError):
    """A request that the stored results cannot serve: names the field, the problem and the value received."""

    def __init__(self, field: str, message: str, received: object) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.received = received


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _evaluation_header(run_id: int, evaluation: Evaluation, count: int, threshold: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "dataset": evaluation.dataset,
        "split": evaluation.split,
        "variant": evaluation.variant,
        "count": count,
        "threshold": threshold,
    }


def distributions(session: Session, run_id: int, evaluation: Evaluation, threshold: float, bins: int) -> dict[str, Any]:
    """Return the g histogram by correct and wrong, the per-class table and, for layer gates, the unit x class heatmap."""
    columns = sample_storage.sample_columns(session, evaluation.id)
    gate = columns["gate"].astype(np.float64)
    labels = columns["label"].astype(np.int64)
    correct = columns["correct"].astype(bool)
    classes = list(evaluation.classes)
    has_gate = bool(np.isfinite(gate).any())

    heatmap = None
    if len(evaluation.gate_names) > 1:
        known = (labels >= 0) & (labels < len(classes))
        matrix = sample_storage.gate_matrix(evaluation)[known]
        means = mean_gate_by_class(labels[known], matrix, len(classes))
        heatmap = {
            "units": list(evaluation.gate_names),
            "classes": classes,
            "values": [[_finite_or_none(value) for value in row] for row in means],
        }
    return {
        **_evaluation_header(run_id, evaluation, int(labels.size), threshold),
        "skip_rate": float((gate < threshold).mean()) if has_gate else None,
        "mean_gate": float(np.nanmean(gate)) if has_gate else None,
        "gate_names": list(evaluation.gate_names),
        "histogram": gate_histogram(gate, correct, bins),
        "classes": skip_rate_by_class(labels, gate, correct, threshold, classes),
        "heatmap": heatmap,
    }


def difficulty(
    session: Session, run_id: int, evaluation: Evaluation, threshold: float, score_set: ScoreSet | None
) -> dict[str, Any]:
    """Correlate g with loss and misclassification and, with a score set, with the imported scores."""
    columns = sample_storage.sample_columns(session, evaluation.id)
    gate = columns["gate"].astype(np.float64)
    correlations = gate_difficulty_correlations(gate, columns["loss"], columns["correct"])
    scores = None
    if score_set is not None:
        scores = _score_difficulty(score_set, evaluation, columns["index"].astype(np.int64), gate, threshold)
    return {
        **_evaluation_header(run_id, evaluation, int(gate.size), threshold),
        "gate_vs_loss": correlations["loss"].as_dict(),
        "gate_vs_misclassified": correlations["misclassified"].as_dict(),
        "scores": scores,
    }


def _score_difficulty(
    score_set: ScoreSet, evaluation: Evaluation, indices: np.ndarray, gate: np.ndarray, threshold: float
) -> dict[str, Any]:
    if (score_set.dataset, score_set.split) != (evaluation.dataset, evaluation.split):
        raise ViewError(
            "score_set",
            f"score set {score_set.id} scores {score_set.dataset} {score_set.split}, but these results are of "
            f"{evaluation.dataset} {evaluation.split}; pick a score set of the same data set and split",
            score_set.id,
        )
    values = score_storage.score_values(score_set)
    if indices.size and indices.max() >= values.size:
        raise ViewError(
            "score_set",
            f"score set {score_set.id} has {values.size} scores, but the results include image index {indices.max()}",
            score_set.id,
        )
    matched = values[indices].astype(np.float64)
    if not np.isfinite(matched).any():
        raise ViewError("score_set", f"score set {score_set.id} has no score for any of these {indices.size} images", score_set.id)
    return {
        "score_set": score_storage.to_public(score_set).model_dump(),
        "gate_vs_score": spearman(gate, matched).as_dict(),
        "deciles": skip_rate_by_decile(matched, gate, threshold),
    }


def compare(
    session: Session, run_a: int, evaluation_a: Evaluation, run_b: int, evaluation_b: Evaluation, threshold: float
) -> tuple[DecisionComparison, dict[str, Any], dict[str, Any]]:
    """Find the images that one run skips and the other uses; return the comparison and both runs' columns by index."""
    if (evaluation_a.dataset, evaluation_a.split) != (evaluation_b.dataset, evaluation_b.split):
        raise ViewError(
            "b",
            f"run {run_a} was evaluated on {evaluation_a.dataset} {evaluation_a.split} and run {run_b} on "
            f"{evaluation_b.dataset} {evaluation_b.split}; compare runs evaluated on the same images",
            run_b,
        )
    columns_a = sample_storage.sample_columns(session, evaluation_a.id)
    columns_b = sample_storage.sample_columns(session, evaluation_b.id)
    for run_id, columns, field in ((run_a, columns_a, "a"), (run_b, columns_b, "b")):
        if not np.isfinite(columns["gate"]).any():
            raise ViewError(field, f"run {run_id} has no gate, so it never skips; pick a gated run", run_id)
    comparison = compare_skip_decisions(
        columns_a["index"], columns_a["gate"], columns_b["index"], columns_b["gate"], threshold
    )
    return comparison, _by_index(columns_a), _by_index(columns_b)


def _by_index(columns: dict[str, np.ndarray]) -> dict[int, tuple[int, int, bool]]:
    """Map each data set index to its (label, prediction, correct)."""
    return {
        int(index): (int(label), int(prediction), bool(correct))
        for index, label, prediction, correct in zip(
            columns["index"], columns["label"], columns["prediction"], columns["correct"]
        )
    }


def comparison_rows(
    comparison: DecisionComparison,
    columns_a: dict[int, tuple[int, int, bool]],
    columns_b: dict[int, tuple[int, int, bool]],
    classes: list[str],
    skip: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Return one page of the differing images, in increasing data set index."""
    rows = []
    for position in range(skip, min(skip + limit, comparison.differing)):
        index = int(comparison.indices[position])
        label, prediction_a, correct_a = columns_a[index]
        _, prediction_b, correct_b = columns_b[index]
        rows.append(
            {
                "index": index,
                "label": label,
                "label_name": classes[label] if 0 <= label < len(classes) else None,
                "gate_a": float(comparison.gate_a[position]),
                "gate_b": float(comparison.gate_b[position]),
                "prediction_a": prediction_a,
                "prediction_b": prediction_b,
                "correct_a": correct_a,
                "correct_b": correct_b,
            }
        )
    return rows


def sweep_table(session: Session, sweep: Sweep) -> dict[str, Any]:
    """Return the study's table of a sweep: per λ the test accuracy over seeds, training loss and the published figure."""
    runs, _ = run_storage.list_runs(session, sweep_id=sweep.id, limit=1_000_000)
    rows = summarise_by_lambda(
        {
            "gate_loss_weight": run.gate_loss_weight,
            "status": run.status,
            "test_accuracy": run.test_accuracy,
            "train_loss": run.train_loss,
            "mean_gate": run.mean_gate,
            "skip_rate": run.skip_rate,
        }
        for run in runs
    )
    published_value, published_source = published_accuracy(sweep.preset)
    for row in rows:
        row["gate_loss_weight"] = row.pop("lambda")
        row["published_test_accuracy"] = published_value
        row["published"] = published_source

    baseline: Run | None = None
    if sweep.baseline_run_id is not None:
        baseline = run_storage.get_run(session, sweep.baseline_run_id)
    return {
        "sweep_id": sweep.id,
        "name": sweep.name,
        "preset": sweep.preset,
        "baseline_run_id": sweep.baseline_run_id,
        "baseline_test_accuracy": baseline.test_accuracy if baseline is not None else None,
        "rows": rows,
    }
