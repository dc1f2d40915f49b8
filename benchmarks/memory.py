"""Peak resident memory of a worker process that trains ResNet-110 on the CPU.

`measure_worker_memory` starts `python -m benchmarks.memory` in a fresh
process, which loads the data the way a worker does (`prepare_data`), trains
a few iterations through the trainer and prints its maximum resident set size
(VmHWM) as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.config import BenchConfig
from benchmarks.report import Figure, Report, load_average
from benchmarks.workload import build_trainer
from gating_core.experiment import configure_backends, prepare_data
from gating_core.spec import RunSpec
from gating_core.train.callbacks import Callback, StopReason, StopTraining
from gating_core.train.trainer import TrainState

CHILD_TIMEOUT_SECONDS = 600
MIB = 1024 * 1024


class StopAfter(Callback):
    """Stops training after a number of optimiser steps."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def on_step(self, state: TrainState) -> None:
        if state.iteration >= self.iterations:
            raise StopTraining(StopReason.CANCELLED, f"stopped after {self.iterations} iterations")


def peak_rss_bytes() -> int:
    """Return the peak resident set size of this process's own memory.

    On Linux this is VmHWM from /proc/self/status. getrusage's ru_maxrss would
    be wrong here: Linux carries it over exec, so a child started by a large
    parent reports the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def train_and_measure(depth: int, batch_size: int, iterations: int, train_subset: int | None,
                      test_subset: int | None, data_dir: Path, cache_dir: Path,
                      threads: int | None = None) -> dict[str, object]:
    """Train `iterations` steps on the CPU as a worker would and return the peak memory at each stage."""
    spec = RunSpec.model_validate(
        {
            "model": {"depth": depth},
            "data": {"train_subset": train_subset, "test_subset": test_subset},
            "train": {"batch_size": batch_size},
        }
    )
    device = torch.device("cpu")
    configure_backends(device)
    if threads is not None:
        torch.set_num_threads(threads)
    after_import = peak_rss_bytes()
    data = prepare_data(spec, data_dir, cache_dir, device)
    after_data = peak_rss_bytes()

    trainer = build_trainer(spec, data, device, callbacks=[StopAfter(iterations)])
    started = time.perf_counter()
    try:
        trainer.fit()
    except StopTraining:
        pass
    return {
        "depth": depth,
        "batch_size": batch_size,
        "iterations": trainer.state.iteration,
        "train_images": len(data.train),
        "test_images": len(data.test),
        "precision": trainer.precision.name,
        "seconds": time.perf_counter() - started,
        "after_import_bytes": after_import,
        "after_data_bytes": after_data,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def measure_worker_memory(config: BenchConfig) -> dict[str, object]:
    """Run `train_and_measure` in a fresh Python process and return what it printed."""
    command = [
        sys.executable, "-m", "benchmarks.memory",
        "--depth", str(config.memory_depth),
        "--batch-size", str(config.memory_batch),
        "--iterations", str(config.memory_iterations),
        "--data-dir", str(config.data_dir),
        "--cache-dir", str(config.cache_dir),
    ]
    if config.memory_train_images is not None:
        command += ["--train-subset", str(config.memory_train_images)]
    if config.memory_test_images is not None:
        command += ["--test-subset", str(config.memory_test_images)]
    if config.threads is not None:
        command += ["--threads", str(config.threads)]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_SECONDS, cwd=Path(__file__).resolve().parents[1]
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the memory benchmark process failed with status {completed.returncode}:\n"
                           f"{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def benchmark_memory(config: BenchConfig, report: Report) -> None:
    """Add the peak resident memory of a ResNet-110 training process to the report."""
    result = measure_worker_memory(config)
    peak = int(result["peak_rss_bytes"]) / MIB
    name = f"Peak resident memory, worker training ResNet-{result['depth']} at batch {result['batch_size']} (CPU)"
    report.figures.append(Figure("g", name, f"{peak:,.0f} MiB", "none set", None, load_average()))
    report.add_details("g. Worker memory", [
        f"A fresh Python process loads the CIFAR-10 training set ({result['train_images']:,} images) and test set "
        f"({result['test_images']:,} images) with `prepare_data`, as a worker does, then trains "
        f"{result['iterations']} iterations through the trainer in {result['precision']} and reads its maximum "
        "resident set size (VmHWM in /proc/self/status).",
        "",
        f"- After importing torch and GateLab: {int(result['after_import_bytes']) / MIB:,.0f} MiB",
        f"- After loading the images: {int(result['after_data_bytes']) / MIB:,.0f} MiB",
        f"- Peak while training: {peak:,.0f} MiB ({float(result['seconds']):.1f} s of training)",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description="Train a few iterations on the CPU and print the peak memory.")
    parser.add_argument("--depth", type=int, default=110, help="ResNet depth (6n+2).")
    parser.add_argument("--batch-size", type=int, default=128, help="Images per step.")
    parser.add_argument("--iterations", type=int, default=3, help="Optimiser steps to train.")
    parser.add_argument("--train-subset", type=int, default=None, help="Training images to load; default: all.")
    parser.add_argument("--test-subset", type=int, default=None, help="Test images to load; default: all.")
    parser.add_argument("--threads", type=int, default=None, help="Intra-op threads; default: every core.")
    parser.add_argument("--data-dir", type=Path, required=True, help="Folder with cifar10/.")
    parser.add_argument("--cache-dir", type=Path, required=True, help="Folder for the decoded-image cache.")
    arguments = parser.parse_args()
    result = train_and_measure(arguments.depth, arguments.batch_size, arguments.iterations, arguments.train_subset,
                               arguments.test_subset, arguments.data_dir, arguments.cache_dir, arguments.threads)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
