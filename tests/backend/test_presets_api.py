"""GET /api/presets lists every preset, and launching one creates its sweep as POST /api/sweeps would."""

from __future__ import annotations

import pytest

from backend.db.models import Run, RunStatus
from gating_core.presets import list_presets
from tests.support.services import postgres_database

QUICK = {"seeds": [0], "lambdas": [0.1, 1.0], "overrides": {"train.epochs": 1, "data.train_subset": 256}}
FROM_BASELINE = "cifar10-resnet110-model1-from-baseline"


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    """Use SQLite here. The launch test from a baseline run also runs on PostgreSQL, by indirect parametrisation."""
    if request.param == "postgresql":
        with postgres_database() as url:
            yield url
        return
    yield f"sqlite:///{tmp_path / 'gatelab.db'}"


def mark_succeeded(client, run_id: int) -> None:
    with client.app.state.sessions() as session:
        session.get(Run, run_id).status = RunStatus.SUCCEEDED.value
        session.commit()


def launch_baseline(client, preset: str = "cifar10-resnet110-baseline") -> int:
    response = client.post(f"/api/presets/{preset}/launch", json={"seeds": [0]})
    assert response.status_code == 201, response.text
    return response.json()["run_ids"][0]


def test_list_presets_returns_all(client):
    response = client.get("/api/presets")

    assert response.status_code == 200
    payload = response.json()
    assert payload["count"] == len(list_presets())
    assert len(payload["data"]) == payload["count"]
    first = payload["data"][0]
    for key in ("name", "description", "base", "grid", "run_count", "published", "requires_baseline_run"):
        assert key in first
    by_name = {preset["name"]: preset for preset in payload["data"]}
    assert by_name["cifar10-resnet110-model1"]["run_count"] == 27
    assert by_name[FROM_BASELINE]["requires_baseline_run"] is True
    assert by_name["cifar10-resnet110-baseline"]["published"]["results"][0]["test_error_percent"] == 6.43


def test_get_preset_by_name(client):
    response = client.get("/api/presets/cifar10-resnet110-model3-ce")

    assert response.status_code == 200
    assert response.json()["base"]["model"]["gate"]["model3_loss"] == "ce"


def test_unknown_preset_is_404(client):
    response = client.get("/api/presets/cifar10-resnet110-modl1")

    assert response.status_code == 404
    assert "cifar10-resnet110-model1" in response.json()["detail"]
    assert client.post("/api/presets/nothing/launch").status_code == 404


def test_launch_creates_sweep_with_options(client):
    response = client.post("/api/presets/cifar10-resnet110-model1/launch", json=QUICK)

    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["preset"] == "cifar10-resnet110-model1"
    assert sweep["grid"] == {"gate_loss_weight": [0.1, 1.0], "seed": [0]}
    assert len(sweep["run_ids"]) == 2
    assert sweep["status_counts"] == {"queued": 2}
    runs = client.get("/api/runs", params={"sweep_id": sweep["id"]}).json()["data"]
    assert sorted(run["gate_loss_weight"] for run in runs) == [0.1, 1.0]
    assert {run["spec"]["train"]["epochs"] for run in runs} == {1}
    assert {run["spec"]["model"]["depth"] for run in runs} == {110}


def test_launch_without_body_uses_preset(client):
    response = client.post("/api/presets/cifar10-resnet34-baseline/launch")

    assert response.status_code == 201, response.text
    assert len(response.json()["run_ids"]) == 5


def test_baseline_preset_requires_run_id(client):
    response = client.post(f"/api/presets/{FROM_BASELINE}/launch", json=QUICK)

    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"][0]["field"] == "baseline_run_id"
    assert "baseline_run_id is required" in payload["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_baseline_run_must_have_succeeded(client):
    run_id = launch_baseline(client)

    response = client.post(f"/api/presets/{FROM_BASELINE}/launch", json={**QUICK, "baseline_run_id": run_id})

    assert response.status_code == 422
    assert "is queued" in response.json()["message"]
    assert client.get("/api/sweeps").json()["count"] == 1


def test_baseline_run_must_match_network(client):
    run_id = launch_baseline(client, "cifar10-resnet164-baseline")
    mark_succeeded(client, run_id)

    response = client.post(f"/api/presets/{FROM_BASELINE}/launch", json={**QUICK, "baseline_run_id": run_id})

    assert response.status_code == 422
    message = response.json()["message"]
    assert "depth 164" in message
    assert "depth 110" in message


def test_missing_baseline_run_rejected(client):
    response = client.post(f"/api/presets/{FROM_BASELINE}/launch", json={**QUICK, "baseline_run_id": 9999})

    assert response.status_code == 422
    assert "run 9999 not found" in response.json()["message"]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_launch_from_baseline_run_sets_init(client):
    run_id = launch_baseline(client)
    mark_succeeded(client, run_id)

    response = client.post(f"/api/presets/{FROM_BASELINE}/launch", json={**QUICK, "baseline_run_id": run_id})

    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["baseline_run_id"] == run_id
    runs = client.get("/api/runs", params={"sweep_id": sweep["id"]}).json()["data"]
    assert len(runs) == 2
    assert all(run["spec"]["init"] == {"source": "run", "id": run_id} for run in runs)


def test_bad_override_names_field(client):
    body = {"overrides": {"train.epochs": 0}}

    response = client.post("/api/presets/cifar10-resnet110-model1/launch", json=body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"][0]["field"] == "overrides.train.epochs"
    assert "greater than or equal to 1" in payload["message"]
    assert "received 0" in payload["message"]


def test_bad_scheme_lists_allowed_values(client):
    response = client.post("/api/presets/cifar10-resnet110-model1/launch", json={"scheme": "cosine"})

    assert response.status_code == 422
    message = response.json()["message"]
    assert "'164-epoch'" in message
    assert "cosine" in message
