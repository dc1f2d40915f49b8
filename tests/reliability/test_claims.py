"""The database claim and the reaper, on real SQLite, PostgreSQL and Redis, without training."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.db.migrate import upgrade_database
from backend.db.models import EpochMetric, Run, RunStatus, utc_now
from backend.db.session import session_factory
from backend.queue import RunQueue
from backend.services.reaper import RESEND_GRACE_SECONDS, reap
from backend.storage import runs as run_storage
from gatelab.settings import Settings
from gating_core.spec import RunSpec
from tests.support.services import RedisServer

CLAIMERS = 8


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    upgrade_database(database_url)
    return session_factory(database_url)


def new_run(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        run = run_storage.create_run(session, RunSpec(name="claim"))
        session.commit()
        return run.id


def age_heartbeat(sessions: sessionmaker[Session], run_id: int, seconds: float) -> None:
    with sessions() as session:
        session.get(Run, run_id).heartbeat_at = utc_now() - timedelta(seconds=seconds)
        session.commit()


def claim(sessions: sessionmaker[Session], run_id: int, worker: str) -> str | None:
    with sessions() as session:
        return run_storage.claim_run(session, run_id, worker, None, stale_after=60)


def test_concurrent_claims_one_winner(sessions):  # type: ignore[no-untyped-def]
    run_id = new_run(sessions)

    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        tokens = list(pool.map(lambda number: claim(sessions, run_id, f"worker{number}"), range(CLAIMERS)))

    winners = [token for token in tokens if token is not None]
    assert len(winners) == 1
    with sessions() as session:
        run = session.get(Run, run_id)
        assert run.attempts == 1
        assert run.claim_token == winners[0]
        assert run.status == RunStatus.RUNNING.value


def test_stale_claim_passes_to_new_worker(sessions):  # type: ignore[no-untyped-def]
    run_id = new_run(sessions)
    first = claim(sessions, run_id, "first")
    assert claim(sessions, run_id, "second") is None

    age_heartbeat(sessions, run_id, 120)
    second = claim(sessions, run_id, "second")

    assert second is not None
    assert second != first
    with sessions() as session:
        assert run_storage.heartbeat(session, run_id, first, 0.5, 1).still_owner is False
        assert run_storage.finish_run(session, run_id, first, RunStatus.SUCCEEDED) is False
        assert run_storage.heartbeat(session, run_id, second, 0.5, 1).still_owner is True
        assert session.get(Run, run_id).attempts == 2


def test_cancelled_run_cannot_be_claimed(sessions):  # type: ignore[no-untyped-def]
    run_id = new_run(sessions)
    with sessions() as session:
        run_storage.request_cancel(session, session.get(Run, run_id))
        session.commit()

    assert claim(sessions, run_id, "late") is None
    with sessions() as session:
        assert session.get(Run, run_id).status == RunStatus.CANCELLED.value


def test_reaper_requeues_until_attempts_run_out(sessions):  # type: ignore[no-untyped-def]
    run_id = new_run(sessions)
    for attempt in (1, 2):
        assert claim(sessions, run_id, f"attempt{attempt}") is not None
        age_heartbeat(sessions, run_id, 120)
        with sessions() as session:
            requeued, exhausted = run_storage.mark_lost_runs(session, heartbeat_timeout=60, max_attempts=2)
            session.commit()
        if attempt == 1:
            assert [run.id for run in requeued] == [run_id]
            assert exhausted == []
        else:
            assert requeued == []
            assert [run.id for run in exhausted] == [run_id]

    with sessions() as session:
        run = session.get(Run, run_id)
        assert run.status == RunStatus.LOST.value
        assert run.attempts == 2
        assert "no heartbeat" in run.error


def test_taken_over_worker_writes_no_metrics(sessions):  # type: ignore[no-untyped-def]
    from gating_core.train.callbacks import EpochMetrics, StopTraining
    from worker.runner import DatabaseCallback, Heartbeat

    run_id = new_run(sessions)
    old_token = claim(sessions, run_id, "old")
    age_heartbeat(sessions, run_id, 120)
    assert claim(sessions, run_id, "new") is not None
    callback = DatabaseCallback(sessions, run_id, Heartbeat(sessions, run_id, old_token, interval=60))
    metrics = EpochMetrics(1, 2.0, 0.0, 0.9, 0.1, 2.0, None, None, None, 0.1, 1.0, 100.0)

    with pytest.raises(StopTraining, match="took over"):
        callback.on_epoch_end(None, metrics)  # type: ignore[arg-type]

    with sessions() as session:
        assert session.scalars(select(EpochMetric).where(EpochMetric.run_id == run_id)).all() == []


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_reaper_resends_missing_message(sessions, database_url, private_redis):  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, broker_url=private_redis.url, queue=f"q-{uuid.uuid4().hex[:8]}")
    queue = RunQueue(settings.broker_url, settings.queue)
    run_id = new_run(sessions)
    with sessions() as session:
        session.get(Run, run_id).created_at = utc_now() - timedelta(seconds=RESEND_GRACE_SECONDS + 5)
        session.commit()
        task_id = session.get(Run, run_id).task_id

    first = reap(sessions, queue, settings)
    second = reap(sessions, queue, settings)

    assert first.resent == [run_id]
    assert second.resent == []
    assert queue.pending_task_ids() == {task_id}
    assert redis.Redis.from_url(private_redis.url).llen(settings.queue) == 1
