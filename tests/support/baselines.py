"""The published CIFAR ResNet checkpoints, and a real stack that has them imported through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.services import (
    REDIS_URL,
    REPO_ROOT,
    delete_queue,
    postgres_database,
    redis_available,
    service_environment,
    skip_or_fail,
    start_api,
    start_worker,
)

EXACT_TEST_SET = "npz:cifar10-exact/test-first-1000.npz"
JPEG_TEST_SET = "cifar10"
CHECKPOINT_FOLDER = Path("pretrained") / "cifar-resnets"
# A CPU import of all four measures about 44,000 images with ResNet-20 to -56.
IMPORT_TIMEOUT_SECONDS = 1200


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A checkpoint of akamaster/pytorch_resnet_cifar10 and its correct predictions.

    The counts were measured with ImageNet normalisation and the authors' own model
    code, as documented beside the checkpoints in the data directory: on the first
    1,000 exact CIFAR-10 test images and on the 10,000 JPEG test images.
    """

    depth: int
    file_name: str
    exact_correct: int
    jpeg_correct: int

    @property
    def arch(self) -> str:
        return f"resnet{self.depth}"


PUBLISHED = (
    PublishedCheckpoint(20, "resnet20-12fca82f.th", 915, 8103),
    PublishedCheckpoint(32, "resnet32-d509ac18.th", 928, 8256),
    PublishedCheckpoint(44, "resnet44-014dd654.th", 933, 8267),
    PublishedCheckpoint(56, "resnet56-4bfd9763.th", 926, 8320),
)
PUBLISHED_BY_DEPTH = {checkpoint.depth: checkpoint for checkpoint in PUBLISHED}


def checkpoint_file(data_dir: Path, checkpoint: PublishedCheckpoint) -> Path:
    """Return the checkpoint's path in the data directory; skip (fail in CI) when it is missing."""
    path = data_dir / CHECKPOINT_FOLDER / checkpoint.file_name
    if not path.is_file():
        skip_or_fail(f"published checkpoint {path} is missing")
    exact = data_dir / EXACT_TEST_SET.removeprefix("npz:")
    if not exact.is_file():
        skip_or_fail(f"exact CIFAR-10 test images {exact} are missing")
    return path


@dataclass
class PublishedStack:
    """A running API and worker, and what `gatelab baselines import --json` printed for each checkpoint."""

    api_url: str
    environment: dict[str, str]
    database_url: str
    folder: Path
    imports: dict[int, dict[str, Any]]


def run_cli(environment: dict[str, str], *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m gatelab ARGUMENTS` with the stack's environment and return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "gatelab", *arguments],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def published_stack(folder: Path, data_dir: Path, cache_dir: Path) -> Iterator[PublishedStack]:
    """Start an API and a worker on a fresh PostgreSQL database, and import every published checkpoint once.

    Each import goes through the CLI, which uploads the file to the API; the API
    measures it on the exact subset and on the JPEG test set.
    """
    files = {checkpoint.depth: checkpoint_file(data_dir, checkpoint) for checkpoint in PUBLISHED}
    if not redis_available(REDIS_URL):
        skip_or_fail(f"Redis at {REDIS_URL} is unreachable")
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
        environment["GATELAB_API_URL"] = url
        worker = start_worker(environment, folder / "worker.log", "baselines")
        try:
            imports = {}
            for depth, path in files.items():
                imports[depth] = _import(environment, path, PUBLISHED_BY_DEPTH[depth], api.log)
            yield PublishedStack(url, environment, database_url, folder, imports)
        finally:
            worker.stop()
            api.stop()
            delete_queue(REDIS_URL, queue)


def _import(environment: dict[str, str], path: Path, checkpoint: PublishedCheckpoint, api_log) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    finished = run_cli(
        environment,
        "baselines", "import", str(path),
        "--arch", checkpoint.arch,
        "--normalization", "imagenet",
        "--test-dataset", EXACT_TEST_SET,
        "--test-dataset", JPEG_TEST_SET,
        "--json",
        timeout=IMPORT_TIMEOUT_SECONDS,
    )
    if finished.returncode != 0:
        raise RuntimeError(
            f"gatelab baselines import {path.name} exited with {finished.returncode}:\n{finished.stderr}\n"
            f"API log:\n{api_log()[-3000:]}"
        )
    return json.loads(finished.stdout)
