"""Sweeps through the REST API: grid expansion and atomic creation."""

from __future__ import annotations

BASE = {
    "model": {"depth": 8, "gate": {"kind": "model1"}},
    "data": {"train_subset": 200, "test_subset": 100},
    "train": {"epochs": 1},
}


def test_sweep_expands_lambda_by_seed(client):
    response = client.post(
        "/api/sweeps",
        json={"name": "grid", "base": BASE, "grid": {"lambda": [0.001, 0.1, 10.0], "seed": [0, 1]}},
    )

    assert response.status_code == 201, response.text
    sweep = response.json()
    assert len(sweep["run_ids"]) == 6
    assert sweep["status_counts"] == {"queued": 6}

    runs = client.get("/api/runs", params={"sweep_id": sweep["id"], "limit": 100}).json()["data"]
    pairs = sorted((run["gate_loss_weight"], run["seed"]) for run in runs)
    assert pairs == [(0.001, 0), (0.001, 1), (0.1, 0), (0.1, 1), (10.0, 0), (10.0, 1)]
    assert all(run["sweep_id"] == sweep["id"] for run in runs)


def test_sweep_grid_over_nested_field(client):
    response = client.post(
        "/api/sweeps",
        json={"name": "depths", "base": BASE, "grid": {"model.depth": [8, 14], "lambda": [0.01]}},
    )

    assert response.status_code == 201, response.text
    runs = client.get("/api/runs", params={"sweep_id": response.json()["id"]}).json()["data"]
    assert sorted(run["spec"]["model"]["depth"] for run in runs) == [8, 14]


def test_sweep_list_and_get(client):
    sweep_id = client.post("/api/sweeps", json={"name": "one", "base": BASE, "grid": {"seed": [0]}}).json()["id"]

    listed = client.get("/api/sweeps").json()
    assert listed["count"] == 1
    assert client.get(f"/api/sweeps/{sweep_id}").json()["name"] == "one"
    assert client.get("/api/sweeps/424242").status_code == 404


def test_cancel_sweep_cancels_every_run(client):
    sweep = client.post("/api/sweeps", json={"name": "c", "base": BASE, "grid": {"seed": [0, 1, 2]}}).json()

    cancelled = client.post(f"/api/sweeps/{sweep['id']}/cancel").json()

    assert cancelled["status_counts"] == {"cancelled": 3}


def test_retry_sweep_requeues_only_retryable_runs(client):
    sweep = client.post("/api/sweeps", json={"name": "r", "base": BASE, "grid": {"seed": [0, 1, 2]}}).json()
    first, *others = sweep["run_ids"]
    for run_id in others:
        client.post(f"/api/runs/{run_id}/cancel")

    retried = client.post(f"/api/sweeps/{sweep['id']}/retry").json()
    again = client.post(f"/api/sweeps/{sweep['id']}/retry").json()

    assert [run["id"] for run in retried["data"]] == others
    assert retried["count"] == 2
    assert {run["status"] for run in retried["data"]} == {"queued"}
    assert again == {"data": [], "count": 0}
    assert client.get(f"/api/runs/{first}").json()["status"] == "queued"
    assert client.post("/api/sweeps/424242/retry").status_code == 404


def test_invalid_combination_creates_nothing(client):
    response = client.post(
        "/api/sweeps",
        json={"name": "bad", "base": BASE, "grid": {"model.depth": [8, 9]}},
    )

    assert response.status_code == 422
    assert "6n+2" in response.json()["message"]
    assert client.get("/api/runs").json()["count"] == 0
    assert client.get("/api/sweeps").json()["count"] == 0


def test_sweep_above_run_cap_is_rejected(client, settings):
    values = list(range(settings.max_runs_per_sweep + 1))

    response = client.post("/api/sweeps", json={"name": "big", "base": BASE, "grid": {"seed": values}})

    assert response.status_code == 422
    assert f"at most {settings.max_runs_per_sweep}" in response.json()["message"]
    assert client.get("/api/runs").json()["count"] == 0
