"""Checking and queueing analysis requests: OOD evaluations, hard-skip curves and training-split samples.

Everything that the API can check cheaply is checked here, before the request
reaches a worker: the run's status and gate kind, the baseline run, and whether
the out-of-distribution data set is on disk.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from backend.db.models import Analysis, Run, RunStatus
from backend.queue import RunQueue
from backend.schemas import HardSkipParams, OodParams
from backend.storage import analyses as analysis_storage
from backend.storage import runs as run_storage
from backend.storage import samples as sample_storage
from gatelab.settings import Settings
from gating_core.data import DatasetNotFoundError, load_image
from gating_core.spec import BLOCK_GATES
from worker.celery_app import ANALYSIS_TASK

logger = logging.getLogger(__name__)


class AnalysisRequestError(ValueError):
    """A request that cannot run: the HTTP status, the field at fault, the problem and the value received."""

    def __init__(self, status_code: int, field: str, message: str, received: object) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.field = field
        self.message = message
        self.received = received


def check_request(session: Session, settings: Settings, run: Run, kind: str, params: Any) -> None:
    """Raise AnalysisRequestError when the analysis cannot run on this run."""
    if run.status != RunStatus.SUCCEEDED.value:
        raise AnalysisRequestError(
            409, "run_id", f"run {run.id} has status {run.status!r}; analyses need a succeeded run", run.id
        )
    if kind == "ood":
        _check_ood(settings, run, params)
    elif kind == "hard_skip":
        _check_hard_skip(session, run, params)
    elif kind == "train_samples":
        _check_train_samples(session, run)


def _check_ood(settings: Settings, run: Run, params: OodParams) -> None:
    if params.dataset == "corruption":
        return
    trained_on = run.spec.get("data", {}).get("dataset")
    if params.dataset == trained_on:
        raise AnalysisRequestError(
            422,
            "params.dataset",
            f"params.dataset must differ from the run's training data set {trained_on!r} to be out-of-distribution; "
            f"use one of fashion-mnist, cifar100, svhn or corruption",
            params.dataset,
        )
    if settings.allow_download and params.dataset != "fashion-mnist":
        return
    try:
        load_image(params.dataset, "test", 0, settings.resolved_data_dir, settings.resolved_cache_dir)
    except DatasetNotFoundError as error:
        raise AnalysisRequestError(422, "params.dataset", str(error), params.dataset) from error


def _check_hard_skip(session: Session, run: Run, params: HardSkipParams) -> None:
    if run.gate_kind not in BLOCK_GATES:
        raise AnalysisRequestError(
            422,
            "kind",
            f"hard_skip needs a block-level gate ({', '.join(BLOCK_GATES)}); run {run.id} has gate kind {run.gate_kind!r}",
            "hard_skip",
        )
    if params.baseline_run_id is None:
        return
    baseline = run_storage.get_run(session, params.baseline_run_id)
    if baseline is None or baseline.status != RunStatus.SUCCEEDED.value:
        state = "does not exist" if baseline is None else f"has status {baseline.status!r}"
        raise AnalysisRequestError(
            422,
            "params.baseline_run_id",
            f"params.baseline_run_id must name a succeeded run; run {params.baseline_run_id} {state}",
            params.baseline_run_id,
        )


def _check_train_samples(session: Session, run: Run) -> None:
    if sample_storage.find_evaluation(session, run.id, split="train") is not None:
        raise AnalysisRequestError(
            409,
            "kind",
            f"run {run.id} already has training-split samples; read them at /api/runs/{run.id}/samples?split=train",
            "train_samples",
        )


def submit(session: Session, queue: RunQueue, run: Run, kind: str, params: dict[str, Any]) -> Analysis:
    """Store a queued analysis, commit, and send it to the workers.

    When the broker is unreachable, the analysis is marked failed with that
    reason, so that nothing waits for a message that was never sent.
    """
    analysis = analysis_storage.create_analysis(session, run.id, kind, params)
    session.commit()
    try:
        queue.celery.send_task(ANALYSIS_TASK, args=[analysis.id], queue=queue.queue)
    except Exception as error:  # kombu raises many transport-specific errors
        logger.warning("could not queue analysis %s of run %s: %s", analysis.id, run.id, error)
        analysis_storage.finish_analysis(
            session, analysis.id, analysis_storage.FAILED, error=f"the queue could not be reached: {error}; submit it again"
        )
    session.refresh(analysis)
    return analysis
