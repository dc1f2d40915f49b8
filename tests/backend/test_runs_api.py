"""Runs through the REST API, on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import redis

QUICK_SPEC = {
    "model": {"depth": 8, "gate": {"kind": "model1"}},
    "data": {"train_subset": 200, "test_subset": 100},
    "train": {"epochs": 2, "batch_size": 64},
    "gate_loss_weight": 0.01,
}


def test_create_run_returns_queued_run(client, settings):
    response = client.post("/api/runs", json=QUICK_SPEC)

    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "queued"
    assert run["gate_kind"] == "model1"
    assert run["gate_loss_weight"] == 0.01
    assert run["total_epochs"] == 2
    assert run["spec"]["model"]["depth"] == 8
    assert run["spec"]["train"]["lr"] == 0.1


def test_create_run_sends_queue_message(client, settings):
    run = client.post("/api/runs", json=QUICK_SPEC).json()

    queued = redis.Redis.from_url(settings.broker_url).lrange(settings.queue, 0, -1)
    assert any(run["spec"] and str(run["id"]) in message.decode() for message in queued)


def test_get_run_and_missing_run(client):
    run_id = client.post("/api/runs", json=QUICK_SPEC).json()["id"]

    assert client.get(f"/api/runs/{run_id}").json()["id"] == run_id
    missing = client.get("/api/runs/999999")
    assert missing.status_code == 404
    assert "999999" in missing.json()["detail"]


def test_list_runs_paginates_and_filters(client):
    ids = [client.post("/api/runs", json=QUICK_SPEC).json()["id"] for _ in range(5)]
    client.post(f"/api/runs/{ids[0]}/cancel")

    page = client.get("/api/runs", params={"skip": 1, "limit": 2}).json()
    assert page["count"] == 5
    assert [run["id"] for run in page["data"]] == sorted(ids, reverse=True)[1:3]

    cancelled = client.get("/api/runs", params={"status": "cancelled"}).json()
    assert cancelled["count"] == 1
    assert cancelled["data"][0]["id"] == ids[0]

    bad = client.get("/api/runs", params={"status": "sleeping"})
    assert bad.status_code == 422
    assert "status" in bad.json()["message"]


def test_metrics_of_new_run_are_empty(client):
    run_id = client.post("/api/runs", json=QUICK_SPEC).json()["id"]

    assert client.get(f"/api/runs/{run_id}/metrics").json() == {"data": [], "count": 0}


def test_cancel_queued_then_retry(client):
    run_id = client.post("/api/runs", json=QUICK_SPEC).json()["id"]

    cancelled = client.post(f"/api/runs/{run_id}/cancel").json()
    assert cancelled["status"] == "cancelled"

    retried = client.post(f"/api/runs/{run_id}/retry").json()
    assert retried["status"] == "queued"
    assert retried["cancel_requested"] is False


def test_retry_of_queued_run_is_conflict(client):
    run_id = client.post("/api/runs", json=QUICK_SPEC).json()["id"]

    response = client.post(f"/api/runs/{run_id}/retry")

    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


def test_rerun_copies_spec(client):
    source = client.post("/api/runs", json=QUICK_SPEC).json()

    copy = client.post(f"/api/runs/{source['id']}/rerun")

    assert copy.status_code == 201
    assert copy.json()["id"] != source["id"]
    assert copy.json()["spec"] == source["spec"]


def test_health_reports_database_and_broker(client):
    body = client.get("/api/health").json()

    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
