"""Smoke test of the benchmarks: every section runs on tiny sizes and the report lists every figure."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.gpu import time_gpu_epochs
from benchmarks.run import main
from tests.support.services import POSTGRES_ADMIN_URL

# Figure names of the report, one per row, in the order of the sections a to g.
EXPECTED_ROWS = [
    ("a", "Epoch time, trainer (float32) / reference loop (float32)"),
    ("a", "Epoch time, trainer (bf16) / reference loop (float32)"),
    ("a", "Test accuracy, bf16 − float32 (mean of 2 seeds)"),
    ("b", "Training throughput, block-gated (model1) / ungated, bf16"),
    ("b", "Training throughput, layer-gated (exclusive) / ungated, bf16"),
    ("b", "Training throughput, block-gated (model1) / ungated, float32"),
    ("b", "Training throughput, layer-gated (exclusive) / ungated, float32"),
    ("c", "Write one evaluation (200 x 54 gates), SQLite"),
    ("c", "Read gate matrix + one filtered page, SQLite"),
    ("c", "Write one evaluation (200 x 54 gates), PostgreSQL"),
    ("c", "Read gate matrix + one filtered page, PostgreSQL"),
    ("d", "GET /api/runs latency"),
    ("d", "POST /api/runs latency"),
    ("d", "Runs POSTed and found in the Redis queue"),
    ("e", "Hard-skip wall-time saving / MAC saving, half of the images skip"),
    ("e", "Hard-skip wall-time saving / MAC saving, every image skips"),
    ("f", "Epoch time, ResNet-8 on 256 images, GPU"),
    ("g", "Peak resident memory, worker training ResNet-14 at batch 8 (CPU)"),
]


# Images per class and split of the synthetic CIFAR-10: enough for the smoke profile's largest subset (64).
IMAGES_PER_CLASS = 8


def write_tiny_cifar10(root: Path) -> Path:
    """Write a CIFAR-10 class-folder tree of random 32x32 PNG images and return the data directory."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in range(10):
            folder = root / "cifar10" / split / f"class{label}"
            folder.mkdir(parents=True)
            for position in range(IMAGES_PER_CLASS):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{position}.png")
    return root


@pytest.mark.slow
def test_smoke_report_lists_every_figure(tmp_path: Path, broker_url: str, postgres_server_url: str) -> None:
    output = tmp_path / "benchmarks.md"
    data_dir = write_tiny_cifar10(tmp_path / "data")

    status = main([
        "--profile", "smoke",
        "--output", str(output),
        "--data-dir", str(data_dir),
        "--cache-dir", str(tmp_path / "cache"),
        "--postgres-url", POSTGRES_ADMIN_URL,
        "--redis-url", broker_url,
    ])

    report = output.read_text(encoding="utf-8")
    rows = [line for line in report.splitlines() if re.match(r"\| [a-g] \|", line)]
    assert status == 0, report
    assert "failed:" not in report
    assert len(rows) == len(EXPECTED_ROWS), "\n".join(rows)
    for (section, name), row in zip(EXPECTED_ROWS, rows):
        assert row.startswith(f"| {section} | {name}"), f"expected {section}. {name}, found {row}"
        assert re.search(r"\| [\d.]+ / [\d.]+ / [\d.]+ \|$", row), f"no load average in {row}"
    assert re.search(r"- At start: [\d.]+ / [\d.]+ / [\d.]+", report)
    assert re.search(r"- At end: [\d.]+ / [\d.]+ / [\d.]+", report)
    assert "- CPU: " in report
    assert "torch " in report


def test_unknown_section_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--sections", "az"])

    assert caught.value.code == 2
    assert "--sections must be letters from abcdefg; received 'az'" in capsys.readouterr().err


def test_gpu_epoch_script_runs_on_cpu(tmp_path: Path) -> None:
    # No GPU here: the same code on the CPU checks everything but CUDA itself.
    data_dir = write_tiny_cifar10(tmp_path / "data")
    previous = torch.get_num_threads()
    try:
        result = time_gpu_epochs(depth=8, images=40, data_dir=data_dir, cache_dir=tmp_path / "cache",
                                 device_name="cpu", threads=1)
    finally:
        torch.set_num_threads(previous)

    assert result["source"] == "CIFAR-10 training images"
    assert result["images"] == 40
    assert result["precision"] in ("float32", "bf16")
    assert 0 < result["train_seconds"] <= result["epoch_seconds"]
