"""GateLabClient against real API processes: submitting, reading, acting on runs and sweeps, errors and waiting."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest

from gatelab.client import METRIC_COLUMNS, RUN_COLUMNS, GateLabClient, GateLabError, load_spec_file
from tests.gatelab.conftest import TINY_RUN
from tests.support.services import REPO_ROOT, free_port


@pytest.fixture
def idle(idle_api):
    with GateLabClient(idle_api.url) as client:
        yield client


@pytest.fixture
def stack(running_stack):
    with GateLabClient(running_stack["api_url"]) as client:
        yield client


def sweep_body(name: str = "client sweep") -> dict:
    return {"name": name, "base": TINY_RUN, "grid": {"lambda": [0.001, 0.1], "seed": [0, 1]}}


def test_import_loads_no_torch_or_gating_core():
    code = (
        "import json, sys\n"
        "import gatelab.client\n"
        "roots = {name.split('.')[0] for name in sys.modules}\n"
        "print(json.dumps(sorted(roots & {'torch', 'gating_core', 'pandas', 'yaml', 'backend'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_health_reports_database_and_version(idle):
    health = idle.health()

    assert health["status"] == "ok"
    assert health["database"] == "ok"
    assert health["version"]


def test_submit_run_returns_queued_run(idle):
    run = idle.submit_run({**TINY_RUN, "name": "one run"})

    assert run["status"] == "queued"
    assert run["name"] == "one run"
    assert run["spec"]["model"]["depth"] == 8
    assert idle.get_run(run["id"])["id"] == run["id"]
    idle.cancel(run["id"])


def test_submit_file_reads_json_and_yaml(idle, tmp_path):
    import yaml

    json_file = tmp_path / "sweep.json"
    json_file.write_text(json.dumps(sweep_body("from json")))
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(yaml.safe_dump({**TINY_RUN, "name": "from yaml"}))

    sweep = idle.submit_file(json_file)
    run = idle.submit_file(yaml_file)

    assert sweep["name"] == "from json"
    assert len(sweep["run_ids"]) == 4
    assert sweep["status_counts"] == {"queued": 4}
    assert run["name"] == "from yaml"
    assert run["sweep_id"] is None
    idle.cancel_sweep(sweep["id"])
    idle.cancel(run["id"])


def test_submit_sweep_file_and_list_sweeps(idle, tmp_path):
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(sweep_body("listed sweep")))

    sweep = idle.submit_sweep_file(sweep_file)
    newest = idle.list_sweeps(limit=1)

    assert newest["count"] >= 1
    assert [item["id"] for item in newest["data"]] == [sweep["id"]]
    assert newest["data"][0]["grid"] == {"lambda": [0.001, 0.1], "seed": [0, 1]}
    assert idle.get_sweep(sweep["id"])["run_ids"] == sweep["run_ids"]
    idle.cancel_sweep(sweep["id"])


def test_list_runs_filters_and_pages(idle):
    sweep = idle.submit_sweep(sweep_body())

    first = idle.list_runs(sweep_id=sweep["id"], limit=3)
    second = idle.list_runs(sweep_id=sweep["id"], skip=3, limit=3)
    every = idle.all_runs(sweep_id=sweep["id"])

    assert first["count"] == 4
    assert len(first["data"]) == 3
    assert len(second["data"]) == 1
    assert [run["id"] for run in every] == sorted(sweep["run_ids"], reverse=True)
    assert {run["id"] for run in idle.all_runs(sweep_id=sweep["id"], status="queued")} == set(sweep["run_ids"])
    frame = idle.runs_frame(sweep_id=sweep["id"])
    assert list(frame.columns) == RUN_COLUMNS
    assert sorted(frame["id"]) == sorted(sweep["run_ids"])
    idle.cancel_sweep(sweep["id"])


def test_invalid_spec_raises_server_message(idle, idle_api):
    spec = {**TINY_RUN, "model": {"depth": 21}}
    expected = httpx.post(f"{idle_api.url}/api/runs", json=spec).json()

    with pytest.raises(GateLabError) as caught:
        idle.submit_run(spec)

    assert caught.value.status_code == 422
    assert caught.value.message == expected["message"]
    assert "model.depth" in caught.value.message
    assert "6n+2" in caught.value.message
    assert caught.value.detail[0]["field"] == "model.depth"
    assert str(caught.value).startswith("HTTP 422: ")


def test_invalid_sweep_grid_raises_server_message(idle):
    with pytest.raises(GateLabError) as caught:
        idle.submit_sweep({"name": "bad", "base": TINY_RUN, "grid": {"model.colour": [1]}})

    assert caught.value.status_code == 422
    assert "model.colour" in caught.value.message


def test_unknown_run_raises_not_found(idle):
    with pytest.raises(GateLabError) as caught:
        idle.get_run(999_999)

    assert caught.value.status_code == 404
    assert caught.value.message == "run 999999 not found"


def test_unreachable_server_raises_without_status():
    with GateLabClient(f"http://127.0.0.1:{free_port()}", timeout=5) as client:
        with pytest.raises(GateLabError) as caught:
            client.health()

    assert caught.value.status_code is None
    assert "cannot reach the GateLab API" in caught.value.message


def test_cancel_then_retry_run(idle):
    run = idle.submit_run(TINY_RUN)

    cancelled = idle.cancel(run["id"])
    retried = idle.retry(run["id"])

    assert cancelled["status"] == "cancelled"
    assert retried["status"] == "queued"
    assert retried["cancel_requested"] is False
    idle.cancel(run["id"])


def test_retry_of_queued_run_is_rejected(idle):
    run = idle.submit_run(TINY_RUN)

    with pytest.raises(GateLabError) as caught:
        idle.retry(run["id"])

    assert caught.value.status_code == 409
    assert caught.value.message == f"only runs with status cancelled, diverged, failed, lost can be retried; run {run['id']} is queued"
    idle.cancel(run["id"])


def test_cancel_and_retry_whole_sweep(idle):
    sweep = idle.submit_sweep(sweep_body())

    cancelled = idle.cancel_sweep(sweep["id"])
    retried = idle.retry_sweep(sweep["id"])
    retried_again = idle.retry_sweep(sweep["id"])

    assert cancelled["status_counts"] == {"cancelled": 4}
    assert sorted(run["id"] for run in retried) == sorted(sweep["run_ids"])
    assert {run["status"] for run in retried} == {"queued"}
    assert retried_again == []
    assert idle.get_sweep(sweep["id"])["status_counts"] == {"queued": 4}
    idle.cancel_sweep(sweep["id"])


def test_retry_unknown_sweep_raises_not_found(idle):
    with pytest.raises(GateLabError) as caught:
        idle.retry_sweep(999_999)

    assert caught.value.status_code == 404
    assert caught.value.message == "sweep 999999 not found"


def test_rerun_copies_spec(idle):
    run = idle.submit_run({**TINY_RUN, "seed": 7})

    copy = idle.rerun(run["id"])

    assert copy["id"] != run["id"]
    assert copy["spec"] == run["spec"]
    idle.cancel(run["id"])
    idle.cancel(copy["id"])


def test_wait_times_out_on_queued_run(idle):
    run = idle.submit_run(TINY_RUN)
    started = time.monotonic()

    with pytest.raises(TimeoutError) as caught:
        idle.wait(run["id"], timeout=0.6, poll_interval=0.2)

    assert time.monotonic() - started < 5
    assert str(run["id"]) in str(caught.value)
    idle.cancel(run["id"])


def test_wait_returns_final_runs_with_updates(idle):
    runs = [idle.submit_run(TINY_RUN) for _ in range(2)]
    for run in runs:
        idle.cancel(run["id"])
    updates = []

    finished = idle.wait([run["id"] for run in runs], timeout=5, on_update=updates.append)

    assert [run["id"] for run in finished] == [run["id"] for run in runs]
    assert {run["status"] for run in finished} == {"cancelled"}
    assert len(updates) == 1


def test_presets_lists_named_sweeps(idle):
    presets = idle.presets()

    assert len(presets) > 0
    assert all("base" in preset and "grid" in preset for preset in presets)


def test_openapi_describes_run_spec(idle):
    schema = idle.openapi()

    assert "RunSpec" in schema["components"]["schemas"]


@pytest.mark.slow
def test_metrics_frame_has_row_per_epoch(stack, running_stack):
    run = running_stack["runs"][0]

    metrics = stack.metrics(run["id"])
    frame = stack.metrics_frame(run["id"])

    assert [row["epoch"] for row in metrics] == [1, 2]
    assert list(frame.columns) == METRIC_COLUMNS
    assert list(frame["epoch"]) == [1, 2]
    assert frame["test_accuracy"].iloc[-1] == pytest.approx(run["test_accuracy"])


@pytest.mark.slow
def test_samples_frame_has_gate_columns(stack, running_stack):
    run = running_stack["runs"][0]

    frame = stack.samples_frame(run["id"], include_gates=True)
    page = stack.samples(run["id"], limit=5)

    gate_columns = [column for column in frame.columns if column.startswith("gate:")]
    assert len(frame) == 200
    assert gate_columns == [f"gate:{name}" for name in page["gate_names"]]
    assert len(gate_columns) == 1
    assert frame[gate_columns[0]].to_numpy() == pytest.approx(frame["gate"].to_numpy(), abs=1e-5)
    assert frame["index"].is_unique
    assert "gates" not in frame.columns
    assert float((frame["gate"] < 0.5).mean()) == pytest.approx(run["skip_rate"])


@pytest.mark.slow
def test_samples_filters_reach_the_server(stack, running_stack):
    run = running_stack["runs"][0]

    wrong = stack.samples_frame(run["id"], correct=False)
    page = stack.samples(run["id"], sort="-gate", limit=10)

    assert len(wrong) == round(200 * (1 - run["test_accuracy"]))
    assert not wrong["correct"].any()
    gates = [sample["gate"] for sample in page["data"]]
    assert gates == sorted(gates, reverse=True)
    assert page["count"] == 200


@pytest.mark.slow
def test_samples_csv_matches_frame(stack, running_stack):
    run = running_stack["runs"][1]

    from_csv = pd.read_csv(io.StringIO(stack.samples_csv(run["id"])))
    frame = stack.samples_frame(run["id"])

    assert len(from_csv) == len(frame) == 200
    assert list(from_csv["index"]) == list(frame["index"])


@pytest.mark.slow
def test_image_png_returns_png(stack):
    png = stack.image_png("cifar10", "test", 0, scale=2)

    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_wait_sweep_returns_finished_runs(stack, running_stack):
    runs = stack.wait_sweep(running_stack["sweep"]["id"], timeout=10)

    assert sorted(run["id"] for run in runs) == sorted(running_stack["sweep"]["run_ids"])
    assert {run["status"] for run in runs} == {"succeeded"}


def test_load_spec_file_names_bad_files(tmp_path):
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("model: [depth: 8\n")
    broken_json = tmp_path / "broken.json"
    broken_json.write_text("{\"model\": ")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")

    for path, reason in ((broken_yaml, "invalid YAML"), (broken_json, "invalid JSON"), (listed, "mapping")):
        with pytest.raises(ValueError) as caught:
            load_spec_file(path)
        assert str(path) in str(caught.value)
        assert reason in str(caught.value)
