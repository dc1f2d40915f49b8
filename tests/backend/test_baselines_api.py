"""Baselines through the REST API.

The first tests use a generated ResNet-8 checkpoint and 64 random images in an .npz,
on SQLite and PostgreSQL, so each import takes well under a second. The last ones read
the published checkpoints, imported once per session into a real stack.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from gating_core.models import build_model
from gating_core.spec import ModelSpec

TINY_TEST_SET = "npz:tiny.npz"
OTHER_TEST_SET = "npz:other.npz"
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def write_images(path: Path, count: int, seed: int) -> None:
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = generator.integers(0, 10, size=count).astype(np.uint8)
    np.savez(path, x=images, y=labels)


@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    write_images(folder / "tiny.npz", 64, seed=0)
    write_images(folder / "other.npz", 32, seed=1)
    return folder


@pytest.fixture
def api_settings(settings_env: dict[str, str], data_folder: Path):  # type: ignore[no-untyped-def]
    from gatelab.settings import Settings

    values = {key.removeprefix("GATELAB_").lower(): value for key, value in settings_env.items()}
    values["data_dir"] = str(data_folder)
    return Settings(**values)


@pytest.fixture
def api(api_settings):  # type: ignore[no-untyped-def]
    from backend.main import create_app

    with TestClient(create_app(api_settings, run_reaper=False)) as client:
        yield client


def checkpoint(tmp_path: Path, depth: int = 8, seed: int = 0, name: str = "resnet8-test.th", drop: str | None = None) -> Path:
    """Write a checkpoint as akamaster's script does: {"state_dict": ...} with 'module.' keys."""
    torch.manual_seed(seed)
    tensors = build_model(ModelSpec(depth=depth), 10).state_dict()
    state_dict = {f"module.{key}": value for key, value in tensors.items() if key != drop}
    path = tmp_path / name
    torch.save({"state_dict": state_dict, "best_prec1": 50.0}, path)
    return path


def upload(api: TestClient, path: Path, filename: str | None = None, **form: object):  # type: ignore[no-untyped-def]
    fields = {"arch": "resnet8", "normalization": "imagenet", "test_dataset": [TINY_TEST_SET], **form}
    with path.open("rb") as file:
        return api.post("/api/baselines", data=fields, files={"file": (filename or path.name, file, "application/octet-stream")})


def expected_correct(path: Path, images_path: Path) -> int:
    """Count correct predictions with a plain forward pass, independently of the import code."""
    state_dict = torch.load(path, weights_only=True)["state_dict"]
    model = build_model(ModelSpec(depth=8), 10).eval()
    model.load_state_dict({key.removeprefix("module."): value for key, value in state_dict.items()})
    arrays = np.load(images_path)
    mean = torch.tensor(IMAGENET["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET["std"]).view(1, 3, 1, 1)
    x = (torch.from_numpy(arrays["x"]).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        predictions = model(x).logits.argmax(dim=1).numpy()
    return int((predictions == arrays["y"]).sum())


def stored_weights(settings) -> list[str]:  # type: ignore[no-untyped-def]
    folder = settings.resolved_artifact_dir / "baselines"
    return sorted(path.name for path in folder.glob("*.pt")) if folder.is_dir() else []


def test_import_measures_and_stores_baseline(api, api_settings, tmp_path, data_folder):
    path = checkpoint(tmp_path, seed=4)

    response = upload(api, path)

    assert response.status_code == 201, response.text
    body = response.json()
    baseline = body["baseline"]
    assert body["created"] is True
    assert baseline["arch"] == "resnet8"
    assert baseline["dataset"] == "cifar10"
    assert baseline["model_spec"]["shortcut"] == "A"
    assert baseline["normalization"] == IMAGENET
    assert baseline["normalization_name"] == "imagenet"
    assert baseline["name"] == "resnet8-test"
    assert baseline["source_filename"] == "resnet8-test.th"
    assert baseline["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert baseline["report"]["left_over"] == []
    assert baseline["report"]["loaded"] == baseline["report"]["tensors_in_file"]
    [evaluation] = baseline["evaluations"]
    assert evaluation["dataset"] == TINY_TEST_SET
    assert evaluation["count"] == 64
    assert evaluation["correct"] == expected_correct(path, data_folder / "tiny.npz")
    assert evaluation["accuracy"] == pytest.approx(evaluation["correct"] / 64)

    assert stored_weights(api_settings) == [f"{baseline['id']}.pt"]
    weights = torch.load(api_settings.resolved_artifact_dir / "baselines" / f"{baseline['id']}.pt", weights_only=True)
    original = torch.load(path, weights_only=True)["state_dict"]
    assert torch.equal(weights["layer3.0.conv1.weight"], original["module.layer3.0.conv1.weight"])
    assert list((api_settings.resolved_artifact_dir / "baselines" / "incoming").iterdir()) == []


def test_file_name_never_names_stored_files(api, api_settings, tmp_path):
    response = upload(api, checkpoint(tmp_path), filename="../../escape.th", name="named")

    assert response.status_code == 201, response.text
    baseline = response.json()["baseline"]
    assert baseline["name"] == "named"
    assert stored_weights(api_settings) == [f"{baseline['id']}.pt"]
    assert not list(tmp_path.rglob("escape*"))


def test_same_file_returns_existing_baseline(api, tmp_path):
    path = checkpoint(tmp_path)
    first = upload(api, path).json()["baseline"]

    again = upload(api, path)
    with_other_test_set = upload(api, path, test_dataset=[TINY_TEST_SET, OTHER_TEST_SET])
    other_normalization = upload(api, path, normalization="cifar")

    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["baseline"]["id"] == first["id"]
    assert len(again.json()["baseline"]["evaluations"]) == 1
    assert with_other_test_set.status_code == 200
    measured = {row["dataset"]: row["count"] for row in with_other_test_set.json()["baseline"]["evaluations"]}
    assert measured == {TINY_TEST_SET: 64, OTHER_TEST_SET: 32}
    assert other_normalization.status_code == 201
    assert other_normalization.json()["baseline"]["id"] != first["id"]
    assert other_normalization.json()["baseline"]["normalization_name"] == "cifar"
    assert api.get("/api/baselines").json()["count"] == 2


@pytest.mark.parametrize(
    "form, field, received, message",
    [
        ({"arch": "resnet21"}, "arch", "resnet21", "resnet20, resnet32, resnet44, resnet56"),
        ({"normalization": "0.5/0.25"}, "normalization", "0.5/0.25", "imagenet, cifar, or MEAN/STD"),
        ({"dataset": "svhn"}, "dataset", "svhn", "cifar10, cifar100"),
        ({"test_dataset": ["npz:missing.npz"]}, "test_dataset", ["npz:missing.npz"], "was not found"),
        ({"test_dataset": ["cifar100"]}, "test_dataset", ["cifar100"], "other classes than the baseline's data set"),
        ({"test_dataset": ["npz:../outside.npz"]}, "test_dataset", ["npz:../outside.npz"], "inside it"),
    ],
)
def test_import_rejects_invalid_options(api, api_settings, tmp_path, form, field, received, message):
    response = upload(api, checkpoint(tmp_path), **form)

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["field"] == field
    assert detail["input"] == received
    assert message in detail["msg"]
    assert api.get("/api/baselines").json()["count"] == 0
    assert stored_weights(api_settings) == []


def test_import_rejects_files_that_do_not_fit(api, api_settings, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    cases = [
        (text, "not a PyTorch checkpoint"),
        (checkpoint(tmp_path, drop="layer2.0.bn1.running_var", name="broken.th"), "1 tensors are missing: layer2.0.bn1.running_var"),
        (checkpoint(tmp_path, depth=14, name="resnet14.th"), "belong to residual units the network lacks"),
    ]

    for path, message in cases:
        response = upload(api, path)

        assert response.status_code == 422, response.text
        [detail] = response.json()["detail"]
        assert detail["field"] == "file"
        assert detail["input"] == path.name
        assert message in detail["msg"]
    assert api.get("/api/baselines").json()["count"] == 0
    assert stored_weights(api_settings) == []


def test_import_without_file_names_field(api):
    response = api.post("/api/baselines", data={"arch": "resnet8", "normalization": "imagenet"})

    assert response.status_code == 422
    assert [detail["field"] for detail in response.json()["detail"]] == ["file"]


def test_upload_above_limit_is_rejected(api_settings, tmp_path):
    from backend.main import create_app

    small = api_settings.model_copy(update={"max_upload_bytes": 4096})
    with TestClient(create_app(small, run_reaper=False)) as client:
        response = upload(client, checkpoint(tmp_path))

        assert response.status_code == 413
        assert "the limit is 4096 bytes" in response.json()["detail"]
        assert client.get("/api/baselines").json()["count"] == 0


def test_list_and_get_baselines(api, tmp_path):
    first = upload(api, checkpoint(tmp_path, seed=1, name="a.th")).json()["baseline"]
    second = upload(api, checkpoint(tmp_path, seed=2, name="b.th")).json()["baseline"]

    page = api.get("/api/baselines", params={"limit": 1}).json()
    one = api.get(f"/api/baselines/{first['id']}")
    missing = api.get("/api/baselines/999999")

    assert page["count"] == 2
    assert [baseline["id"] for baseline in page["data"]] == [second["id"]]
    assert one.status_code == 200
    assert one.json()["sha256"] == first["sha256"]
    assert missing.status_code == 404
    assert "999999" in missing.json()["detail"]


# Runs and sweeps that start from a baseline

GATED_RUN = {
    "model": {"depth": 8, "gate": {"kind": "model1", "hidden_units": 16}},
    "data": {"train_subset": 64, "test_subset": 32},
    "train": {"epochs": 1, "batch_size": 32},
    "gate_loss_weight": 0.1,
}


def from_baseline(baseline_id: int, **changes: object) -> dict:
    spec = {**GATED_RUN, "init": {"source": "baseline", "id": baseline_id}}
    for key, value in changes.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return spec


def test_run_from_unknown_baseline_is_rejected(api):
    response = api.post("/api/runs", json=from_baseline(999999))

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["field"] == "init.id"
    assert detail["input"] == 999999
    assert "baseline 999999 not found" in detail["msg"]
    assert api.get("/api/runs").json()["count"] == 0


def test_run_with_other_network_is_rejected(api, tmp_path):
    baseline = upload(api, checkpoint(tmp_path)).json()["baseline"]

    response = api.post("/api/runs", json=from_baseline(baseline["id"], model={"depth": 14, "shortcut": "B"}))

    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["field"] == "model.depth"
    assert detail["input"] == 14
    assert "model.depth must be 8, received 14" in detail["msg"]
    assert "model.shortcut must be 'A', received 'B'" in detail["msg"]
    assert api.get("/api/runs").json()["count"] == 0


def test_sweep_errors_name_base_or_grid(api, tmp_path):
    baseline = upload(api, checkpoint(tmp_path)).json()["baseline"]
    base = from_baseline(baseline["id"])

    wrong_depth = api.post("/api/sweeps", json={"name": "s", "base": {**base, "model": {**GATED_RUN["model"], "depth": 20}}, "grid": {"lambda": [0.1, 1]}})
    unknown_in_grid = api.post("/api/sweeps", json={"name": "s", "base": base, "grid": {"init.id": [baseline["id"], 999999]}})

    assert wrong_depth.status_code == 422, wrong_depth.text
    assert wrong_depth.json()["detail"][0]["loc"] == ["body", "base", "model", "depth"]
    assert unknown_in_grid.status_code == 422, unknown_in_grid.text
    assert unknown_in_grid.json()["detail"][0]["loc"] == ["body", "grid", "init.id"]
    assert unknown_in_grid.json()["detail"][0]["input"] == 999999
    assert api.get("/api/sweeps").json()["count"] == 0
    assert api.get("/api/runs").json()["count"] == 0


def test_runs_take_baseline_normalization(api, tmp_path):
    baseline = upload(api, checkpoint(tmp_path)).json()["baseline"]

    default = api.post("/api/runs", json=from_baseline(baseline["id"]))
    override = api.post("/api/runs", json=from_baseline(baseline["id"], data={"normalization": "cifar"}))
    sweep = api.post("/api/sweeps", json={"name": "s", "base": from_baseline(baseline["id"]), "grid": {"lambda": [0.1, 1]}})

    assert default.status_code == 201, default.text
    assert default.json()["spec"]["data"]["normalization"] == IMAGENET
    assert override.status_code == 201, override.text
    assert override.json()["spec"]["data"]["normalization"] == "cifar"
    assert sweep.status_code == 201, sweep.text
    for run_id in sweep.json()["run_ids"]:
        assert api.get(f"/api/runs/{run_id}").json()["spec"]["data"]["normalization"] == IMAGENET


# The published checkpoints, imported once per session through the CLI into a real stack.
# The first test to use them waits for the imports: about 90 s on two idle cores, and
# several times that on a busy machine, hence the long timeout.
PUBLISHED_TIMEOUT = pytest.mark.timeout(1800)


def published_baseline(stack, depth: int) -> dict:  # type: ignore[no-untyped-def]
    return stack.imports[depth]["baseline"]


@pytest.mark.slow
@PUBLISHED_TIMEOUT
def test_api_lists_published_counts(published_baselines):
    from tests.support.baselines import EXACT_TEST_SET, JPEG_TEST_SET, PUBLISHED

    listed = httpx.get(f"{published_baselines.api_url}/api/baselines", timeout=10).json()

    by_arch = {baseline["arch"]: baseline for baseline in listed["data"]}
    assert listed["count"] == len(PUBLISHED)
    for checkpoint in PUBLISHED:
        baseline = by_arch[checkpoint.arch]
        counts = {row["dataset"]: (row["correct"], row["count"]) for row in baseline["evaluations"]}
        assert counts[EXACT_TEST_SET] == (checkpoint.exact_correct, 1000), checkpoint.arch
        assert counts[JPEG_TEST_SET] == (checkpoint.jpeg_correct, 10000), checkpoint.arch
        assert baseline["normalization_name"] == "imagenet"
        assert baseline["report"]["left_over"] == []
        assert all(row["device"] == "cpu" or row["device"].startswith("cuda") for row in baseline["evaluations"])


@pytest.mark.slow
@PUBLISHED_TIMEOUT
def test_api_reimport_returns_existing_baseline(published_baselines, data_dir):
    from gatelab.client import GateLabClient
    from tests.support.baselines import JPEG_TEST_SET, PUBLISHED_BY_DEPTH, checkpoint_file

    existing = published_baseline(published_baselines, 20)
    with GateLabClient(published_baselines.api_url) as client:
        again = client.import_baseline(
            checkpoint_file(data_dir, PUBLISHED_BY_DEPTH[20]), "resnet20", "imagenet", test_datasets=[JPEG_TEST_SET]
        )

    assert again["created"] is False
    assert again["baseline"]["id"] == existing["id"]
    assert again["baseline"]["evaluations"] == existing["evaluations"]


@pytest.mark.slow
@PUBLISHED_TIMEOUT
def test_gated_run_starts_from_published_baseline(published_baselines):
    from gatelab.client import GateLabClient

    baseline = published_baseline(published_baselines, 20)
    spec = {
        "model": {"depth": 20, "gate": {"kind": "model1", "hidden_units": 32}},
        "data": {"train_subset": 128, "test_subset": 200},
        "train": {"epochs": 1, "batch_size": 64, "lr": 0.01, "schedule": "constant"},
        "init": {"source": "baseline", "id": baseline["id"]},
        "gate_loss_weight": 0.1,
    }
    with GateLabClient(published_baselines.api_url) as client:
        created = client.submit_run(spec)
        [run] = client.wait([created["id"]], timeout=600)

    assert run["status"] == "succeeded", run["error"]
    assert run["spec"]["data"]["normalization"] == IMAGENET
    report = run["init_report"]
    assert report["missing"] == []
    assert report["unexpected"] == []
    assert report["mismatched"] == {}
    assert report["loaded"] == len(build_model(ModelSpec(depth=20), 10).state_dict())
    assert report["gate_fresh"]
    assert all(name.startswith("stage_gate.") for name in report["gate_fresh"])
    # Kaiming-initialised networks score near 10% after two steps; the loaded backbone keeps about 80%.
    assert run["test_accuracy"] > 0.6


@pytest.mark.slow
@PUBLISHED_TIMEOUT
def test_gated_resnet56_at_gate_one_matches_baseline(published_baselines, data_dir, cache_dir):
    from backend.db.session import session_factory
    from gatelab.settings import Settings
    from gating_core.data import load_images
    from gating_core.data.pipeline import DeviceImages
    from gating_core.evaluate import evaluate_samples
    from gating_core.models import load_matching_weights
    from gating_core.spec import GateSpec, Normalization, RunSpec
    from gating_core.train.precision import PrecisionPlan
    from tests.support.baselines import EXACT_TEST_SET
    from worker.runner import resolve_initialisation

    baseline = published_baseline(published_baselines, 56)
    spec = RunSpec.model_validate(
        {"model": {"depth": 56, "gate": {"kind": "model1"}}, "init": {"source": "baseline", "id": baseline["id"]}}
    )
    settings = Settings(home=published_baselines.folder / "home", database_url=published_baselines.database_url)
    weights, normalization = resolve_initialisation(session_factory(settings.resolved_database_url), spec, settings)
    assert normalization == Normalization.model_validate(IMAGENET)

    plain = build_model(ModelSpec(depth=56), 10)
    gated = build_model(ModelSpec(depth=56, gate=GateSpec(kind="model1")), 10)
    assert load_matching_weights(plain, weights).complete
    gated_report = load_matching_weights(gated, weights)
    assert gated_report.complete
    assert gated_report.gate_fresh

    images = DeviceImages.from_image_set(load_images(EXACT_TEST_SET, "test", data_dir, cache_dir))
    float32 = PrecisionPlan(None, torch.device("cpu"))
    mean, std = tuple(normalization.mean), tuple(normalization.std)
    baseline_records = evaluate_samples(plain, images, mean, std, float32)
    with gated.force_gate(1.0):
        gated_records = evaluate_samples(gated, images, mean, std, float32)

    assert int(baseline_records.correct.sum()) == 926
    assert np.array_equal(gated_records.predictions, baseline_records.predictions)
    assert np.all(gated_records.gates == 1.0)
