"""Executes one run inside a worker: claim it, train with database callbacks, store the results."""

from __future__ import annotations

import logging
import math
import os
import threading
import traceback
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.orm import Session, sessionmaker

from backend.db.models import Baseline, RunStatus
from backend.db.session import session_factory
from backend.storage import metrics as metric_storage
from backend.storage import runs as run_storage
from backend.storage import samples as sample_storage
from gatelab.settings import Settings
from gating_core.experiment import ExperimentResult, run_experiment
from gating_core.spec import Normalization, RunSpec
from gating_core.train.callbacks import Callback, DivergenceError, EpochMetrics, StopReason, StopTraining
from gating_core.train.checkpoint import load_model_weights
from gating_core.train.trainer import TrainState

logger = logging.getLogger(__name__)

# A gate value below this counts as skipping the gated computation in run summaries.
SKIP_THRESHOLD = 0.5


def run_directory(settings: Settings, run_id: int) -> Path:
    return settings.resolved_artifact_dir / "runs" / str(int(run_id))


def artifact_file(settings: Settings, path: Path) -> Path:
    """Return `path` resolved, or raise ValueError when it lies outside the artifact directory."""
    root = settings.resolved_artifact_dir.resolve()
    resolved = path.expanduser().resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"artifact path must stay inside the artifact directory {root}; received {str(path)!r}")
    return resolved


def checkpoint_path(settings: Settings, run_id: int) -> Path:
    return run_directory(settings, run_id) / "checkpoint.pt"


class Heartbeat(threading.Thread):
    """Beats every few seconds, records progress and turns a cancel request into a stop signal."""

    def __init__(self, sessions: sessionmaker[Session], run_id: int, token: str, interval: float) -> None:
        super().__init__(name=f"heartbeat-run-{run_id}", daemon=True)
        self.sessions = sessions
        self.run_id = run_id
        self.token = token
        self.interval = interval
        self.state: TrainState | None = None
        self.stop_reason: StopReason | None = None
        self.stop_message = ""
        self.claim_lost = False
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        progress = self.state.progress if self.state else 0.0
        epoch = self.state.epoch if self.state else 0
        try:
            with self.sessions() as session:
                reply = run_storage.heartbeat(session, self.run_id, self.token, progress, epoch)
        except Exception as error:  # a database outage must not kill the training thread
            logger.warning("heartbeat of run %s failed: %s", self.run_id, error)
            return
        if not reply.still_owner:
            self.claim_lost = True
            self.stop_reason = StopReason.CANCELLED
            self.stop_message = "another worker or the reaper took over this run"
        elif reply.cancel_requested:
            self.stop_reason = StopReason.CANCELLED
            self.stop_message = "cancelled by request"


class DatabaseCallback(Callback):
    """Writes per-epoch metrics, and stops training when the heartbeat says so."""

    def __init__(self, sessions: sessionmaker[Session], run_id: int, heartbeat: Heartbeat) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.heartbeat = heartbeat

    def on_train_start(self, state: TrainState) -> None:
        self.heartbeat.state = state
        # Epochs restored from a checkpoint may not have reached the database
        # before the previous worker died; writing them again is idempotent.
        with self.sessions() as session:
            for metrics in state.history:
                metric_storage.upsert_epoch_metrics(session, self.run_id, metrics.as_dict())
            session.commit()

    def on_step(self, state: TrainState) -> None:
        if self.heartbeat.stop_reason is not None:
            raise StopTraining(self.heartbeat.stop_reason, self.heartbeat.stop_message)

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        # Confirm the claim before writing, so that a worker whose run was
        # taken over never overwrites the metrics of the attempt that took it.
        # NOTE: the epoch's checkpoint is already written by then, because
        # run_experiment puts CheckpointCallback first.
        self.heartbeat.beat()
        if self.heartbeat.claim_lost:
            raise StopTraining(StopReason.CANCELLED, self.heartbeat.stop_message)
        with self.sessions() as session:
            metric_storage.upsert_epoch_metrics(session, self.run_id, metrics.as_dict())
            session.commit()
        logger.info(
            "run %s epoch %d/%d: train loss %.4f, test accuracy %.4f",
            self.run_id,
            metrics.epoch,
            state.total_epochs,
            metrics.train_loss,
            metrics.test_accuracy,
        )


def describe_gpu() -> str | None:
    if not torch.cuda.is_available():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0")
    return f"GPU {visible}: {torch.cuda.get_device_name(0)}"


def execute_run(run_id: int, worker_name: str, settings: Settings) -> str:
    """Train one run end to end and return the status it ended with, 'skipped' or 'released'.

    'skipped' means that another worker has claimed the run or that it is no longer
    queued, so this message was a duplicate. 'released' means that the run was
    taken over (by the reaper or another worker) while this worker trained it.
    """
    sessions = session_factory(settings.resolved_database_url)
    with sessions() as session:
        token = run_storage.claim_run(session, run_id, worker_name, describe_gpu(), settings.heartbeat_timeout)
        run = run_storage.get_run(session, run_id)
        if token is None or run is None:
            logger.info("run %s is not free (status %s); dropping this message", run_id, run.status if run else "missing")
            return "skipped"
        logger.info("worker %s claimed run %s (attempt %d)", worker_name, run_id, run.attempts)
        raw_spec = run.spec

    heartbeat = Heartbeat(sessions, run_id, token, settings.heartbeat_interval)
    heartbeat.start()
    try:
        return _train_and_store(sessions, run_id, token, raw_spec, heartbeat, settings)
    except DivergenceError as error:
        heartbeat.finished.set()
        return store_divergence(sessions, run_id, token, error)
    except StopTraining as error:
        heartbeat.finished.set()
        logger.info("run %s stopped: %s", run_id, error)
        with sessions() as session:
            finished = run_storage.finish_run(session, run_id, token, RunStatus.CANCELLED, error=str(error))
        return RunStatus.CANCELLED.value if finished else "released"
    except Exception as error:
        heartbeat.finished.set()
        logger.exception("run %s failed", run_id)
        with sessions() as session:
            run_storage.finish_run(session, run_id, token, RunStatus.FAILED, error=_summarise_error(error))
        return RunStatus.FAILED.value
    finally:
        heartbeat.finished.set()


def _train_and_store(
    sessions: sessionmaker[Session],
    run_id: int,
    token: str,
    raw_spec: dict[str, Any],
    heartbeat: Heartbeat,
    settings: Settings,
) -> str:
    # Validated here rather than at claim time, so that a stored spec this
    # version cannot read ends the run as failed instead of killing the task.
    spec = RunSpec.model_validate(raw_spec)
    init_weights, normalization = resolve_initialisation(sessions, spec, settings)
    result = run_experiment(
        spec,
        data_dir=settings.resolved_data_dir,
        cache_dir=settings.resolved_cache_dir,
        device=settings.device,
        callbacks=[DatabaseCallback(sessions, run_id, heartbeat)],
        checkpoint_path=checkpoint_path(settings, run_id),
        init_weights=init_weights,
        normalization=normalization,
        allow_download=settings.allow_download,
        cpu_threads=settings.cpu_threads,
    )
    heartbeat.finished.set()
    return store_success(sessions, run_id, token, result)


def resolve_initialisation(
    sessions: sessionmaker[Session], spec: RunSpec, settings: Settings
) -> tuple[dict[str, torch.Tensor] | None, Any]:
    """Return the starting weights and the default normalisation that the spec's init names."""
    if spec.init.source == "scratch":
        return None, None
    if spec.init.source == "run":
        path = checkpoint_path(settings, spec.init.id or 0)
        if not path.exists():
            raise ValueError(f"init.id {spec.init.id}: run has no checkpoint at {path}; is it finished?")
        with sessions() as session:
            source = run_storage.get_run(session, spec.init.id or 0)
            normalization = source.spec.get("data", {}).get("normalization") if source else None
        return load_model_weights(path), normalization
    with sessions() as session:
        baseline = session.get(Baseline, spec.init.id)
        if baseline is None:
            raise ValueError(f"init.id {spec.init.id}: baseline not found")
        weights_path = artifact_file(settings, Path(baseline.weights_path))
        normalization = Normalization.model_validate(baseline.normalization)
    weights = torch.load(weights_path, map_location="cpu", weights_only=True)
    return weights, normalization


def store_success(sessions: sessionmaker[Session], run_id: int, token: str, result: ExperimentResult) -> str:
    samples = result.test_samples
    gate = samples.gate
    last = result.state.history[-1] if result.state.history else None
    gate_names = list(getattr(result.state.model, "gate_names", []))
    with sessions() as session:
        sample_storage.write_evaluation(session, run_id, _test_name(result), "test", samples, gate_names, result.classes)
        if result.train_samples is not None:
            sample_storage.write_evaluation(
                session, run_id, result.state.spec.data.dataset, "train", result.train_samples, gate_names, result.classes
            )
        session.commit()
        finished = run_storage.finish_run(
            session,
            run_id,
            token,
            RunStatus.SUCCEEDED,
            progress=1.0,
            epoch=result.state.epoch,
            test_accuracy=samples.accuracy,
            train_loss=last.train_loss if last else None,
            mean_gate=float(gate.mean()) if gate is not None else None,
            skip_rate=float((gate < SKIP_THRESHOLD).mean()) if gate is not None else None,
            precision=result.precision,
            environment=result.environment,
            init_report=result.load_report.as_dict() if result.load_report else None,
        )
    return RunStatus.SUCCEEDED.value if finished else "released"


def _test_name(result: ExperimentResult) -> str:
    data = result.state.spec.data
    return data.test_dataset or data.dataset


def store_divergence(sessions: sessionmaker[Session], run_id: int, token: str, error: DivergenceError) -> str:
    logger.warning("run %s diverged in epoch %d at iteration %d", run_id, error.epoch, error.iteration)
    divergence = {
        "epoch": error.epoch,
        "iteration": error.iteration,
        "last_finite_metrics": _finite_values(error.last_finite.as_dict()) if error.last_finite else None,
    }
    with sessions() as session:
        run_storage.finish_run(session, run_id, token, RunStatus.DIVERGED, error=str(error), divergence=divergence)
    return RunStatus.DIVERGED.value


def _finite_values(values: dict[str, Any]) -> dict[str, Any]:
    """Replace NaN and infinite floats by None: PostgreSQL's JSONB and strict JSON reject them."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value for key, value in values.items()}


def _summarise_error(error: Exception) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return "".join(lines).strip()[:4000]
