"""Celery tasks. Each one takes an id, and the runner re-reads everything else from the database.

Only worker processes import this module (through the Celery `include` list);
the API sends tasks by name and never imports it.
"""

from __future__ import annotations

from celery.utils.log import get_task_logger

from gatelab.settings import get_settings
from worker.celery_app import TRAIN_TASK, celery_app

# The runner imports torch, which takes seconds. Importing it here, in the
# worker's parent process, lets every child (one per run, because of
# worker_max_tasks_per_child=1) inherit it through fork instead of importing it
# again. Importing torch does not initialise CUDA, so forking stays safe: CUDA
# starts in the child, inside the task.
from worker.runner import execute_run

logger = get_task_logger(__name__)


@celery_app.task(name=TRAIN_TASK, bind=True)
def train_run(self, run_id: int) -> str:  # type: ignore[no-untyped-def]
    """Train run `run_id`, write its metrics and per-sample values, and return its final status."""
    settings = get_settings()
    worker_name = settings.worker_name or self.request.hostname or "worker"
    logger.info("task %s received run %s", self.request.id, run_id)
    outcome = execute_run(run_id, worker_name=worker_name, settings=settings)
    logger.info("task %s finished run %s: %s", self.request.id, run_id, outcome)
    return outcome
