"""PostgreSQL stops under a running API: requests get 503 with a clear message, and service resumes after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import tiny_spec
from tests.support.services import (
    REDIS_URL,
    PostgresCluster,
    ServiceProcess,
    delete_queue,
    redis_available,
    service_environment,
    skip_or_fail,
    start_api,
    wait_until,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def api(cluster: PostgresCluster, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    """An API process on the private cluster, with the reaper running every 0.5 s."""
    if not redis_available(REDIS_URL):
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable")
    queue = f"gatelab-test-{uuid.uuid4().hex[:10]}"
    environment = service_environment(
        {
            "GATELAB_HOME": str(tmp_path / "home"),
            "GATELAB_DATABASE_URL": cluster.create_database(),
            "GATELAB_BROKER_URL": REDIS_URL,
            "GATELAB_QUEUE": queue,
            "GATELAB_REAPER_INTERVAL": "0.5",
        }
    )
    process, url = start_api(environment, tmp_path / "api.log")
    yield process, url
    process.stop()
    delete_queue(REDIS_URL, queue)


def test_database_outage_gives_503_then_recovers(cluster: PostgresCluster, api: tuple[ServiceProcess, str]):
    process, url = api
    http = httpx.Client(base_url=url, timeout=30)
    created = http.post("/api/runs", json=tiny_spec())
    assert created.status_code == 201

    cluster.stop()

    for method, path, body in (
        ("GET", "/api/runs", None),
        ("GET", f"/api/runs/{created.json()['id']}", None),
        ("POST", "/api/runs", tiny_spec()),
        ("POST", f"/api/runs/{created.json()['id']}/cancel", None),
    ):
        response = http.request(method, path, json=body)
        assert response.status_code == 503, f"{method} {path}: {response.status_code} {response.text}"
        assert response.headers["retry-after"] == "5"
        assert response.json()["message"] == "database unavailable"
        assert "database is unavailable" in response.json()["detail"]

    health = http.get("/api/health")
    assert health.status_code == 503
    assert health.json()["database"].startswith("unavailable")

    wait_until(lambda: "reaper pass failed" in process.log(), timeout=30, what="the reaper to meet the outage")
    cluster.start()

    assert http.get("/api/health").status_code == 200
    runs = http.get("/api/runs")
    assert runs.status_code == 200
    assert [run["id"] for run in runs.json()["data"]] == [created.json()["id"]]
    assert http.post("/api/runs", json=tiny_spec()).status_code == 201
    assert http.get("/api/runs").json()["count"] == 2

    wait_until(lambda: "reaper pass succeeded again" in process.log(), timeout=30, what="the reaper to recover")
    assert process.alive()
    assert process.log().count("reaper pass failed; retrying") == 1
