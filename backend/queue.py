"""Sending runs to the workers, and finding runs whose queue message was lost."""

from __future__ import annotations

import json
import logging
from functools import lru_cache

import redis
from celery import Celery

from backend.db.models import Run
from gatelab.settings import Settings
from worker.celery_app import TRAIN_TASK, make_celery

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _celery_for(broker_url: str | None, queue: str) -> Celery:
    return make_celery(Settings(broker_url=broker_url, queue=queue))


class RunQueue:
    """Sends run ids to the Celery queue. A message carries only the run id."""

    def __init__(self, broker_url: str | None, queue: str) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self.celery = _celery_for(broker_url, queue)

    def send(self, run: Run) -> bool:
        """Queue the run; return False (and log) when the broker cannot be reached."""
        try:
            self.celery.send_task(TRAIN_TASK, args=[run.id], task_id=run.task_id, queue=self.queue)
        except Exception as error:  # kombu raises many transport-specific errors
            logger.warning("could not queue run %s (task %s): %s", run.id, run.task_id, error)
            return False
        return True

    def ping(self) -> bool:
        try:
            return bool(self._redis().ping())
        except (redis.RedisError, OSError):
            return False

    def pending_task_ids(self) -> set[str]:
        """Return the task ids waiting in the queue or taken but not yet acknowledged."""
        client = self._redis()
        task_ids: set[str] = set()
        for raw in client.lrange(self.queue, 0, -1):
            task_ids.add(_task_id(json.loads(raw)))
        for raw in client.hvals("unacked"):
            task_ids.add(_task_id(json.loads(raw)[0]))
        task_ids.discard("")
        return task_ids

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.broker_url or "redis://127.0.0.1:6379/0", socket_timeout=2, socket_connect_timeout=2)


def _task_id(message: dict) -> str:
    return str(message.get("headers", {}).get("id", ""))
