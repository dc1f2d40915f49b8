"""Fixtures of the fault tests: a small copy of CIFAR-10 and a stack of real processes.

The stack is one API process (with the reaper), Celery workers, a private
redis-server that tests may restart, and a fresh database on the machine's
PostgreSQL. Heartbeats and timeouts are short, so that a lost run is noticed
within seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy

from tests.support.services import (
    RedisServer,
    ServiceProcess,
    postgres_database,
    service_environment,
    start_api,
    start_worker,
    wait_until,
)

SMALL_TRAIN_PER_CLASS = 100
SMALL_TEST_PER_CLASS = 20
FINAL_STATUSES = {"succeeded", "failed", "cancelled", "diverged", "lost"}
WORKER_NAMES = ("one", "two")

# Settings of the stack. A worker beats every 0.3 s and the reaper declares a
# run lost after 5 s without a beat, which leaves a wide margin on a busy
# 2-core machine while keeping the crash test short.
FAULT_SETTINGS = {
    "GATELAB_HEARTBEAT_INTERVAL": "0.3",
    "GATELAB_HEARTBEAT_TIMEOUT": "5",
    "GATELAB_REAPER_INTERVAL": "0.5",
    "GATELAB_BROKER_VISIBILITY_TIMEOUT": "30",
    "GATELAB_MAX_ATTEMPTS": "3",
    "GATELAB_DEVICE": "cpu",
    "GATELAB_ALLOW_DOWNLOAD": "false",
}


def tiny_spec(**train: Any) -> dict[str, Any]:
    """Return a spec that trains a ResNet-8 on 64 images for one epoch: about a second on a CPU."""
    return {
        "model": {"depth": 8},
        "data": {"train_subset": 64, "test_subset": 32},
        "train": {"epochs": 1, "batch_size": 64, "lr_milestones": [], **train},
    }


@pytest.fixture(scope="session")
def small_data_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the first 100 training and 20 test images of each CIFAR-10 class.

    A worker lists and stats every file of the data directory when a run
    starts (60,000 for CIFAR-10, which takes seconds), so the fault tests,
    which start hundreds of runs, use this copy of real images instead.
    """
    target = tmp_path_factory.mktemp("small-cifar10")
    for split, per_class in (("train", SMALL_TRAIN_PER_CLASS), ("test", SMALL_TEST_PER_CLASS)):
        for class_dir in sorted((data_dir / "cifar10" / split).iterdir()):
            destination = target / "cifar10" / split / class_dir.name
            destination.mkdir(parents=True)
            for image in sorted(class_dir.iterdir())[:per_class]:
                shutil.copyfile(image, destination / image.name)
    return target


def pin_process_tree(pid: int, cpus: set[int]) -> None:
    """Bind every thread of process `pid` and of its children to `cpus`; later children inherit it (Linux).

    A run uses one torch thread per CPU that its process may use. Two workers
    on two cores would otherwise run four threads that wait for each other:
    one ResNet-8 step on 25 images took 0.89 s instead of 0.12 s on 2 busy
    cores. One core per worker is what one GPU per worker is in production.
    """
    processes = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        processes += [int(child) for child in (task / "children").read_text().split()]
    for process in processes:
        for thread in Path(f"/proc/{process}/task").iterdir():
            os.sched_setaffinity(int(thread.name), cpus)


class FaultStack:
    """An API process, its workers and its private Redis; tests stop and start parts of it."""

    def __init__(self, folder: Path, environment: dict[str, str], redis: RedisServer) -> None:
        self.folder = folder
        self.environment = environment
        self.redis = redis
        self.database_url = environment["GATELAB_DATABASE_URL"]
        self.artifact_dir = Path(environment["GATELAB_ARTIFACT_DIR"])
        self.api, self.url = start_api(environment, folder / "api.log")
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self.engine = sqlalchemy.create_engine(self.database_url)
        self.workers: dict[str, ServiceProcess] = {}
        self.all_workers: list[ServiceProcess] = []

    def start_worker(self, name: str) -> ServiceProcess:
        log_path = self.folder / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
        worker = start_worker(self.environment, log_path, name)
        cpus = sorted(os.sched_getaffinity(0))
        pin_process_tree(worker.pid, {cpus[WORKER_NAMES.index(name) % len(cpus)]})
        self.workers[name] = worker
        self.all_workers.append(worker)
        return worker

    def ensure_workers(self, names: tuple[str, ...] = WORKER_NAMES) -> None:
        """Start the named workers that are not running, side by side."""
        missing = [name for name in names if name not in self.workers or not self.workers[name].alive()]
        with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
            list(pool.map(self.start_worker, missing))

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code < 300, f"POST {path} answered {response.status_code}: {response.text}"
        return response.json()

    def run(self, run_id: int) -> dict[str, Any]:
        response = self.http.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def metric_epochs(self, run_id: int) -> list[int]:
        """Return the epoch of every stored metric row of the run, duplicates included."""
        query = sqlalchemy.text("SELECT epoch FROM epoch_metrics WHERE run_id = :run_id ORDER BY epoch")
        with self.engine.connect() as connection:
            return [row.epoch for row in connection.execute(query, {"run_id": run_id})]

    def wait_until_final(self, run_ids: list[int], timeout: float) -> list[dict[str, Any]]:
        """Wait until every run has a final status and return the runs."""

        def all_final() -> bool:
            query = sqlalchemy.text("SELECT count(*) FROM runs WHERE id = ANY(:ids) AND status = ANY(:final)")
            with self.engine.connect() as connection:
                done = connection.execute(query, {"ids": run_ids, "final": sorted(FINAL_STATUSES)}).scalar_one()
            return done == len(run_ids)

        wait_until(all_final, timeout=timeout, interval=0.5, what=f"{len(run_ids)} runs to finish; logs in {self.folder}")
        return [self.run(run_id) for run_id in run_ids]

    def worker_cpu_seconds(self) -> float:
        """Return the CPU time used so far by the running workers and their finished children (Linux /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for worker in self.workers.values():
            fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, cutime and cstime: fields 14 to 17 of proc(5), counted from 1.
            total += sum(int(value) for value in fields[11:15])
        return total / ticks

    def claim_counts(self) -> dict[int, int]:
        """Count, over every worker log, how often each run was claimed (started training)."""
        counts: dict[int, int] = {}
        for worker in self.all_workers:
            for match in re.finditer(r"claimed run (\d+) ", worker.log()):
                run_id = int(match.group(1))
                counts[run_id] = counts.get(run_id, 0) + 1
        return counts

    def close(self) -> None:
        processes = [*self.workers.values(), self.api]
        with ThreadPoolExecutor(max_workers=len(processes)) as pool:
            list(pool.map(lambda process: process.stop(), processes))
        self.http.close()
        self.engine.dispose()


@pytest.fixture(scope="session")
def fault_stack(
    small_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultStack]:
    """The API with its reaper and two workers named 'one' and 'two', on a private Redis."""
    folder = tmp_path_factory.mktemp("fault-stack")
    redis = RedisServer(folder / "redis")
    redis.start()
    with postgres_database() as database_url:
        environment = service_environment(
            {
                **FAULT_SETTINGS,
                "GATELAB_HOME": str(folder / "home"),
                "GATELAB_ARTIFACT_DIR": str(folder / "artifacts"),
                "GATELAB_CACHE_DIR": str(folder / "cache"),
                "GATELAB_DATA_DIR": str(small_data_dir),
                "GATELAB_DATABASE_URL": database_url,
                "GATELAB_BROKER_URL": redis.url,
                "GATELAB_QUEUE": f"gatelab-faults-{uuid.uuid4().hex[:8]}",
            }
        )
        stack = FaultStack(folder, environment, redis)
        try:
            stack.ensure_workers()
            yield stack
        finally:
            stack.close()
            redis.stop()
