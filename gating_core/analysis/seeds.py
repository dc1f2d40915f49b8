"""The study's results table: test accuracy over seeds for each value of the gate-loss weight lambda."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

SEED_TABLE_COLUMNS = (
    "lambda",
    "runs",
    "finished",
    "mean_test_accuracy",
    "std_test_accuracy",
    "median_test_accuracy",
    "mean_train_loss",
    "mean_gate",
    "skip_rate",
)


def _mean(values: list[float]) -> float | None:
    finite = [value for value in values if value is not None and np.isfinite(value)]
    return float(np.mean(finite)) if finite else None


def summarise_by_lambda(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group runs by `gate_loss_weight` and summarise the succeeded ones of each group.

    Each run is a mapping with gate_loss_weight, status, test_accuracy, train_loss,
    mean_gate and skip_rate. Rows come in increasing lambda. The standard deviation
    is the sample one (ddof=1) and is None with fewer than two finished seeds.
    Accuracies are fractions, not percentages.
    """
    groups: dict[float, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(float(run["gate_loss_weight"]), []).append(run)

    rows = []
    for value in sorted(groups):
        group = groups[value]
        finished = [run for run in group if run["status"] == "succeeded" and run.get("test_accuracy") is not None]
        accuracy = np.asarray([float(run["test_accuracy"]) for run in finished])
        rows.append(
            {
                "lambda": value,
                "runs": len(group),
                "finished": len(finished),
                "mean_test_accuracy": float(accuracy.mean()) if accuracy.size else None,
                "std_test_accuracy": float(accuracy.std(ddof=1)) if accuracy.size > 1 else None,
                "median_test_accuracy": float(np.median(accuracy)) if accuracy.size else None,
                "mean_train_loss": _mean([run.get("train_loss") for run in finished]),
                "mean_gate": _mean([run.get("mean_gate") for run in finished]),
                "skip_rate": _mean([run.get("skip_rate") for run in finished]),
            }
        )
    return rows
