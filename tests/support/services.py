"""Real services for tests: databases on the machine's PostgreSQL, Redis queues, API and worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str) -> None:
    """Skip the test, except in CI, where a missing service or data set is a failure."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def postgres_database(admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """Create an empty database for one test session and drop it afterwards."""
    import sqlalchemy

    name = f"gatelab_test_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as error:
        engine.dispose()
        skip_or_fail(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {error.orig}")
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        from backend.db.session import get_engine

        get_engine.cache_clear()
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def redis_available(url: str = REDIS_URL) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def delete_queue(url: str, queue: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    client.delete(queue)


def service_environment(settings_env: dict[str, str]) -> dict[str, str]:
    """Return the environment for a subprocess: this one, the repository on the path and the test settings."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GATELAB_")}
    environment.update(settings_env)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


class ServiceProcess:
    """A child process with its own process group and a log file."""

    def __init__(self, command: list[str], environment: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.process = subprocess.Popen(
            command,
            env=environment,
            cwd=REPO_ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def kill_hard(self) -> None:
        """Send SIGKILL to the whole process group, as a crash or an out-of-memory kill would."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log_file.close()


def start_api(environment: dict[str, str], log_path: Path) -> tuple[ServiceProcess, str]:
    port = free_port()
    process = ServiceProcess(
        [sys.executable, "-m", "uvicorn", "--factory", "backend.main:create_app", "--host", "127.0.0.1", "--port", str(port)],
        environment,
        log_path,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not process.alive():
            raise RuntimeError(f"the API process exited early:\n{process.log()}")
        try:
            return httpx.get(f"{url}/api/health", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=60, what=f"the API at {url}")
    return process, url


def start_worker(environment: dict[str, str], log_path: Path, name: str, concurrency: int = 1) -> ServiceProcess:
    queue = environment.get("GATELAB_QUEUE", "gatelab")
    process = ServiceProcess(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery_app:celery_app",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "-Q",
            queue,
            f"--hostname={name}@%h",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ],
        environment,
        log_path,
    )
    wait_until(lambda: "ready." in process.log() or not process.alive(), timeout=60, what=f"worker {name}")
    if not process.alive():
        raise RuntimeError(f"worker {name} exited early:\n{process.log()}")
    return process
