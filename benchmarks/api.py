"""API latency: POST /api/runs and GET /api/runs under concurrent clients, with 10,000 runs stored.

The API runs as a uvicorn subprocess on 127.0.0.1 against a fresh PostgreSQL
database and a real Redis broker, on a queue of its own that is deleted at
the end. The load generator (`benchmarks.load`) runs in this process.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import insert, text

from backend.db.migrate import upgrade_database
from backend.db.models import Run, RunStatus, utc_now
from backend.db.session import get_engine, session_factory
from benchmarks.config import BenchConfig
from benchmarks.load import LoadResult, generate_load
from benchmarks.report import Figure, Report, format_load, load_average
from benchmarks.storage import postgres_database
from gating_core.spec import RunSpec

P99_TARGET_MS = 50.0
REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_SECONDS = 90.0
# The run that every POST submits: a short model1 run, a typical sweep member.
POSTED_SPEC = {
    "name": "benchmark",
    "model": {"depth": 20, "gate": {"kind": "model1"}},
    "train": {"epochs": 10},
    "gate_loss_weight": 0.01,
}


def seed_runs(url: str, count: int) -> None:
    """Store `count` finished runs with full specs and environments, as a busy lab would have."""
    upgrade_database(url)
    spec = RunSpec.model_validate(POSTED_SPEC).model_dump(mode="json")
    environment = {"torch": "2.x", "device": "cuda:0", "device_name": "a GPU", "code_version": "0" * 40}
    finished = utc_now()
    rows = [
        {
            "name": f"seeded run {position}",
            "spec": spec,
            "gate_kind": "model1",
            "gate_loss_weight": 0.01,
            "seed": position % 5,
            "status": RunStatus.SUCCEEDED.value,
            "progress": 1.0,
            "epoch": 10,
            "total_epochs": 10,
            "attempts": 1,
            "cancel_requested": False,
            "task_id": str(uuid.uuid4()),
            "worker": "worker0",
            "test_accuracy": 0.9,
            "train_loss": 0.2,
            "mean_gate": 0.5,
            "skip_rate": 0.4,
            "precision": "bf16",
            "environment": environment,
            "created_at": finished - timedelta(hours=1),
            "started_at": finished - timedelta(minutes=50),
            "heartbeat_at": finished,
            "finished_at": finished,
        }
        for position in range(count)
    ]
    with session_factory(url)() as session:
        session.execute(insert(Run), rows)
        session.commit()
    # Autovacuum would have processed a table this old; VACUUM sets the visibility
    # map now, so that counting runs can use an index-only scan as it would in service.
    with get_engine(url).connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE runs"))


@contextmanager
def api_server(environment: dict[str, str], workers: int, log_path: Path) -> Iterator[tuple[str, int]]:
    """Start uvicorn with `workers` processes on a free port, yield its base URL and process id, then stop it."""
    port = _free_port()
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "backend.main:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, env=environment, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, log_path)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(process: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with status {process.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the API at {url} was not healthy after {STARTUP_TIMEOUT_SECONDS:.0f} s; log: {log_path}")


def delete_queue(redis_url: str, queue: str) -> None:
    """Delete the queue's list and any kombu keys that name it."""
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
    keys = [queue, *client.scan_iter(match=f"*{queue}*")]
    client.delete(*keys)


def benchmark_api(config: BenchConfig, report: Report) -> None:
    """Measure GET and then POST /api/runs latency under `api_clients` concurrent clients."""
    queue = f"gatelab-bench-{uuid.uuid4().hex[:10]}"
    broker = redis.Redis.from_url(config.redis_url, socket_connect_timeout=5)
    broker.ping()
    requests = {"GET /api/runs": ("GET", None, 200), "POST /api/runs": ("POST", POSTED_SPEC, 201)}
    results: dict[str, LoadResult] = {}
    with postgres_database(config.postgres_admin_url) as url, tempfile.TemporaryDirectory(prefix="gatelab-bench-") as home:
        seed_runs(url, config.api_runs)
        environment = _server_environment(url, config.redis_url, queue, Path(home))
        try:
            with api_server(environment, config.api_workers, Path(home) / "api.log") as (base_url, pid):
                for name, (method, body, expected) in requests.items():
                    results[name] = _measure(base_url, pid, method, body, expected, config)
            queued = int(broker.llen(queue))
        finally:
            delete_queue(config.redis_url, queue)

    for name, result in results.items():
        report.figures.append(_latency_figure(name, result))
    post = results["POST /api/runs"]
    posted = post.succeeded + post.warmup_succeeded
    report.figures.append(
        Figure("d", "Runs POSTed and found in the Redis queue", f"{queued:,} of {posted:,}", "all", queued == posted,
               load_average())
    )
    report.add_details("d. API latency", _api_details(config, results))


def _measure(base_url: str, server_pid: int, method: str, body: object | None, expected_status: int,
             config: BenchConfig) -> LoadResult:
    """Generate load on /api/runs and record the CPU time that the server and this process spent on it."""
    server_before = process_tree_cpu_seconds(server_pid)
    client_before = _own_cpu_seconds()
    load = generate_load(base_url, method, "/api/runs", body, expected_status, config.api_clients, config.api_seconds)
    result = run_in_own_loop(load)
    result.server_cpu_seconds = process_tree_cpu_seconds(server_pid) - server_before
    result.client_cpu_seconds = _own_cpu_seconds() - client_before
    return result


def run_in_own_loop(coroutine: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    """Run a coroutine to completion on a new event loop in a thread of its own.

    `asyncio.run` raises RuntimeError in a thread that already runs a loop,
    as the calling thread does when another tool drives the benchmarks.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-generator") as executor:
        return executor.submit(asyncio.run, coroutine).result()


def process_tree_cpu_seconds(pid: int) -> float:
    """Return the user and system CPU seconds of a process and its live descendants, from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        # After the command name, utime and stime are the 12th and 13th fields, in clock ticks.
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        pending.extend(int(child) for child in children)
    return total


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_environment(database_url: str, redis_url: str, queue: str, home: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("GATELAB_")}
    environment.update(
        {
            "GATELAB_HOME": str(home),
            "GATELAB_DATABASE_URL": database_url,
            "GATELAB_BROKER_URL": redis_url,
            "GATELAB_QUEUE": queue,
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    return environment


def _latency_figure(name: str, result: LoadResult) -> Figure:
    p50, p99 = result.percentile(50), result.percentile(99)
    value = f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({result.rate:.0f} requests/s)"
    met = p99 <= P99_TARGET_MS and result.failed == 0
    return Figure("d", f"{name} latency", value, f"p99 ≤ {P99_TARGET_MS:g} ms", met, result.load)


def _api_details(config: BenchConfig, results: dict[str, LoadResult]) -> list[str]:
    lines = [
        f"uvicorn with {config.api_workers} worker process{'es' if config.api_workers != 1 else ''} on 127.0.0.1, access log off, PostgreSQL database with "
        f"{config.api_runs:,} finished runs stored beforehand, Redis broker on a queue of its own. GET runs first "
        "(the default page: the 100 newest runs with their specs, and the count of all runs), then POST (create a "
        "run and send its message to the broker). The runs table was vacuumed after loading, as autovacuum would "
        "have done in service.",
        "",
        f"Load generator: `benchmarks.load`, {config.api_clients} clients in one asyncio event loop in the "
        f"benchmark process, each with its own keep-alive connection (httpx {httpx.__version__}), sending its next "
        f"request as soon as the previous response arrives, for {config.api_seconds:g} s per endpoint. Latency is "
        "measured in the client from sending the request to reading the whole response, so it includes the "
        "client's own wait for the CPU on this machine. CPU per request counts the uvicorn processes (user and "
        "system time from /proc, PostgreSQL and Redis not included) and the benchmark process, warm-up requests "
        "included.",
        "",
        "| Endpoint | requests | failed | requests/s | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) "
        "| API CPU per request (ms) | load generator CPU per request (ms) | load at end |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        sent = max(1, result.sent)
        lines.append(
            f"| {name} | {result.succeeded:,} | {result.failed:,} | {result.rate:.0f} | {result.percentile(50):.1f} "
            f"| {result.percentile(90):.1f} | {result.percentile(99):.1f} | {result.percentile(100):.1f} "
            f"| {1000 * result.server_cpu_seconds / sent:.2f} | {1000 * result.client_cpu_seconds / sent:.2f} "
            f"| {format_load(result.load)} |"
        )
    for name, result in results.items():
        if result.errors:
            counts = ", ".join(f"{count} x {error}" for error, count in sorted(result.errors.items()))
            lines += ["", f"Failed {name} requests: {counts}."]
    lines += [
        "",
        "With a fixed number of clients that wait for each answer, the mean latency is the number of clients "
        "divided by the rate the server sustains (Little's law): a p50 under 50 ms at 50 clients needs more than "
        "1,000 requests per second.",
    ]
    return lines
