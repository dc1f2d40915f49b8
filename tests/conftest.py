"""Fixtures shared by every test: data, databases, queues, settings and an API client.

Databases and queues are real: SQLite files in a temporary folder, fresh
PostgreSQL databases on 127.0.0.1:5432 and Redis queues with unique names on
127.0.0.1:6379. Where PostgreSQL, Redis or the data directory is missing, the
tests that need it skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import (
    REDIS_URL,
    REPO_ROOT,
    delete_queue,
    postgres_database,
    redis_available,
    skip_or_fail,
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data directory from GATELAB_DATA_DIR, with CIFAR-10 class folders in it."""
    value = os.environ.get("GATELAB_DATA_DIR")
    if not value:
        skip_or_fail("GATELAB_DATA_DIR is not set; point it at a folder with cifar10/{train,test}/<class>/*.jpg")
    path = Path(value)
    if not (path / "cifar10" / "test").is_dir():
        skip_or_fail(f"GATELAB_DATA_DIR={path} has no cifar10/test folder")
    return path


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """A decoded-image cache kept between test sessions, so CIFAR-10 is decoded once per checkout."""
    path = Path(os.environ.get("GATELAB_TEST_CACHE_DIR", REPO_ROOT / "var" / "test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database shared by the tests of one session."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gatelab.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test that takes this runs twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gatelab.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def broker_url() -> str:
    if not redis_available(REDIS_URL):
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable")
    return REDIS_URL


@pytest.fixture
def queue_name(broker_url: str) -> Iterator[str]:
    """A queue name used by this test alone, deleted afterwards."""
    name = f"gatelab-test-{uuid.uuid4().hex[:10]}"
    yield name
    delete_queue(broker_url, name)


@pytest.fixture
def settings_env(
    tmp_path: Path, database_url: str, broker_url: str, queue_name: str, cache_dir: Path
) -> dict[str, str]:
    """GATELAB_* variables for subprocesses and the in-process settings of one test."""
    environment = {
        "GATELAB_HOME": str(tmp_path / "home"),
        "GATELAB_DATABASE_URL": database_url,
        "GATELAB_BROKER_URL": broker_url,
        "GATELAB_QUEUE": queue_name,
        "GATELAB_CACHE_DIR": str(cache_dir),
        "GATELAB_ALLOW_DOWNLOAD": "false",
    }
    if os.environ.get("GATELAB_DATA_DIR"):
        environment["GATELAB_DATA_DIR"] = os.environ["GATELAB_DATA_DIR"]
    return environment


@pytest.fixture
def settings(settings_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from gatelab.settings import Settings

    values = {key.removeprefix("GATELAB_").lower(): value for key, value in settings_env.items()}
    return Settings(**values)


@pytest.fixture
def client(settings):  # type: ignore[no-untyped-def]
    """A TestClient on a real database and broker; the reaper does not run in the background."""
    from fastapi.testclient import TestClient

    from backend.main import create_app

    with TestClient(create_app(settings, run_reaper=False)) as test_client:
        yield test_client


# A whole running stack with finished runs, shared by the dashboard and browser tests.

STACK_SWEEP = {
    "name": "stack fixture",
    "base": {
        "model": {"depth": 8, "gate": {"kind": "model1", "hidden_units": 32}},
        "data": {"train_subset": 256, "test_subset": 200},
        "train": {"epochs": 2, "batch_size": 64},
    },
    "grid": {"lambda": [0.001, 0.1]},
}


@pytest.fixture(scope="session")
def running_stack(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
    """A real API and worker on PostgreSQL and Redis, with a finished two-run sweep.

    Yields a dict with the API url, the sweep and its runs.
    """
    import httpx

    from tests.support.services import service_environment, start_api, start_worker, wait_until

    if not redis_available(REDIS_URL):
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable")
    folder = tmp_path_factory.mktemp("stack")
    queue = f"gatelab-test-{uuid.uuid4().hex[:10]}"
    with postgres_database() as database_url:
        environment = service_environment(
            {
                "GATELAB_HOME": str(folder / "home"),
                "GATELAB_DATABASE_URL": database_url,
                "GATELAB_BROKER_URL": REDIS_URL,
                "GATELAB_QUEUE": queue,
                "GATELAB_CACHE_DIR": str(cache_dir),
                "GATELAB_DATA_DIR": str(data_dir),
                "GATELAB_ALLOW_DOWNLOAD": "false",
            }
        )
        api, url = start_api(environment, folder / "api.log")
        worker = start_worker(environment, folder / "worker.log", "stack")
        try:
            sweep = httpx.post(f"{url}/api/sweeps", json=STACK_SWEEP, timeout=10).json()

            def finished() -> bool:
                runs = httpx.get(f"{url}/api/runs", params={"sweep_id": sweep["id"]}, timeout=10).json()["data"]
                return all(run["status"] in ("succeeded", "failed") for run in runs)

            wait_until(finished, timeout=600, interval=2, what="the stack fixture's sweep")
            runs = httpx.get(f"{url}/api/runs", params={"sweep_id": sweep["id"]}, timeout=10).json()["data"]
            yield {"api_url": url, "sweep": sweep, "runs": runs, "environment": environment, "folder": folder}
        finally:
            worker.stop()
            api.stop()
            delete_queue(REDIS_URL, queue)


@pytest.fixture(scope="session")
def published_baselines(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
    """A real API and worker on PostgreSQL with the published CIFAR ResNets imported once through the CLI.

    Yields a PublishedStack (tests/support/baselines.py): the API url, the settings and
    each checkpoint's import as the CLI printed it.
    """
    from tests.support.baselines import published_stack

    with published_stack(tmp_path_factory.mktemp("baselines"), data_dir, cache_dir) as stack:
        yield stack
