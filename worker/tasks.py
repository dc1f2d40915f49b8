"""Celery tasks. Each one takes an id, and the runner re-reads everything else from the database."""

from __future__ import annotations

from celery.utils.log import get_task_logger

from gatelab.settings import get_settings
from worker.celery_app import TRAIN_TASK, celery_app

logger = get_task_logger(__name__)


@celery_app.task(name=TRAIN_TASK, bind=True)
def train_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    """Train run `run_id`, write its metrics and per-sample values, and return its final status."""
    from worker.runner import execute_run  # imports torch; keep it out of the API's import path

    logger.info("task %s received run %s", self.request.id, run_id)
    outcome = execute_run(run_id, worker_name=self.request.hostname or "worker", settings=get_settings())
    logger.info("task %s finished run %s: %s", self.request.id, run_id, outcome)
    return outcome
