"""Baselines: imported checkpoints in the database, their weights under the artifact directory,
and the checks on runs that start from one.

An import reads the uploaded checkpoint, matches it onto our network and measures it on
each requested test set before anything is written. Then the weights (a state dict with
our tensor names) go to ARTIFACT_DIR/baselines/<id>.pt, and the baseline row and its
evaluations are committed.

The same file with the same architecture, data set and normalisation is one baseline:
importing it again returns the existing baseline and only measures test sets it has not
been measured on.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.db.models import Baseline, BaselineEvaluation, Run, Sweep
from backend.schemas import BaselineEvaluationPublic, BaselinePublic
from backend.services.grid import GRID_ALIASES, SpecError
from gatelab.settings import Settings
from gating_core.baselines import (
    BASELINE_DATASETS,
    BaselineError,
    arch_name,
    check_dataset,
    describe_normalization,
    model_spec_for_arch,
    parse_normalization,
)
from gating_core.spec import TEST_DATASETS, DataSpec, ModelSpec, Normalization, RunSpec

logger = logging.getLogger(__name__)

BASELINES_SUBDIR = "baselines"
INCOMING_SUBDIR = "incoming"
MAX_TEST_DATASETS = 10
COPY_CHUNK_BYTES = 1 << 20
# Network fields that a run must share with the baseline it starts from.
MATCHED_MODEL_FIELDS = ("arch", "block", "depth", "shortcut")

# Imports run one at a time in this process: evaluation already uses every core, and two
# uploads of the same file must not both create a baseline.
# NOTE: several API processes can still import the same file at once and create two baselines.
_import_lock = threading.Lock()


@dataclass(frozen=True)
class ImportOptions:
    """Import options as the request sent them; `import_baseline` validates every value."""

    arch: str
    normalization: str
    dataset: str = "cifar10"
    name: str | None = None
    test_datasets: Sequence[str] = ()
    source_filename: str = "checkpoint"


def import_baseline(session: Session, settings: Settings, upload: BinaryIO, options: ImportOptions) -> tuple[Baseline, bool]:
    """Import an uploaded checkpoint; return the baseline and whether it was created.

    Raises BaselineError, which names the offending field, for invalid options, a file
    that is not a checkpoint, tensors that do not fit the network, or a test set that
    cannot be read.
    """
    spec = model_spec_for_arch(options.arch)
    normalization = parse_normalization(options.normalization, check_dataset(options.dataset))
    test_datasets = _checked_test_datasets(options.test_datasets, options.dataset)

    incoming = _baseline_dir(settings) / INCOMING_SUBDIR
    incoming.mkdir(parents=True, exist_ok=True)
    upload_path = incoming / f"{uuid.uuid4().hex}.upload"
    try:
        sha256 = _store_upload(upload, upload_path)
        with _import_lock:
            existing = find_baseline(session, sha256, spec, options.dataset, normalization)
            if existing is not None:
                _measure_missing(session, settings, existing, test_datasets)
                return existing, False
            return _create(session, settings, upload_path, sha256, spec, normalization, test_datasets, options), True
    finally:
        upload_path.unlink(missing_ok=True)


def _checked_test_datasets(names: Sequence[str], dataset: str) -> list[str]:
    chosen = list(dict.fromkeys(names)) or [dataset]
    if len(chosen) > MAX_TEST_DATASETS:
        raise BaselineError("test_dataset", f"at most {MAX_TEST_DATASETS} test sets per import; received {len(chosen)}")
    for name in chosen:
        try:
            DataSpec(test_dataset=name)
        except ValidationError as error:
            message = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
            raise BaselineError("test_dataset", message) from None
        if name in TEST_DATASETS and name != dataset:
            raise BaselineError(
                "test_dataset",
                f"test set {name!r} has other classes than the baseline's data set {dataset!r}; "
                f"use {dataset!r} or an npz file of its classes",
            )
    return chosen


def _store_upload(upload: BinaryIO, path: Path) -> str:
    """Copy the upload to `path` and return its SHA-256."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "wb") as file:
        for chunk in iter(lambda: upload.read(COPY_CHUNK_BYTES), b""):
            digest.update(chunk)
            file.write(chunk)
            size += len(chunk)
    if size == 0:
        raise BaselineError("file", "file is empty; upload a checkpoint written by torch.save")
    return digest.hexdigest()


def _create(
    session: Session,
    settings: Settings,
    upload_path: Path,
    sha256: str,
    spec: ModelSpec,
    normalization: Normalization,
    test_datasets: list[str],
    options: ImportOptions,
) -> Baseline:
    import torch

    from gating_core.baselines.checkpoints import match_checkpoint, read_checkpoint

    matched = match_checkpoint(read_checkpoint(upload_path), spec, options.dataset)
    results = [_evaluate(settings, matched.model, name, normalization) for name in test_datasets]

    baseline = Baseline(
        name=(options.name or Path(options.source_filename).stem or arch_name(spec))[:200],
        arch=arch_name(spec),
        dataset=options.dataset,
        model_spec=spec.model_dump(mode="json"),
        normalization=normalization.model_dump(mode="json"),
        source_filename=options.source_filename[:300],
        sha256=sha256,
        weights_path="",
        report=matched.as_dict(),
    )
    session.add(baseline)
    session.flush()
    weights_path = _baseline_dir(settings) / f"{baseline.id}.pt"
    temporary = weights_path.with_name(f".{weights_path.name}.{os.getpid()}.tmp")
    torch.save(matched.model.cpu().state_dict(), temporary)
    os.replace(temporary, weights_path)
    baseline.weights_path = str(weights_path)
    for result in results:
        session.add(_evaluation_row(baseline.id, result))
    session.commit()
    logger.info("imported baseline %d (%s, sha256 %s) from %s", baseline.id, baseline.arch, sha256[:12], options.source_filename)
    return baseline


def _measure_missing(session: Session, settings: Settings, baseline: Baseline, test_datasets: list[str]) -> None:
    """Measure the existing baseline on the requested test sets it has no evaluation for."""
    measured = {evaluation.dataset for evaluation in baseline.evaluations}
    missing = [name for name in test_datasets if name not in measured]
    if not missing:
        return
    model = load_baseline_model(baseline)
    normalization = Normalization.model_validate(baseline.normalization)
    for name in missing:
        session.add(_evaluation_row(baseline.id, _evaluate(settings, model, name, normalization)))
    session.commit()
    session.refresh(baseline)


def load_baseline_model(baseline: Baseline):  # type: ignore[no-untyped-def]
    """Build the baseline's plain network and load its stored weights."""
    import torch

    from gating_core.models import build_model

    model = build_model(ModelSpec.model_validate(baseline.model_spec), BASELINE_DATASETS[baseline.dataset])
    model.load_state_dict(torch.load(baseline.weights_path, map_location="cpu", weights_only=True))
    return model


def _evaluate(settings: Settings, model, dataset: str, normalization: Normalization):  # type: ignore[no-untyped-def]
    from gating_core.baselines.checkpoints import evaluate_baseline
    from gating_core.data import DatasetNotFoundError, load_images
    from gating_core.train.precision import resolve_device

    try:
        images = load_images(
            dataset, "test", settings.resolved_data_dir, settings.resolved_cache_dir, settings.allow_download
        )
    except (DatasetNotFoundError, ValueError) as error:
        raise BaselineError("test_dataset", f"test set {dataset!r} cannot be read: {error}") from error
    return evaluate_baseline(model, images, normalization, resolve_device(settings.device))


def _evaluation_row(baseline_id: int, result) -> BaselineEvaluation:  # type: ignore[no-untyped-def]
    return BaselineEvaluation(
        baseline_id=baseline_id,
        dataset=result.dataset,
        correct=result.correct,
        count=result.count,
        seconds=result.seconds,
        device=result.device,
    )


def _baseline_dir(settings: Settings) -> Path:
    return settings.resolved_artifact_dir / BASELINES_SUBDIR


def find_baseline(
    session: Session, sha256: str, spec: ModelSpec, dataset: str, normalization: Normalization
) -> Baseline | None:
    """Return the baseline imported from the same file as the same network, data set and normalisation."""
    candidates = session.scalars(
        select(Baseline).where(Baseline.sha256 == sha256, Baseline.dataset == dataset).order_by(Baseline.id)
    ).all()
    wanted_spec = spec.model_dump(mode="json")
    wanted_normalization = normalization.model_dump(mode="json")
    for baseline in candidates:
        if baseline.model_spec == wanted_spec and baseline.normalization == wanted_normalization:
            return baseline
    return None


def get_baseline(session: Session, baseline_id: int) -> Baseline | None:
    return session.get(Baseline, baseline_id)


def list_baselines(session: Session, skip: int = 0, limit: int = 100) -> tuple[list[Baseline], int]:
    """Return one page of baselines, newest first, and the count of all."""
    count = session.scalar(select(func.count()).select_from(Baseline)) or 0
    rows = session.scalars(select(Baseline).order_by(Baseline.id.desc()).offset(skip).limit(limit)).all()
    return list(rows), count


def to_public(baseline: Baseline) -> BaselinePublic:
    normalization = Normalization.model_validate(baseline.normalization)
    evaluations = [
        BaselineEvaluationPublic(
            dataset=row.dataset,
            correct=row.correct,
            count=row.count,
            accuracy=row.correct / row.count if row.count else 0.0,
            seconds=row.seconds,
            device=row.device,
            created_at=row.created_at,
        )
        for row in baseline.evaluations
    ]
    return BaselinePublic(
        id=baseline.id,
        name=baseline.name,
        arch=baseline.arch,
        dataset=baseline.dataset,
        model_spec=baseline.model_spec,
        normalization=baseline.normalization,
        normalization_name=describe_normalization(normalization, baseline.dataset),
        source_filename=baseline.source_filename,
        sha256=baseline.sha256,
        report=baseline.report,
        evaluations=evaluations,
        created_at=baseline.created_at,
    )


# Runs that start from a baseline


def install_run_checks(sessions: sessionmaker[Session]) -> None:
    """Check every new run of these sessions that starts from a baseline, when it is flushed.

    A run whose init names a missing baseline, or a baseline of another network, is
    rejected with a SpecError (422) before it is written, whichever route created it.
    A run that leaves data.normalization empty gets the baseline's, so its stored spec
    shows the statistics it trains and tests with.
    """
    event.listen(sessions, "before_flush", _check_new_runs)


def _check_new_runs(session: Session, _flush_context: Any, _instances: Any) -> None:
    for run in list(session.new):
        if isinstance(run, Run) and run.spec.get("init", {}).get("source") == "baseline":
            run.spec = apply_baseline(session, run)


def apply_baseline(session: Session, run: Run) -> dict[str, Any]:
    """Return the run's spec with the baseline's normalisation filled in; raise SpecError if they do not fit."""
    spec = RunSpec.model_validate(run.spec)
    baseline_id = spec.init.id
    baseline = session.get(Baseline, baseline_id)
    if baseline is None:
        raise SpecError(
            _location(session, run, "init.id"),
            f"init.id: baseline {baseline_id} not found; GET /api/baselines lists the imported baselines",
            baseline_id,
        )

    expected = ModelSpec.model_validate(baseline.model_spec)
    differences = [
        (field, received, wanted)
        for field in MATCHED_MODEL_FIELDS
        if (received := _model_value(spec.model, field)) != (wanted := _model_value(expected, field))
    ]
    if differences:
        listed = "; ".join(f"model.{field} must be {wanted!r}, received {received!r}" for field, received, wanted in differences)
        raise SpecError(
            _location(session, run, f"model.{differences[0][0]}"),
            f"a run that starts from baseline {baseline.id} ({baseline.arch}) must use its network: {listed}",
            differences[0][1],
        )

    values = copy.deepcopy(run.spec)
    if spec.data.normalization is None:
        values.setdefault("data", {})["normalization"] = dict(baseline.normalization)
    return values


def _model_value(model: ModelSpec, field: str) -> Any:
    if field == "depth":
        return model.effective_depth
    if field == "shortcut":
        return model.effective_shortcut
    return getattr(model, field)


def _location(session: Session, run: Run, field: str) -> list[str]:
    """Return the request location of a spec field: the run body, or the sweep's base or grid."""
    parts = field.split(".")
    if run.sweep_id is None:
        return ["body", *parts]
    sweep = session.get(Sweep, run.sweep_id)
    grid_fields = {GRID_ALIASES.get(key, key) for key in (sweep.grid if sweep else {})}
    return ["body", "grid", field] if field in grid_fields else ["body", "base", *parts]
