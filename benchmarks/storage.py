"""Per-sample storage: write and read back one evaluation of 10,000 images x 54 gates in SQLite and PostgreSQL."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy

from backend.db.migrate import upgrade_database
from backend.db.session import get_engine, session_factory
from backend.storage import runs as run_storage
from backend.storage import samples as sample_storage
from benchmarks.config import BenchConfig
from benchmarks.report import Figure, Report, load_average, median
from gating_core.evaluate import SampleRecords
from gating_core.spec import RunSpec

WRITE_TARGET_SECONDS = 0.5
READ_TARGET_SECONDS = 0.1
# The filtered page of a gallery: misclassified images with a low gate, most confident first.
PAGE_FILTER = sample_storage.SampleFilter(correct=False, gate_max=0.5)
PAGE_SORT = "-confidence"
PAGE_SIZE = 100


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """Create an empty PostgreSQL database for the benchmark and drop it afterwards."""
    name = f"gatelab_bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        get_engine.cache_clear()
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def random_records(images: int, gates: int, seed: int = 0) -> SampleRecords:
    """Build per-sample records shaped like a real evaluation, with random values."""
    rng = np.random.default_rng(seed)
    return SampleRecords(
        indices=rng.permutation(images).astype(np.int64),
        labels=rng.integers(0, 10, images).astype(np.int64),
        predictions=rng.integers(0, 10, images).astype(np.int64),
        confidence=rng.random(images, dtype=np.float32),
        loss=rng.exponential(1.0, images).astype(np.float32),
        energy=-rng.exponential(5.0, images).astype(np.float32),
        gates=rng.random((images, gates), dtype=np.float32),
    )


def time_storage(url: str, config: BenchConfig) -> dict[str, list[float]]:
    """Write one fresh evaluation per repetition, then read its gate matrix and one filtered page.

    Each repetition writes to a new run, as a finished run does. The first
    `warmup_rounds` repetitions are left out.
    """
    upgrade_database(url)
    sessions = session_factory(url)
    records = random_records(config.storage_images, config.storage_gates)
    gate_names = [f"gate{position + 1}" for position in range(config.storage_gates)]
    classes = [str(label) for label in range(10)]
    seconds: dict[str, list[float]] = {"write": [], "gate matrix": [], "filtered page": []}

    for _ in range(config.rounds):
        with sessions() as session:
            run_id = run_storage.create_run(session, RunSpec()).id
            session.commit()

        with sessions() as session:
            started = time.perf_counter()
            sample_storage.write_evaluation(session, run_id, "cifar10", "test", records, gate_names, classes)
            session.commit()
            seconds["write"].append(time.perf_counter() - started)

        with sessions() as session:
            started = time.perf_counter()
            evaluation = sample_storage.find_evaluation(session, run_id, "cifar10")
            matrix = sample_storage.gate_matrix(evaluation)
            seconds["gate matrix"].append(time.perf_counter() - started)
            assert matrix.shape == (config.storage_images, config.storage_gates)

            started = time.perf_counter()
            rows, count = sample_storage.query_samples(session, evaluation.id, PAGE_FILTER, PAGE_SORT, limit=PAGE_SIZE)
            seconds["filtered page"].append(time.perf_counter() - started)
            assert len(rows) == min(PAGE_SIZE, count)
    return {name: values[config.warmup_rounds:] for name, values in seconds.items()}


def benchmark_storage(config: BenchConfig, report: Report) -> None:
    """Time per-sample writes and reads in a SQLite file and in a fresh PostgreSQL database."""
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="gatelab-bench-") as folder:
        sqlite_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        results["SQLite"] = time_storage(sqlite_url, config)
        get_engine(sqlite_url).dispose()
    with postgres_database(config.postgres_admin_url) as postgres_url:
        results["PostgreSQL"] = time_storage(postgres_url, config)

    size = f"{config.storage_images:,} x {config.storage_gates}"
    for database, seconds in results.items():
        write = median(seconds["write"])
        read = median([matrix + page for matrix, page in zip(seconds["gate matrix"], seconds["filtered page"])])
        report.figures.append(
            Figure("c", f"Write one evaluation ({size} gates), {database}", f"{write:.3f} s",
                   f"≤ {WRITE_TARGET_SECONDS} s", write <= WRITE_TARGET_SECONDS, load_average())
        )
        report.figures.append(
            Figure("c", f"Read gate matrix + one filtered page, {database}", f"{read:.3f} s",
                   f"≤ {READ_TARGET_SECONDS} s", read <= READ_TARGET_SECONDS, load_average())
        )
    report.add_details("c. Per-sample storage", _storage_details(config, results))


def _storage_details(config: BenchConfig, results: dict[str, dict[str, list[float]]]) -> list[str]:
    lines = [
        f"One evaluation of {config.storage_images:,} images with {config.storage_gates} gates each (a layer-gated "
        "ResNet-110 on the CIFAR-10 test set), with random values.",
        "",
        "- Write: `write_evaluation` (one row per image plus the float32 gate matrix as one blob) and the commit, "
        "for a new run each time.",
        "- Read, in a new session: `find_evaluation` with `gate_matrix` (the whole images x gates matrix as a numpy "
        f"array), then `query_samples` for one page of {PAGE_SIZE} misclassified images with gate < 0.5, most "
        "confident first, with the count of all matching images.",
        "",
        f"Medians over {config.repeats} repetitions after {config.warmup_rounds} warm-up(s), in seconds:",
        "",
        "| Database | write | gate matrix | filtered page |",
        "|---|---|---|---|",
    ]
    for database, seconds in results.items():
        lines.append(
            f"| {database} | {median(seconds['write']):.3f} | {median(seconds['gate matrix']):.4f} "
            f"| {median(seconds['filtered page']):.4f} |"
        )
    return lines
