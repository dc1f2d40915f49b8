"""CI entry: with CI=true (as .ci/run sets it), an unreachable PostgreSQL or Redis fails the tests instead of skipping them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy

from tests.support.services import REPO_ROOT, free_port

SERVICE_CHECK = "tests/test_ci_entry.py::test_shared_services_answer"


def test_shared_services_answer(postgres_url: str, broker_url: str):
    """Check both shared services; the tests below run this test in a subprocess with unreachable ones."""
    import redis

    engine = sqlalchemy.create_engine(postgres_url)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar_one() == 1
    engine.dispose()
    assert redis.Redis.from_url(broker_url, socket_connect_timeout=2).ping()


def run_service_check(overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GATELAB_TEST_")}
    environment.update(overrides)
    command = [sys.executable, "-m", "pytest", SERVICE_CHECK, "-q", "-rA", "-p", "no:cacheprovider"]
    return subprocess.run(command, env=environment, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def unreachable_urls() -> dict[str, tuple[str, str]]:
    """Return, per service, the test variable and a URL on a local port where nothing listens."""
    port = free_port()
    return {
        "PostgreSQL": ("GATELAB_TEST_POSTGRES_URL", f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"),
        "Redis": ("GATELAB_TEST_REDIS_URL", f"redis://127.0.0.1:{port}/0"),
    }


def test_ci_entry_sets_ci():
    script = (REPO_ROOT / ".ci" / "run").read_text()

    assert "export CI=true" in script
    assert "make test" in script


@pytest.mark.parametrize("service", ["PostgreSQL", "Redis"])
def test_ci_fails_on_unreachable_service(service: str):
    variable, url = unreachable_urls()[service]

    result = run_service_check({"CI": "true", variable: url})

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"{service} at" in output
    assert "is unreachable" in output
    assert "CI=true, so this is a failure, not a skip" in output
    assert "skipped" not in output.splitlines()[-1]


def test_unreachable_service_skips_outside_ci():
    variable, url = unreachable_urls()["Redis"]

    result = run_service_check({"CI": "", variable: url})

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 skipped" in output.splitlines()[-1]
    assert "is unreachable" in output
