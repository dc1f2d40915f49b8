"""The reaper: finds runs whose worker died and runs whose queue message was lost, and queues them again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from backend.db.models import utc_now
from backend.queue import RunQueue
from backend.storage import runs as run_storage
from gatelab.settings import Settings

logger = logging.getLogger(__name__)

# A queued run is re-sent only when its message has been missing for this long,
# so the reaper never races the API between its commit and its send.
RESEND_GRACE_SECONDS = 10.0


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def reap(sessions: sessionmaker[Session], queue: RunQueue, settings: Settings) -> ReapReport:
    """Run one pass: mark stale runs lost and requeue them, then re-send queued runs missing from the broker."""
    report = ReapReport()
    with sessions() as session:
        requeued, exhausted = run_storage.mark_lost_runs(session, settings.heartbeat_timeout, settings.max_attempts)
        session.commit()
        for run in requeued:
            logger.warning("run %s lost its worker %s; requeued as attempt %d", run.id, run.worker, run.attempts + 1)
            queue.send(run)
            report.requeued.append(run.id)
        for run in exhausted:
            logger.error("run %s lost its worker after %d attempts; it stays lost", run.id, run.attempts)
            report.lost.append(run.id)

        queued = run_storage.queued_runs(session)
        if not queued or not queue.ping():
            return report
        pending = queue.pending_task_ids()
        cutoff = utc_now() - timedelta(seconds=RESEND_GRACE_SECONDS)
        for run in queued:
            created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=cutoff.tzinfo)
            if run.task_id not in pending and created < cutoff:
                logger.warning("run %s was queued but its message %s is not in the broker; sending it again", run.id, run.task_id)
                if queue.send(run):
                    report.resent.append(run.id)
    return report
