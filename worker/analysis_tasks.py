"""Celery task for analyses of finished runs. It takes an analysis id; the runner re-reads the rest."""

from __future__ import annotations

from celery.utils.log import get_task_logger

from gatelab.settings import get_settings
from worker.celery_app import ANALYSIS_TASK, celery_app

logger = get_task_logger(__name__)


@celery_app.task(name=ANALYSIS_TASK, bind=True)
def run_analysis(self, analysis_id: int) -> str:  # type: ignore[no-untyped-def]
    """Perform analysis `analysis_id`, store its result, and return its final status."""
    from worker.analysis_runner import execute_analysis  # imports torch; keep it out of the API's import path

    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    logger.info("task %s received analysis %s%s", self.request.id, analysis_id, " (redelivered)" if redelivered else "")
    outcome = execute_analysis(analysis_id, settings=get_settings(), redelivered=redelivered)
    logger.info("task %s finished analysis %s: %s", self.request.id, analysis_id, outcome)
    return outcome
