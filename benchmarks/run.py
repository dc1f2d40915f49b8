"""Run every benchmark and write the Markdown report: `python -m benchmarks.run --output docs/benchmarks.md`.

The full profile should take 10 to 12 minutes on a quiet 2-core CPU (an
estimate from per-step CPU times; the report states the measured time).
`--profile smoke` runs every code path on tiny sizes in seconds, for tests;
its figures mean nothing. A section that raises is listed as failed in the
report, and the command then exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.api import benchmark_api
from benchmarks.config import DEFAULT_POSTGRES_ADMIN_URL, DEFAULT_REDIS_URL, BenchConfig
from benchmarks.gpu import benchmark_gpu
from benchmarks.hard_skip import benchmark_hard_skip
from benchmarks.memory import benchmark_memory
from benchmarks.report import FailedSection, Report, format_load, load_average
from benchmarks.storage import benchmark_storage
from benchmarks.training import benchmark_gates, benchmark_trainer
from benchmarks.workload import Cifar10, load_cifar10
from gating_core.experiment import configure_backends
from gatelab.settings import get_settings

SECTIONS = {
    "a": "Trainer against the reference loop",
    "b": "Gated against ungated throughput",
    "c": "Per-sample storage",
    "d": "API latency",
    "e": "Hard skip",
    "f": "GPU epoch",
    "g": "Worker memory",
}

def describe_method(config: BenchConfig) -> list[str]:
    """Return the Markdown list that explains how the figures were measured."""
    threads = "every core available to the process, as the trainer does" if config.threads is None else (
        f"{config.threads} thread(s)"
    )
    warmup = "no warm-up round" if config.warmup_rounds == 0 else (
        f"the first {config.warmup_rounds} round(s) are a warm-up and are left out"
    )
    return [
        "- Each comparison runs its variants side by side in one process, in turns (one epoch or pass of each, "
        f"then the next round), so that a change in the machine's load hits all of them alike; {warmup}.",
        "- A figure is the median over the timed rounds; a comparison is the ratio of the two medians.",
        f"- Times are wall-clock (`time.perf_counter`). CPU runs use {threads}.",
        "- No test asserts any of these times; this page is the record. The numbers per round are in the "
        "sections below the table.",
    ]


def run_sections(config: BenchConfig, sections: list[str], report: Report) -> None:
    """Run the chosen sections in order, recording a failed section instead of stopping."""
    cifar: Cifar10 | None = None

    def data() -> Cifar10:
        nonlocal cifar
        if cifar is None:
            cifar = load_cifar10(config)
        return cifar

    runners: dict[str, Callable[[], None]] = {
        "a": lambda: benchmark_trainer(config, data(), report),
        "b": lambda: benchmark_gates(config, data(), report),
        "c": lambda: benchmark_storage(config, report),
        "d": lambda: benchmark_api(config, report),
        "e": lambda: benchmark_hard_skip(config, data(), report),
        "f": lambda: benchmark_gpu(config, report),
        "g": lambda: benchmark_memory(config, report),
    }
    for section in sections:
        started = time.perf_counter()
        _progress(f"{section}. {SECTIONS[section]}: started, load {format_load(load_average())}")
        try:
            runners[section]()
        except Exception as error:  # one broken section must not lose the others' figures
            traceback.print_exc()
            report.failures.append(FailedSection(section, SECTIONS[section], f"{type(error).__name__}: {error}",
                                                 load_average()))
        _progress(f"{section}. {SECTIONS[section]}: done in {time.perf_counter() - started:.0f} s, "
                  f"load {format_load(load_average())}")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="Run GateLab's benchmarks and write a Markdown report.")
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"), help="Report file to write.")
    parser.add_argument("--profile", choices=("full", "smoke"), default="full",
                        help="full: the sizes of the published report. smoke: tiny sizes that only test the code.")
    parser.add_argument("--sections", default="".join(SECTIONS),
                        help=f"Letters of the sections to run, default all ({''.join(SECTIONS)}).")
    parser.add_argument("--repeats", type=int, default=None, help="Timed rounds per comparison (default 3).")
    parser.add_argument("--data-dir", type=Path, default=settings.resolved_data_dir,
                        help="Folder with cifar10/ (default: GATELAB_DATA_DIR).")
    parser.add_argument("--cache-dir", type=Path, default=settings.resolved_cache_dir,
                        help="Folder for the decoded-image cache (default: GATELAB_CACHE_DIR).")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_ADMIN_URL,
                        help="PostgreSQL URL of a database from which the benchmark creates and drops its own.")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="Redis broker URL.")
    arguments = parser.parse_args(argv)
    unknown = sorted(set(arguments.sections) - set(SECTIONS))
    if unknown or not arguments.sections:
        parser.error(f"--sections must be letters from {''.join(SECTIONS)}; received {arguments.sections!r}")
    return arguments


def make_config(arguments: argparse.Namespace) -> BenchConfig:
    common = {
        "data_dir": arguments.data_dir,
        "cache_dir": arguments.cache_dir,
        "postgres_admin_url": arguments.postgres_url,
        "redis_url": arguments.redis_url,
    }
    if arguments.repeats is not None:
        common["repeats"] = arguments.repeats
    if arguments.profile == "smoke":
        return BenchConfig.smoke(**common)
    return BenchConfig(**common)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the report and return the exit status."""
    logging.basicConfig(level=logging.WARNING)
    arguments = parse_arguments(argv)
    try:
        config = make_config(arguments)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if config.threads is None:
        configure_backends(torch.device("cpu"))
    else:
        torch.set_num_threads(config.threads)

    report = Report(profile=config.profile)
    started = time.perf_counter()
    sections = [section for section in SECTIONS if section in arguments.sections]
    run_sections(config, sections, report)
    report.seconds = time.perf_counter() - started
    report.finished_load = load_average()

    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(report.to_markdown(describe_method(config)), encoding="utf-8")
    _progress(f"wrote {arguments.output} in {report.seconds:.0f} s")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
