"""docker-compose.yml: docker-compose accepts it, and it declares the services, health checks, volumes and secrets.

No Docker engine runs here: `docker-compose config` parses, validates and
interpolates the file, which is as far as a check can go without one.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from gatelab.settings import Settings
from tests.support.services import REPO_ROOT, skip_or_fail

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
REQUIRED = {
    "POSTGRES_PASSWORD": "database-secret",
    "REDIS_PASSWORD": "broker-secret",
    "GATELAB_API_TOKEN": "api-secret",
    "FLOWER_BASIC_AUTH": "admin:flower-secret",
    "GATELAB_DATA_PATH": "/srv/gatelab-data",
}
GATELAB_SERVICES = ("api", "dashboard", "worker-gpu0", "flower")


@pytest.fixture(scope="module")
def compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        skip_or_fail("docker-compose is not installed; Debian's docker-compose package provides it")
    return str(found)


def compose_config(compose: str, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only the variables given, so that the caller's environment cannot fill a secret.
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **variables}
    return subprocess.run(
        [compose, "--file", str(COMPOSE_FILE), "config"],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config(compose: str) -> dict:
    result = compose_config(compose, REQUIRED)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_declares_services(config: dict):
    services = config["services"]

    assert set(services) == {"postgres", "redis", *GATELAB_SERVICES}
    for name, service in services.items():
        assert "test" in service["healthcheck"], f"{name} has no health check"
        assert service["restart"] == "unless-stopped", name
    for name in ("api", "dashboard", "worker-gpu0"):
        assert any(condition["condition"] == "service_healthy" for condition in services[name]["depends_on"].values())


def test_api_waits_for_database_and_broker(config: dict):
    api = config["services"]["api"]

    assert api["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    # The API applies the migrations in its start-up hook, before it serves.
    assert "backend.main:create_app" in api["command"]
    assert api["environment"]["GATELAB_DATABASE_URL"] == (
        "postgresql+psycopg://gatelab:database-secret@postgres:5432/gatelab"
    )


def test_worker_reserves_one_gpu(config: dict):
    worker = config["services"]["worker-gpu0"]

    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["device_ids"] == ["0"]
    assert worker["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert worker["environment"]["GATELAB_DEVICE"] == "cuda"
    assert "--pool=prefork" in worker["command"]
    assert "--concurrency=1" in worker["command"]
    assert "--hostname=gpu0@%h" in worker["command"]


def test_state_lives_in_named_volumes(config: dict):
    services = config["services"]

    assert {"postgres-data", "artifacts", "redis-data"} <= set(config["volumes"])
    assert "postgres-data:/var/lib/postgresql/data:rw" in services["postgres"]["volumes"]
    for name in GATELAB_SERVICES:
        assert "artifacts:/var/lib/gatelab/artifacts:rw" in services[name]["volumes"], name
        assert "/srv/gatelab-data:/data:ro" in services[name]["volumes"], name


def test_gatelab_variables_are_settings(config: dict):
    for name in GATELAB_SERVICES:
        for variable in config["services"][name]["environment"]:
            if variable.startswith("GATELAB_"):
                field = variable.removeprefix("GATELAB_").lower()
                assert field in Settings.model_fields, f"{name}: {variable} is not a GateLab setting"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_requires_each_secret(compose: str, missing: str):
    variables = {name: value for name, value in REQUIRED.items() if name != missing}

    result = compose_config(compose, variables)

    assert result.returncode != 0
    assert f"set {missing}" in result.stderr


def test_image_records_the_commit_it_was_built_from(compose: str, config: dict):
    with_commit = compose_config(compose, {**REQUIRED, "GATELAB_CODE_VERSION": "0123abcd"})
    assert with_commit.returncode == 0, with_commit.stderr
    built = yaml.safe_load(with_commit.stdout)

    for name in GATELAB_SERVICES:
        assert config["services"][name]["build"]["args"]["GATELAB_CODE_VERSION"] == "unknown"
        assert built["services"][name]["build"]["args"]["GATELAB_CODE_VERSION"] == "0123abcd"
    assert "ENV GATELAB_CODE_VERSION=${GATELAB_CODE_VERSION}" in (REPO_ROOT / "Dockerfile").read_text()
