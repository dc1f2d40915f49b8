"""Bearer token: with GATELAB_API_TOKEN set, every write needs it, and reads need it unless public_reads is true."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

TOKEN = "correct-horse-battery-staple"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Liveness stays open for load balancers and container health checks.
OPEN_ROUTES = {"/api/health"}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Access checks do not depend on the database, so SQLite is enough."""
    return f"sqlite:///{tmp_path / 'gatelab.db'}"


@pytest.fixture
def make_client(settings) -> Iterator[Callable[..., TestClient]]:  # type: ignore[no-untyped-def]
    """Return a factory of API clients whose settings take the given overrides."""
    from backend.main import create_app

    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update=overrides), run_reaper=False))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def api_routes(client: TestClient, methods: set[str]) -> list[tuple[str, str]]:
    """Return (method, path) of every API operation in OpenAPI with one of `methods`, path parameters set to 1."""
    routes = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if not path.startswith("/api/") or path in OPEN_ROUTES:
            continue
        filled = re.sub(r"\{[^}]+\}", "1", path)
        routes += [(method.upper(), filled) for method in sorted(operations) if method.upper() in methods]
    return routes


def header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_writes_need_token(make_client):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    client = make_client(api_token=SecretStr(TOKEN))
    routes = api_routes(client, WRITE_METHODS)
    assert ("POST", "/api/runs") in routes
    assert ("POST", "/api/sweeps/1/cancel") in routes

    accepted = {}
    for method, path in routes:
        missing = client.request(method, path, json={})
        assert missing.status_code == 401, f"{method} {path} without a token: {missing.status_code}"
        assert "Authorization: Bearer" in missing.json()["detail"]
        assert missing.headers["www-authenticate"] == "Bearer"

        wrong = client.request(method, path, json={}, headers=header("wrong"))
        assert wrong.status_code == 401, f"{method} {path} with a wrong token: {wrong.status_code}"
        assert wrong.json()["detail"] == "invalid token"

        right = client.request(method, path, json={}, headers=header(TOKEN))
        assert right.status_code not in (401, 403), f"{method} {path} with the token: {right.status_code}"
        accepted[(method, path)] = right.status_code
    assert accepted[("POST", "/api/runs")] == 201


def test_reads_open_when_public(make_client):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    client = make_client(api_token=SecretStr(TOKEN), public_reads=True)

    for method, path in api_routes(client, {"GET"}):
        response = client.request(method, path)
        assert response.status_code != 401, f"{method} {path}: {response.status_code}"


def test_reads_need_token_when_private(make_client):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    client = make_client(api_token=SecretStr(TOKEN), public_reads=False)
    routes = api_routes(client, {"GET"})
    assert ("GET", "/api/runs") in routes

    for method, path in routes:
        missing = client.request(method, path)
        assert missing.status_code == 401, f"{method} {path} without a token: {missing.status_code}"
        allowed = client.request(method, path, headers=header(TOKEN))
        assert allowed.status_code != 401, f"{method} {path} with the token: {allowed.status_code}"
    assert client.get("/api/health").status_code == 200


def test_no_token_configured_allows_writes(make_client):  # type: ignore[no-untyped-def]
    client = make_client(api_token=None)

    response = client.post("/api/runs", json={"name": "open"})

    assert response.status_code == 201


def test_dashboard_client_sends_token(settings_env, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    from dashboard import api as dashboard_api
    from gatelab.client import GateLabClient, GateLabError
    from gatelab.settings import get_settings
    from tests.support.services import service_environment, start_api

    environment = service_environment({**settings_env, "GATELAB_API_TOKEN": TOKEN, "GATELAB_PUBLIC_READS": "false"})
    api, url = start_api(environment, tmp_path / "api.log")
    try:
        monkeypatch.setenv("GATELAB_API_URL", url)
        monkeypatch.setenv("GATELAB_API_TOKEN", TOKEN)
        get_settings.cache_clear()
        dashboard_api.get_client.clear()

        dashboard_client = dashboard_api.get_client()
        created = dashboard_client.submit_run({"name": "from the dashboard"})
        listed = dashboard_client.list_runs()

        assert listed["count"] == 1
        assert listed["data"][0]["id"] == created["id"]
        with pytest.raises(GateLabError) as rejected:
            GateLabClient(url).list_runs()
        assert rejected.value.status_code == 401
    finally:
        get_settings.cache_clear()
        dashboard_api.get_client.clear()
        api.stop()
