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
        # Why a run is neither lost nor trained twice:
        # - acks_late: a message is acknowledged only after its task returns,
        #   so a worker that dies mid-run leaves it unacknowledged in Redis.
        # - reject_on_worker_lost: a child process that dies (a crash, an
        #   out-of-memory kill) hands its message straight back to the queue.
        # - visibility_timeout: Redis gives an unacknowledged message to another
        #   worker after this many seconds, which covers a dead worker host
        #   when no API reaper runs. A run that trains longer than this is handed
        #   out again while it trains; that copy finds the run claimed.
        # - The database decides: claim_run lets one worker take a queued run,
        #   or a running one whose heartbeat is older than heartbeat_timeout, so
        #   every duplicated, redelivered or re-sent message is dropped (and
        #   acknowledged). The API's reaper requeues a run whose heartbeat
        #   stopped, usually long before the visibility timeout.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        # One message at a time per process, so a queued run waits in Redis,
        # where any free worker can take it, rather than behind a busy one.
        worker_prefetch_multiplier=1,
        # A fresh child process per run releases all GPU memory when the run
        # ends, and a cancelled run frees its GPU as soon as its task returns.
        # Production runs one worker per GPU with --concurrency=1.
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
