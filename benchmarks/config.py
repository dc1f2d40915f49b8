"""Sizes of every benchmark: the full profile behind docs/benchmarks.md and a tiny one for the smoke test."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of every benchmark, and the addresses of its data and services."""

    data_dir: Path
    cache_dir: Path
    postgres_admin_url: str = DEFAULT_POSTGRES_ADMIN_URL
    redis_url: str = DEFAULT_REDIS_URL
    profile: str = "full"
    # Intra-op threads for torch; None uses every core available, as the trainer does in a worker.
    threads: int | None = None

    # Timed repetitions of every side-by-side measurement, after `warmup_rounds` untimed ones.
    repeats: int = 3
    warmup_rounds: int = 1

    # a. Trainer against the reference loop, and bf16 against float32 accuracy.
    depth: int = 20
    batch_size: int = 128
    train_images: int = 5000
    # The trainer tests on `epoch_test_images` after every epoch, and the final
    # accuracies come from `test_images` at the end of each run.
    epoch_test_images: int = 500
    test_images: int = 10_000
    accuracy_seeds: int = 3
    accuracy_epochs: int = 8
    accuracy_milestones: tuple[int, ...] = (6, 7)
    reference_workers: int = 2

    # b. Gated against ungated training throughput, in epochs of `throughput_images`.
    throughput_images: int = 1280
    throughput_repeats: int = 4
    gate_loss_weight: float = 0.01

    # c. Per-sample storage: images x gates of one evaluation (ResNet-110 has 54 gated units).
    storage_images: int = 10_000
    storage_gates: int = 54

    # d. API latency.
    api_runs: int = 10_000
    api_clients: int = 50
    api_seconds: float = 20.0
    api_workers: int = 2

    # e. Hard skip at inference.
    hard_skip_images: int = 2048
    hard_skip_batch: int = 256
    # A pass takes about a second, so more repetitions than elsewhere steady the medians.
    hard_skip_repeats: int = 9

    # g. Peak memory of a worker training ResNet-110.
    memory_depth: int = 110
    memory_batch: int = 128
    memory_iterations: int = 3
    memory_train_images: int | None = None
    memory_test_images: int | None = None

    # f. GPU epoch, run only where CUDA is available.
    gpu_depth: int = 110
    gpu_images: int = 50_000

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"repeats must be 1 or more; received {self.repeats}")
        if self.accuracy_epochs < self.rounds:
            # The first seed's epochs are also the timed rounds, warm-up included.
            raise ValueError(
                f"accuracy_epochs must be at least warmup_rounds + repeats ({self.rounds}); "
                f"received {self.accuracy_epochs}"
            )

    @property
    def rounds(self) -> int:
        """Rounds of a side-by-side measurement: the warm-up ones, then the timed ones."""
        return self.warmup_rounds + self.repeats

    @classmethod
    def smoke(cls, data_dir: Path, cache_dir: Path, **overrides: object) -> BenchConfig:
        """Return sizes small enough that every benchmark runs in seconds; the figures mean nothing."""
        tiny = cls(
            data_dir=data_dir,
            cache_dir=cache_dir,
            profile="smoke",
            # One thread: two OpenMP threads on a busy 2-core machine wait for each other at every operation.
            threads=1,
            repeats=1,
            warmup_rounds=0,
            depth=14,
            batch_size=16,
            train_images=32,
            epoch_test_images=16,
            test_images=32,
            accuracy_seeds=2,
            accuracy_epochs=1,
            accuracy_milestones=(1,),
            reference_workers=1,
            throughput_images=32,
            throughput_repeats=1,
            storage_images=200,
            api_runs=50,
            api_clients=4,
            api_seconds=1.0,
            api_workers=1,
            hard_skip_images=64,
            hard_skip_batch=32,
            hard_skip_repeats=1,
            memory_depth=14,
            memory_batch=8,
            memory_iterations=1,
            memory_train_images=64,
            memory_test_images=32,
            gpu_depth=8,
            gpu_images=256,
        )
        return replace(tiny, **overrides)
