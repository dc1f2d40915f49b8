"""`gatelab models` from the library, and `gatelab presets` against a real API process."""

from __future__ import annotations

import json

import httpx
import pytest
from typer.testing import CliRunner

from gatelab.cli import app
from gatelab.settings import get_settings
from gating_core.models.complexity import describe_architectures
from gating_core.presets import list_presets
from tests.support.services import free_port, sqlite_api

runner = CliRunner()


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    """A real API process on a SQLite file and a Redis queue of its own. No worker runs."""
    with sqlite_api(tmp_path_factory.mktemp("catalog-api")) as (url, _):
        yield url


@pytest.fixture
def cli_env(api_url, monkeypatch):
    monkeypatch.setenv("GATELAB_API_URL", api_url)
    monkeypatch.delenv("GATELAB_API_TOKEN", raising=False)
    get_settings.cache_clear()
    yield api_url
    get_settings.cache_clear()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_models_json_lists_every_combination():
    result = invoke("models", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows == describe_architectures(10)
    assert len(rows) == 5 * 8
    assert {row["name"] for row in rows} == {"ResNet-110", "ResNet-164", "PreResNet-110", "PreResNet-164", "ResNet-34"}
    assert {row["gate"] for row in rows} == {
        "none", "exclusive", "shortcut_only", "two_way", "model1", "model1_2", "model2", "model3"
    }
    assert all(row["params"] > 0 and row["macs"] > 0 for row in rows)


def test_models_head_grows_with_classes():
    ten = json.loads(invoke("models", "--json").stdout)
    hundred = json.loads(invoke("models", "--json", "--classes", "100").stdout)

    plain_ten = next(row for row in ten if row["name"] == "ResNet-110" and row["gate"] == "none")
    plain_hundred = next(row for row in hundred if row["name"] == "ResNet-110" and row["gate"] == "none")
    # The linear head of ResNet-110 takes 64 features: 90 more classes add 90 * (64 + 1) parameters.
    assert plain_hundred["params"] - plain_ten["params"] == 90 * 65


def test_models_table_shows_counts():
    result = invoke("models")

    assert result.exit_code == 0, result.output
    assert "ResNet-110" in result.stdout
    assert "1.73M" in result.stdout
    assert "252.9M" in result.stdout


def test_presets_json_matches_catalogue(cli_env):
    result = invoke("presets", "--json")

    assert result.exit_code == 0, result.output
    presets = json.loads(result.stdout)
    assert [preset["name"] for preset in presets] == [preset.name for preset in list_presets()]


def test_presets_table_lists_runs(cli_env):
    result = invoke("presets")

    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    model1 = rows["cifar10-resnet110-model1"]
    baseline = rows["cifar10-resnet110-baseline"]
    from_baseline = rows["cifar10-resnet110-model1-from-baseline"]
    assert len([name for name in rows if name.startswith(("cifar10-", "cifar100-"))]) == len(list_presets())
    assert model1.split()[-1] == "27"
    assert "6.43%, 6.61%" in baseline
    assert "required" in from_baseline


def test_preset_show_prints_description(cli_env):
    result = invoke("presets", "show", "cifar10-resnet110-model1-from-baseline")

    assert result.exit_code == 0, result.output
    assert "Model 1" in result.stdout
    assert "--baseline-run" in result.stdout
    assert '"source": "run"' in result.stdout


def test_preset_show_prints_sources(cli_env):
    result = invoke("presets", "show", "cifar10-preresnet164-baseline")

    assert result.exit_code == 0, result.output
    assert "PreResNet-164 5.46%" in result.stdout
    assert "Identity Mappings" in result.stdout


def test_preset_launch_creates_sweep(cli_env):
    args = ["--seed", "0", "--lambda", "0.1", "--lambda", "1", "--set", "train.epochs=1", "--name", "quick"]

    result = invoke("presets", "launch", "cifar10-resnet110-model3-bce", *args, "--json")

    assert result.exit_code == 0, result.output
    sweep = json.loads(result.stdout)
    assert sweep["name"] == "quick"
    assert sweep["preset"] == "cifar10-resnet110-model3-bce"
    assert len(sweep["run_ids"]) == 2
    run = httpx.get(f"{cli_env}/api/runs/{sweep['run_ids'][0]}", timeout=10).json()
    assert run["spec"]["train"]["epochs"] == 1
    assert run["spec"]["model"]["gate"]["model3_loss"] == "bce"


def test_preset_launch_needs_baseline_run(cli_env):
    result = invoke("presets", "launch", "cifar10-resnet110-model1-from-baseline", "--seed", "0")

    assert result.exit_code == 1
    assert "baseline_run_id is required" in result.stderr
    assert result.stdout == ""


def test_unknown_preset_shows_close_names(cli_env):
    result = invoke("presets", "show", "cifar10-resnet110-modl1")

    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr
    assert "cifar10-resnet110-model1" in result.stderr


def test_bad_assignment_is_usage_error(cli_env):
    result = invoke("presets", "launch", "cifar10-resnet110-model1", "--set", "train.epochs")

    assert result.exit_code == 2
    assert "FIELD=VALUE" in result.output


def test_unreachable_api_reported(monkeypatch):
    monkeypatch.setenv("GATELAB_API_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        result = invoke("presets")
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 1
    assert "cannot reach the GateLab API" in result.stderr
