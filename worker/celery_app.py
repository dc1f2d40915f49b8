"""The Celery application: broker settings shared by the API (which sends) and the workers.

Importing this module does not import torch, so the API can send tasks cheaply.
"""

from __future__ import annotations

from celery import Celery

from gatelab.settings import Settings, get_settings

TRAIN_TASK = "gatelab.train_run"
ANALYSIS_TASK = "gatelab.run_analysis"


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("gatelab", broker=settings.broker_url or "redis://127.0.0.1:6379/0", include=["worker.tasks", "worker.analysis_tasks"])
    app.conf.update(
        task_default_queue=settings.queue,
        task_routes={TRAIN_TASK: {"queue": settings.queue}},
        task_serializer="json",
        accept_content=["json"],
        # Results live in the database, not in Celery.
        task_ignore_result=True,
        result_backend=None,
        # A run is never lost: the message is acknowledged only after the task
        # returns (acks_late), and a child process that dies mid-task hands its
        # message back to the broker (reject_on_worker_lost). If the whole worker
        # dies, Redis redelivers the unacknowledged message after the visibility
        # timeout. A run is never trained twice: a redelivered or duplicated
        # message finds the run claimed in the database (see claim_run) and is
        # dropped, and the reaper requeues a run whose heartbeat stopped.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        # One message at a time per process, so a queued run waits in Redis,
        # where any free worker can take it, rather than behind a busy one.
        worker_prefetch_multiplier=1,
        # A fresh child process per run releases all GPU memory when the run ends.
        worker_max_tasks_per_child=1,
        broker_connection_retry_on_startup=True,
        # The API must not hang when Redis is down: try briefly, then leave the
        # run queued in the database for the reaper to send later.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        worker_send_task_events=True,
        task_send_sent_event=True,
    )
    return app


celery_app = make_celery()
