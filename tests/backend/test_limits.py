"""Bad input: every spec field has limits in OpenAPI, and every rejection names the field and the values.

Caps on sweep size and request size hold, and no path built from a request
leaves the data or artifact directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.schemas import MAX_GRID_VALUES

# ---------------------------------------------------------------- schema walk


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def missing_limits(schema: dict[str, Any], components: dict[str, Any], path: str) -> list[str]:
    """Return one line for every leaf of `schema` that OpenAPI shows without limits."""
    schema = resolve(schema, components)
    problems: list[str] = []
    for keyword in ("anyOf", "oneOf", "allOf"):
        for index, option in enumerate(schema.get(keyword, [])):
            problems += missing_limits(option, components, path)
    if "enum" in schema or "const" in schema:
        return problems
    kind = schema.get("type")
    if kind == "object":
        for name, child in schema.get("properties", {}).items():
            problems += missing_limits(child, components, f"{path}.{name}" if path else name)
        if schema.get("additionalProperties") not in (None, False):
            problems.append(f"{path}: an object with free-form keys")
    elif kind == "array":
        if "maxItems" not in schema:
            problems.append(f"{path}: array without maxItems")
        for index, item in enumerate(schema.get("prefixItems", [])):
            problems += missing_limits(item, components, f"{path}[{index}]")
        if isinstance(schema.get("items"), dict):
            problems += missing_limits(schema["items"], components, f"{path}[]")
    elif kind in ("integer", "number"):
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            problems.append(f"{path}: {kind} without a minimum")
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            problems.append(f"{path}: {kind} without a maximum")
    elif kind == "string":
        if "maxLength" not in schema:
            problems.append(f"{path}: string without maxLength")
    return problems


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite is enough here, except where a test requests PostgreSQL itself."""
    return f"sqlite:///{tmp_path / 'gatelab.db'}"


def test_run_spec_fields_show_limits(client):  # type: ignore[no-untyped-def]
    document = client.get("/openapi.json").json()
    components = document["components"]["schemas"]

    problems = missing_limits(components["RunSpec"], components, "")

    assert problems == []


# ---------------------------------------------------------------- rejections

# Each bad spec, the field the 422 must name, and words the message must contain:
# the allowed values and the value received.
BAD_SPECS = [
    ({"train": {"epochs": 0}}, "train.epochs", ["greater than or equal to 1", "0"]),
    ({"train": {"lr": 11}}, "train.lr", ["less than or equal to 10", "11"]),
    ({"model": {"depth": 9}}, "model.depth", ["6n+2", "9"]),
    ({"model": {"gate": {"kind": "bogus"}}}, "model.gate.kind", ["'model1'", "bogus"]),
    ({"gate_loss_weight": 1e7, "model": {"gate": {"kind": "model1"}}}, "gate_loss_weight", ["1000000", "10000000"]),
    ({"init": {"source": "run", "id": 2**31}}, "init.id", ["2147483647", "2147483648"]),
    ({"data": {"normalization": {"mean": [0.5, 0.5, 2.0], "std": [0.2, 0.2, 0.2]}}}, "data.normalization", ["1", "2"]),
    ({"data": {"test_dataset": "npz:../outside.npz"}}, "data.test_dataset", ["inside", "npz:../outside.npz"]),
    ({"data": {"test_dataset": "npz:/etc/outside.npz"}}, "data.test_dataset", ["relative", "/etc/outside.npz"]),
    ({"name": "x" * 201}, "name", ["200 characters", "xxx"]),
    ({"train": {"bogus": 1}}, "train.bogus", ["not permitted", "1"]),
]


@pytest.mark.parametrize(("spec", "field", "words"), BAD_SPECS, ids=[field for _, field, _ in BAD_SPECS])
def test_bad_spec_names_field_and_values(client, spec, field, words):  # type: ignore[no-untyped-def]
    response = client.post("/api/runs", json=spec)

    assert response.status_code == 422
    body = response.json()
    fields = [entry["field"] for entry in body["detail"]]
    assert any(name.startswith(field) for name in fields), fields
    for word in words:
        assert word in body["message"], body["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_sweep_over_run_cap_creates_nothing(client):  # type: ignore[no-untyped-def]
    cap = client.app.state.settings.max_runs_per_sweep
    lambdas = [0.001 * step for step in range(10)]
    grid = {"seed": list(range(cap // len(lambdas) + 1)), "lambda": lambdas}
    base = {"model": {"gate": {"kind": "model1"}}}

    response = client.post("/api/sweeps", json={"name": "too big", "base": base, "grid": grid})

    assert response.status_code == 422
    message = response.json()["message"]
    assert "grid" in message
    assert f"at most {cap}" in message
    assert str(len(grid["seed"]) * len(lambdas)) in message
    assert client.get("/api/sweeps").json()["count"] == 0
    assert client.get("/api/runs").json()["count"] == 0


def test_grid_with_too_many_values_names_the_key(client):  # type: ignore[no-untyped-def]
    grid = {"seed": list(range(MAX_GRID_VALUES + 1))}

    response = client.post("/api/sweeps", json={"name": "long", "base": {}, "grid": grid})

    assert response.status_code == 422
    assert "grid.seed" in response.json()["message"]
    assert f"at most {MAX_GRID_VALUES}" in response.json()["message"]
    assert client.get("/api/runs").json()["count"] == 0


def test_sweep_with_one_bad_run_creates_nothing(client):  # type: ignore[no-untyped-def]
    response = client.post("/api/sweeps", json={"name": "bad depth", "grid": {"model.depth": [8, 14, 15]}})

    assert response.status_code == 422
    [entry] = response.json()["detail"]
    assert entry["field"] == "grid.model.depth"
    assert entry["input"] == 15
    assert "6n+2" in entry["msg"]
    assert client.get("/api/sweeps").json()["count"] == 0
    assert client.get("/api/runs").json()["count"] == 0


def test_body_over_size_limit_gets_413(client):  # type: ignore[no-untyped-def]
    limit = client.app.state.settings.max_request_bytes
    oversized = b'{"name": "' + b"x" * limit + b'"}'

    declared = client.post("/api/runs", content=oversized, headers={"content-type": "application/json"})
    streamed = client.post(
        "/api/runs", content=iter([oversized[:1000], oversized[1000:]]), headers={"content-type": "application/json"}
    )

    for response in (declared, streamed):
        assert response.status_code == 413
        assert f"the limit is {limit} bytes" in response.json()["detail"]
    assert client.get("/api/runs").json()["count"] == 0


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("huge", [2**31, 2**70])
def test_id_beyond_database_range_gets_422(client, huge):  # type: ignore[no-untyped-def]
    paths = [
        ("GET", f"/api/runs/{huge}"),
        ("POST", f"/api/runs/{huge}/cancel"),
        ("GET", f"/api/runs/{huge}/samples"),
        ("GET", f"/api/sweeps/{huge}"),
        ("GET", f"/api/runs?sweep_id={huge}"),
    ]
    for method, path in paths:
        response = client.request(method, path)
        assert response.status_code == 422, f"{method} {path}: {response.status_code} {response.text}"
        [entry] = response.json()["detail"]
        assert entry["input"] == str(huge)
        assert "2147483647" in entry["msg"]


# ---------------------------------------------------------------- paths


@pytest.fixture
def outside_file(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "secret.npz"
    path.parent.mkdir()
    np.savez(path, x=np.zeros((1, 32, 32, 3), dtype=np.uint8), y=np.zeros(1, dtype=np.uint8))
    return path


@pytest.fixture
def own_data_client(settings, tmp_path: Path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A client whose data directory is a fresh folder of this test, never the shared data."""
    from fastapi.testclient import TestClient

    from backend.main import create_app

    own = settings.model_copy(update={"data_dir": tmp_path / "data"})
    own.resolved_data_dir.mkdir()
    with TestClient(create_app(own, run_reaper=False)) as test_client:
        yield test_client


def test_image_route_rejects_paths_outside_data(own_data_client, outside_file):  # type: ignore[no-untyped-def]
    data_dir = own_data_client.app.state.settings.resolved_data_dir
    (data_dir / "link.npz").symlink_to(outside_file)

    response = own_data_client.get("/api/datasets/npz:link.npz/images/test/0.png")
    assert response.status_code == 404
    assert "must stay inside the data directory" in response.json()["detail"]
    assert "link.npz" in response.json()["detail"]

    # A path with a slash never reaches the route, because the name is one path segment.
    for name in ("npz:..%2Foutside%2Fsecret.npz", "npz:" + str(outside_file).replace("/", "%2F")):
        response = own_data_client.get(f"/api/datasets/{name}/images/test/0.png")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"


def test_artifact_file_stays_in_artifact_dir(settings, outside_file):  # type: ignore[no-untyped-def]
    from worker.runner import artifact_file, checkpoint_path

    root = settings.resolved_artifact_dir
    (root / "baselines").mkdir(parents=True)
    inside = root / "baselines" / "1.pt"
    (root / "baselines" / "escape.pt").symlink_to(outside_file)

    assert artifact_file(settings, inside) == inside.resolve()
    assert checkpoint_path(settings, 7).is_relative_to(root)
    for path in (outside_file, root / ".." / "outside" / "secret.npz", root / "baselines" / "escape.pt"):
        with pytest.raises(ValueError, match="inside the artifact directory"):
            artifact_file(settings, path)
