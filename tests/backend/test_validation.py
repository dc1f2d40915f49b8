"""Bad requests get a 422 that names the field, the allowed values and the value received."""

from __future__ import annotations

import pytest

BASE = {"model": {"depth": 8, "gate": {"kind": "model1"}}, "train": {"epochs": 1}}


def sweep_with(**overrides):
    body = {"name": "v", "base": BASE, "grid": {"lambda": [0.1]}}
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("body", "field", "fragments"),
    [
        (
            sweep_with(base={"model": {"gate": {"kind": "magic"}}}),
            "base.model.gate.kind",
            ["'exclusive'", "'model3'", "magic"],
        ),
        (sweep_with(base={"model": {"depth": 21}}), "base.model", ["6n+2", "21"]),
        (sweep_with(grid={"lambda": [-1.0]}), "grid.lambda", ["greater than or equal to 0", "-1"]),
        (sweep_with(grid={"seed": [0]}, base={**BASE, "train": {"epochs": 0}}), "base.train.epochs", ["greater than or equal to 1", "0"]),
        (sweep_with(grid={}), "grid", ["at least one field", "gate_loss_weight", "model.depth"]),
        (sweep_with(grid={"lambda": []}), "grid.lambda", ["at least one value"]),
        (sweep_with(grid={"colour": [1]}), "grid.colour", ["gate_loss_weight", "model.depth", "'colour'"]),
    ],
    ids=["unknown-gate", "depth-not-6n2", "negative-lambda", "zero-epochs", "empty-grid", "empty-axis", "unknown-grid-field"],
)
def test_sweep_rejection_names_field(client, body, field, fragments):
    response = client.post("/api/sweeps", json=body)

    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["detail"][0]["field"].startswith(field)
    for fragment in fragments:
        assert fragment in payload["message"], payload["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_grid_error_uses_the_key_as_written(client):
    response = client.post("/api/sweeps", json=sweep_with(grid={"lambda": [0.1, -1.0]}))

    [entry] = response.json()["detail"]
    assert entry["field"] == "grid.lambda"
    assert response.json()["message"].count("gate_loss_weight") == 0
    assert "lambda=-1.0" in response.json()["message"]


def test_malformed_json_names_the_position(client):
    response = client.post("/api/runs", content='{"model": {"depth": 20,}}', headers={"content-type": "application/json"})

    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert entry["field"] == "body"
    assert "not valid JSON" in entry["msg"]
    assert "at offset 23" in entry["msg"]


def test_missing_field_does_not_echo_the_body(client):
    response = client.post("/api/sweeps", json={"name": "no grid", "base": BASE})

    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert entry["field"] == "grid"
    assert "input" not in entry
    assert "received" not in response.json()["message"]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_lambda_rejected(client, value):
    body = '{"model": {"gate": {"kind": "model1"}}, "gate_loss_weight": %s}' % value

    response = client.post("/api/runs", content=body, headers={"content-type": "application/json"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "gate_loss_weight"
    assert "finite" in response.json()["message"]


def test_run_rejection_lists_allowed_architectures(client):
    response = client.post("/api/runs", json={"model": {"arch": "vgg"}})

    assert response.status_code == 422
    message = response.json()["message"]
    assert "model.arch" in message
    assert "'preact_resnet'" in message
    assert "vgg" in message


def test_unknown_spec_key_rejected(client):
    response = client.post("/api/runs", json={"modle": {"depth": 20}})

    assert response.status_code == 422
    assert "modle" in response.json()["message"]


def test_oversized_request_rejected(client, settings):
    padding = "x" * (settings.max_request_bytes + 10)

    response = client.post("/api/runs", json={"name": padding})

    assert response.status_code == 413
    assert str(settings.max_request_bytes) in response.json()["detail"]
