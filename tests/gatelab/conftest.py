"""Real API processes for the client and CLI tests.

`idle_api` has no worker, so the runs submitted to it stay queued until a test
cancels them. `live_api` has a worker of its own, so the runs submitted to it
train at once and no run of another test delays them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import sqlite_api, start_worker

# A run that trains and evaluates in a few seconds on one CPU core.
TINY_RUN = {
    "model": {"depth": 8, "gate": {"kind": "model1", "hidden_units": 16}},
    "data": {"train_subset": 128, "test_subset": 100},
    "train": {"epochs": 2, "batch_size": 64},
    "gate_loss_weight": 0.01,
}


@dataclass
class ApiServer:
    """A running API process: its URL and the environment that points the CLI at it."""

    url: str
    environment: dict[str, str]
    folder: Path


@pytest.fixture(scope="session")
def idle_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API process on a SQLite file and a Redis queue of its own, with no worker."""
    folder = tmp_path_factory.mktemp("idle-api")
    with sqlite_api(folder) as (url, environment):
        yield ApiServer(url, environment, folder)


@pytest.fixture(scope="session")
def live_api(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, cache_dir: Path) -> Iterator[ApiServer]:
    """An API process with one worker of its own, on a SQLite file and a private Redis queue."""
    folder = tmp_path_factory.mktemp("live-api")
    with sqlite_api(folder, {"GATELAB_DATA_DIR": str(data_dir), "GATELAB_CACHE_DIR": str(cache_dir)}) as (url, environment):
        worker = start_worker(environment, folder / "worker.log", "cli")
        try:
            yield ApiServer(url, environment, folder)
        finally:
            worker.stop()
