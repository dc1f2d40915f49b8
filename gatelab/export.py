"""Export of one run's results through the REST client: the run record, per-epoch metrics and per-sample values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gatelab.client import GateLabClient, GateLabError

ExportFormat = Literal["csv", "parquet"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")


@dataclass
class ExportResult:
    """The files that an export wrote, and why per-sample values are missing when they are."""

    run_id: int
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics_rows: int = 0
    samples_rows: int | None = None
    samples_missing: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "folder": str(self.folder),
            "files": {name: str(path) for name, path in self.files.items()},
            "metrics_rows": self.metrics_rows,
            "samples_rows": self.samples_rows,
            "samples_missing": self.samples_missing,
        }


def export_run(
    client: GateLabClient, run_id: int, folder: Path, file_format: ExportFormat = "csv", split: str = "test"
) -> ExportResult:
    """Write run.json, metrics.<format> and samples.<format> (train-samples.<format> for the train split) to `folder`.

    The samples file holds every evaluated image of the split, one row each,
    with one "gate:<name>" column per gate. A run without per-sample results
    (it has not succeeded, or recorded no train samples) gets the run record
    and metrics only, and `samples_missing` holds the API's explanation.
    Raises ValueError for an unknown format and GateLabError when the run
    cannot be read.
    """
    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(EXPORT_FORMATS)}; received {file_format!r}")
    run = client.get_run(run_id)
    metrics = client.metrics_frame(run_id)
    try:
        samples = client.samples_frame(run_id, include_gates=True, split=split)
    except GateLabError as error:
        if error.status_code != 404:
            raise
        samples = None
        missing = error.message
    else:
        missing = None

    folder.mkdir(parents=True, exist_ok=True)
    result = ExportResult(run_id=run_id, folder=folder, metrics_rows=len(metrics), samples_missing=missing)
    result.files["run"] = folder / "run.json"
    result.files["run"].write_text(json.dumps(run, indent=2))
    result.files["metrics"] = _write_frame(metrics, folder / f"metrics.{file_format}", file_format)
    if samples is not None:
        name = "samples" if split == "test" else f"{split}-samples"
        result.files["samples"] = _write_frame(samples, folder / f"{name}.{file_format}", file_format)
        result.samples_rows = len(samples)
    return result


def _write_frame(frame, path: Path, file_format: ExportFormat) -> Path:  # type: ignore[no-untyped-def]
    if file_format == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path
