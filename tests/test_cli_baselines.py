"""`gatelab baselines` as a user runs it: a subprocess that talks to a real API."""

from __future__ import annotations

import json

import pytest

from tests.support.baselines import (
    EXACT_TEST_SET,
    JPEG_TEST_SET,
    PUBLISHED,
    PUBLISHED_BY_DEPTH,
    checkpoint_file,
    run_cli,
)
from tests.support.services import free_port, service_environment

# The first test to use the published stack waits for its imports: about 90 s on two
# idle cores, and several times that on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def wide(environment: dict[str, str]) -> dict[str, str]:
    """Return the environment with a terminal wide enough that rich prints whole table cells."""
    return {**environment, "COLUMNS": "250"}


@pytest.mark.parametrize("checkpoint", PUBLISHED, ids=[checkpoint.arch for checkpoint in PUBLISHED])
def test_import_reproduces_published_counts(published_baselines, checkpoint):
    result = published_baselines.imports[checkpoint.depth]

    baseline = result["baseline"]
    counts = {row["dataset"]: (row["correct"], row["count"]) for row in baseline["evaluations"]}
    assert result["created"] is True
    assert baseline["arch"] == checkpoint.arch
    assert baseline["source_filename"] == checkpoint.file_name
    assert baseline["normalization_name"] == "imagenet"
    assert counts == {EXACT_TEST_SET: (checkpoint.exact_correct, 1000), JPEG_TEST_SET: (checkpoint.jpeg_correct, 10000)}
    assert baseline["report"]["missing"] == []
    assert baseline["report"]["left_over"] == []
    assert baseline["report"]["loaded"] == baseline["report"]["tensors_in_file"]


def test_list_prints_counts_per_test_set(published_baselines):
    finished = run_cli(wide(published_baselines.environment), "baselines", "list")

    assert finished.returncode == 0, finished.stderr
    for checkpoint in PUBLISHED:
        assert f"{checkpoint.exact_correct} / 1000" in finished.stdout
        assert f"{checkpoint.jpeg_correct} / 10000" in finished.stdout


def test_show_json_matches_import(published_baselines):
    imported = published_baselines.imports[56]["baseline"]

    finished = run_cli(published_baselines.environment, "baselines", "show", str(imported["id"]), "--json")

    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == imported


def test_import_again_reports_existing_baseline(published_baselines, data_dir):
    path = checkpoint_file(data_dir, PUBLISHED_BY_DEPTH[32])
    imported = published_baselines.imports[32]["baseline"]

    finished = run_cli(
        wide(published_baselines.environment), "baselines", "import", str(path), "--arch", "resnet32", "--normalization", "imagenet"
    )

    assert finished.returncode == 0, finished.stderr
    assert f"already imported as baseline {imported['id']}" in finished.stdout
    assert "8256 / 10000" in finished.stdout


def test_import_rejects_unknown_arch(published_baselines, data_dir):
    path = checkpoint_file(data_dir, PUBLISHED_BY_DEPTH[20])

    finished = run_cli(
        wide(published_baselines.environment), "baselines", "import", str(path), "--arch", "resnet21", "--normalization", "imagenet"
    )

    assert finished.returncode == 1
    assert "arch" in finished.stderr
    assert "received 'resnet21'" in finished.stderr
    assert "resnet56" in finished.stderr


def test_import_reports_unreachable_api(tmp_path):
    checkpoint = tmp_path / "model.th"
    checkpoint.write_bytes(b"unused")
    environment = service_environment({"GATELAB_API_URL": f"http://127.0.0.1:{free_port()}", "GATELAB_HOME": str(tmp_path)})

    finished = run_cli(environment, "baselines", "import", str(checkpoint), "--arch", "resnet20", "--normalization", "imagenet")

    assert finished.returncode == 1
    assert "cannot reach the GateLab API" in finished.stderr
