"""Performs one analysis inside a worker: claim it, load the run's model and images, compute, store the result.

Models are rebuilt from the run's spec, loaded from its checkpoint and evaluated
in float32 with the normalisation that the run trained with.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from sqlalchemy.orm import Session, sessionmaker

from backend.db.models import Baseline
from backend.db.session import session_factory
from backend.storage import analyses as analysis_storage
from backend.storage import runs as run_storage
from gatelab.settings import Settings
from gating_core.data import ImageSet, load_images, resolve_normalization, subset_indices
from gating_core.data.pipeline import DeviceImages
from gating_core.evaluate import SampleRecords, evaluate_samples
from gating_core.experiment import configure_backends
from gating_core.models import GatedResNet, build_model
from gating_core.spec import Normalization, NormalizationChoice, RunSpec
from gating_core.train.checkpoint import load_model_weights
from gating_core.train.precision import PrecisionPlan, plan_precision, resolve_device
from worker.runner import checkpoint_path

logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    """A succeeded run with what an analysis needs: its spec, the settings, and its model once loaded."""

    settings: Settings
    sessions: sessionmaker[Session]
    run_id: int
    spec: RunSpec
    run_precision: str | None
    sweep_baseline_run_id: int | None
    device: torch.device

    @property
    def precision(self) -> PrecisionPlan:
        """Plain float32: analyses compare scores across evaluations, so they avoid bf16 rounding."""
        return plan_precision("float32", self.device)

    @cached_property
    def model(self) -> GatedResNet:
        return load_trained_model(self.settings, self.run_id, self.spec, self.device)

    @cached_property
    def normalization(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        with self.sessions() as session:
            choice = training_normalization(session, self.spec)
        return resolve_normalization(choice, self.spec.data.dataset)

    @property
    def test_dataset(self) -> str:
        return self.spec.data.test_dataset or self.spec.data.dataset

    def load(self, name: str, split: str) -> ImageSet:
        settings = self.settings
        return load_images(name, split, settings.resolved_data_dir, settings.resolved_cache_dir, settings.allow_download)

    def test_indices(self, total: int, limit: int | None = None) -> np.ndarray:
        """Return the run's test images, or the first `limit` of them: a prefix of the same fixed order."""
        size = self.spec.data.test_subset
        if limit is not None:
            size = min(limit, size or total)
        return subset_indices(total, size)

    def evaluate(self, images: DeviceImages, batch_size: int) -> SampleRecords:
        mean, std = self.normalization
        return evaluate_samples(self.model, images, mean, std, self.precision, batch_size)


def load_trained_model(settings: Settings, run_id: int, spec: RunSpec, device: torch.device) -> GatedResNet:
    """Rebuild the run's network from its spec and load the weights of its checkpoint, in eval mode."""
    path = checkpoint_path(settings, run_id)
    if not path.exists():
        raise FileNotFoundError(
            f"run {run_id} has no checkpoint at {path}; the worker's GATELAB_ARTIFACT_DIR must be the one it trained with"
        )
    weights = load_model_weights(path)
    num_classes = int(weights["linear.weight"].shape[0])
    model = build_model(spec.model, num_classes)
    model.load_state_dict(weights)
    return model.to(device=device, memory_format=torch.channels_last).eval()


def training_normalization(session: Session, spec: RunSpec) -> NormalizationChoice | None:
    """Return the normalisation choice that the run trained with, as `worker.runner.resolve_initialisation` picks it.

    The spec's own choice wins. Otherwise a run started from a baseline used the
    baseline's statistics, and a run started from another run used that run's
    explicit choice. None means the training set's CIFAR statistics.
    """
    if spec.data.normalization is not None:
        return spec.data.normalization
    if spec.init.source == "baseline" and spec.init.id is not None:
        baseline = session.get(Baseline, spec.init.id)
        if baseline is not None:
            return Normalization.model_validate(baseline.normalization)
    if spec.init.source == "run" and spec.init.id is not None:
        source = run_storage.get_run(session, spec.init.id)
        if source is not None:
            return source.spec.get("data", {}).get("normalization")
    return None


Handler = Callable[[RunContext, dict[str, Any]], dict[str, Any]]


def _handlers() -> dict[str, Handler]:
    from worker import analysis_handlers

    return {
        "ood": analysis_handlers.run_ood,
        "hard_skip": analysis_handlers.run_hard_skip,
        "train_samples": analysis_handlers.run_train_samples,
    }


def execute_analysis(analysis_id: int, settings: Settings, redelivered: bool = False) -> str:
    """Perform one queued analysis and return the status it ended with, or 'skipped' when it was not queued.

    `redelivered` is true when the broker handed this message out before, to a
    worker that died holding it. A running analysis is then started again.
    """
    sessions = session_factory(settings.resolved_database_url)
    with sessions() as session:
        # Only a redelivered message can take over a running analysis, so only then is its status worth reading.
        taken_over = False
        if redelivered:
            before = analysis_storage.get_analysis(session, analysis_id)
            taken_over = before is not None and before.status == analysis_storage.RUNNING
        if not analysis_storage.claim_analysis(session, analysis_id, take_over_running=redelivered):
            analysis = analysis_storage.get_analysis(session, analysis_id)
            logger.info("analysis %s is not queued (status %s); dropping this message", analysis_id, analysis.status if analysis else "missing")
            return "skipped"
        if taken_over:
            logger.warning("analysis %s was running when its message came back, so its worker died; starting it again", analysis_id)
        analysis = analysis_storage.get_analysis(session, analysis_id)
        assert analysis is not None
        run = run_storage.get_run(session, analysis.run_id)
        kind, params, run_id = analysis.kind, dict(analysis.params), analysis.run_id
        if run is None:
            analysis_storage.finish_analysis(session, analysis_id, analysis_storage.FAILED, error=f"run {run_id} no longer exists")
            return analysis_storage.FAILED
        context = RunContext(
            settings=settings,
            sessions=sessions,
            run_id=run.id,
            spec=RunSpec.model_validate(run.spec),
            run_precision=run.precision,
            sweep_baseline_run_id=run.sweep.baseline_run_id if run.sweep is not None else None,
            device=resolve_device(settings.device),
        )

    logger.info("analysis %s (%s) of run %s started with %s", analysis_id, kind, run_id, params)
    started = time.perf_counter()
    try:
        configure_backends(context.device, settings.cpu_threads)
        result = _handlers()[kind](context, params)
    except Exception as error:
        logger.exception("analysis %s (%s) of run %s failed", analysis_id, kind, run_id)
        message = "".join(traceback.format_exception_only(type(error), error)).strip()[:4000]
        with sessions() as session:
            analysis_storage.finish_analysis(session, analysis_id, analysis_storage.FAILED, error=message)
        return analysis_storage.FAILED

    result["seconds"] = round(time.perf_counter() - started, 3)
    with sessions() as session:
        analysis_storage.finish_analysis(session, analysis_id, analysis_storage.SUCCEEDED, result=result)
    logger.info("analysis %s (%s) of run %s succeeded in %.1f s", analysis_id, kind, run_id, result["seconds"])
    return analysis_storage.SUCCEEDED
