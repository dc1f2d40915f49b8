"""Invalid network and gate combinations get a 422 naming the field, the allowed values and the value received."""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url(tmp_path):
    """Use SQLite only: these requests are rejected before any query."""
    return f"sqlite:///{tmp_path / 'gatelab.db'}"


# (spec, field reported, fragments of the message: allowed values and the value received)
INVALID_COMBINATIONS = {
    "bottleneck-depth-111": (
        {"model": {"block": "bottleneck", "depth": 111}},
        "model.depth",
        ["9n+2", "11, 20, 29", "164", "received 111"],
    ),
    "basic-depth-111": (
        {"model": {"block": "basic", "depth": 111}},
        "model.depth",
        ["6n+2", "110", "received 111"],
    ),
    "cifar-resnet-stage-4": (
        {"model": {"gate": {"kind": "model1", "stage": 4}}},
        "model.gate",
        ["gate.stage", "between 1 and 3", "received 4"],
    ),
    "resnet34-stage-5": (
        {"model": {"arch": "resnet34", "gate": {"kind": "model3", "stage": 5}}},
        "model.gate.stage",
        ["less than or equal to 4", "received 5"],
    ),
    "two-way-5x5": (
        {"model": {"gate": {"kind": "two_way", "two_way_kernel": 5}}},
        "model.gate.two_way_kernel",
        ["1 or 3", "received 5"],
    ),
    "lambda-without-gate": (
        {"model": {"gate": {"kind": "none"}}, "gate_loss_weight": 0.1},
        "",
        ["gate_loss_weight must be 0", "'none'", "received 0.1"],
    ),
    "lambda-with-model2": (
        {"model": {"gate": {"kind": "model2"}}, "gate_loss_weight": 0.5},
        "",
        ["gate_loss_weight must be 0", "'model2'", "received 0.5"],
    ),
}


@pytest.mark.parametrize(("spec", "field", "fragments"), INVALID_COMBINATIONS.values(), ids=INVALID_COMBINATIONS.keys())
def test_run_rejection_names_field(client, spec, field, fragments):
    response = client.post("/api/runs", json=spec)

    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["detail"][0]["field"].startswith(field)
    for fragment in fragments:
        assert fragment in payload["message"], payload["message"]
    assert client.get("/api/runs").json()["count"] == 0


@pytest.mark.parametrize(("spec", "field", "fragments"), INVALID_COMBINATIONS.values(), ids=INVALID_COMBINATIONS.keys())
def test_sweep_base_rejection_names_field(client, spec, field, fragments):
    body = {"name": "invalid", "base": spec, "grid": {"seed": [0, 1]}}

    response = client.post("/api/sweeps", json=body)

    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["detail"][0]["field"].startswith(f"base.{field}".rstrip("."))
    for fragment in fragments:
        assert fragment in payload["message"], payload["message"]
    assert client.get("/api/sweeps").json()["count"] == 0


def test_grid_value_rejection_names_run(client):
    body = {
        "name": "kernels",
        "base": {"model": {"depth": 8, "gate": {"kind": "two_way"}}},
        "grid": {"model.gate.two_way_kernel": [1, 3, 5]},
    }

    response = client.post("/api/sweeps", json=body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"][0]["field"] == "grid.model.gate.two_way_kernel"
    assert "1 or 3" in payload["message"]
    assert "received 5" in payload["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_grid_lambda_without_gate_rejected(client):
    body = {"name": "ungated", "base": {"model": {"depth": 8}}, "grid": {"lambda": [0.0, 0.1]}}

    response = client.post("/api/sweeps", json=body)

    assert response.status_code == 422
    assert "gate_loss_weight must be 0 for gate kind 'none'" in response.json()["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_preset_override_rejection_names_field(client):
    body = {"overrides": {"model.depth": 111}}

    response = client.post("/api/presets/cifar10-preresnet164-baseline/launch", json=body)

    assert response.status_code == 422
    payload = response.json()
    assert payload["detail"][0]["field"] == "overrides.model.depth"
    assert "9n+2" in payload["message"]
    assert "received 111" in payload["message"]


def test_lambda_rejection_field_is_gate_loss_weight(client):
    response = client.post("/api/runs", json={"model": {"gate": {"kind": "none"}}, "gate_loss_weight": 0.1})

    assert response.json()["detail"][0]["field"] == "gate_loss_weight"


def test_stage_rejection_field_is_stage(client):
    response = client.post("/api/runs", json={"model": {"gate": {"kind": "model1", "stage": 4}}})

    assert response.json()["detail"][0]["field"] == "model.gate.stage"
