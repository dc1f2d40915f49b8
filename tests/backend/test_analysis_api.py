"""Analysis endpoints on SQLite and PostgreSQL: distributions, difficulty, comparisons, sweep tables, analyses."""

from __future__ import annotations

import io

import numpy as np
import pytest
import redis
from scipy import stats

from tests.support.analysis_data import finish_run, make_records, spec_for


def create_run(client, gate_kind: str = "model1", gate_loss_weight: float = 0.01) -> int:
    response = client.post("/api/runs", json=spec_for(gate_kind, gate_loss_weight))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def block_gated_run(client, settings, gates, labels, correct, indices=None) -> int:
    run_id = create_run(client)
    finish_run(settings.resolved_database_url, run_id, make_records(gates, labels, correct, indices))
    return run_id


# Distributions


def test_distributions_histogram_and_classes(client, settings):
    gates = np.array([0.05, 0.15, 0.95, 0.85, 0.65, 0.12])  # away from bin edges, which float32 blurs
    labels = np.array([0, 0, 0, 1, 1, 1])
    correct = np.array([True, True, False, True, False, True])
    run_id = block_gated_run(client, settings, gates, labels, correct)

    response = client.get(f"/api/runs/{run_id}/analysis/distributions", params={"bins": 10, "threshold": 0.5})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 6
    assert body["skip_rate"] == pytest.approx(0.5)
    assert body["histogram"]["correct"] == [1, 2, 0, 0, 0, 0, 0, 0, 1, 0]
    assert body["histogram"]["wrong"] == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1]
    classes = {row["class_name"]: row for row in body["classes"]}
    assert classes["airplane"]["skip_rate"] == pytest.approx(2 / 3)
    assert classes["automobile"]["skip_rate"] == pytest.approx(1 / 3)
    assert classes["airplane"]["accuracy"] == pytest.approx(2 / 3)
    assert classes["bird"]["count"] == 0
    assert classes["bird"]["skip_rate"] is None
    assert body["heatmap"] is None


def test_distributions_heatmap_for_layer_gates(client, settings):
    run_id = create_run(client, gate_kind="exclusive")
    gates = np.array([[0.1, 0.9, 0.5], [0.3, 0.7, 0.5], [0.8, 0.2, 0.0]])
    records = make_records(gates, np.array([2, 2, 5]), np.array([True, True, True]))
    finish_run(settings.resolved_database_url, run_id, records, gate_names=["stage1.unit1", "stage2.unit1", "stage3.unit1"])

    body = client.get(f"/api/runs/{run_id}/analysis/distributions").json()

    heatmap = body["heatmap"]
    assert heatmap["units"] == ["stage1.unit1", "stage2.unit1", "stage3.unit1"]
    assert len(heatmap["values"]) == 3
    assert heatmap["values"][0][2] == pytest.approx(0.2)
    assert heatmap["values"][1][2] == pytest.approx(0.8)
    assert heatmap["values"][2][5] == pytest.approx(0.0)
    assert heatmap["values"][0][0] is None


def test_distributions_csv_and_missing_results(client, settings):
    run_id = block_gated_run(client, settings, np.array([0.2, 0.8]), np.array([3, 3]), np.array([True, False]))

    response = client.get(f"/api/runs/{run_id}/analysis/distributions", params={"format": "csv"})
    lines = response.text.strip().splitlines()

    assert response.headers["content-type"].startswith("text/csv")
    assert lines[0] == "label,class_name,count,skip_rate,mean_gate,accuracy"
    assert lines[4].startswith("3,cat,2,0.5,0.5,0.5")
    queued = create_run(client)
    missing = client.get(f"/api/runs/{queued}/analysis/distributions")
    assert missing.status_code == 404
    assert "per-sample results" in missing.json()["detail"]
    bad = client.get(f"/api/runs/{run_id}/analysis/distributions", params={"threshold": 2})
    assert bad.status_code == 422
    assert "threshold" in bad.json()["message"]


# Difficulty and score sets


def test_difficulty_correlations(client, settings):
    gates = np.linspace(0.1, 0.9, 20)  # loss grows with g in make_records
    correct = np.arange(20) < 10  # the low-g half is right, the high-g half wrong
    run_id = block_gated_run(client, settings, gates, np.zeros(20, dtype=int), correct)

    body = client.get(f"/api/runs/{run_id}/analysis/difficulty").json()

    assert body["gate_vs_loss"]["rho"] == pytest.approx(1.0)
    assert body["gate_vs_loss"]["count"] == 20
    # Ranks 1..n against a half-and-half 0/1 split correlate at sqrt(3 n^2 / (4 (n^2 - 1))).
    assert body["gate_vs_misclassified"]["rho"] == pytest.approx(np.sqrt(3 * 400 / (4 * 399)))
    assert body["scores"] is None


def upload_scores(client, text: str, dataset: str = "fashion-mnist", split: str = "test", **fields):
    files = {"file": ("scores.csv", io.BytesIO(text.encode()), "text/csv")}
    return client.post("/api/score-sets", data={"dataset": dataset, "split": split, **fields}, files=files)


def test_difficulty_deciles_with_score_set(client, settings):
    # 100 Fashion-MNIST test images with index = score; the 30 lowest scores skip.
    indices = np.arange(100)
    gates = np.where(indices < 30, 0.1, 0.9)
    run_id = create_run(client)
    records = make_records(gates, np.zeros(100, dtype=int), np.ones(100, dtype=bool), indices)
    finish_run(settings.resolved_database_url, run_id, records, dataset="fashion-mnist")
    text = "index,score\n" + "".join(f"{i},{i + 1}\n" for i in range(100))

    upload = upload_scores(client, text, name="known ranks")
    assert upload.status_code == 201, upload.text
    score_set = upload.json()
    body = client.get(f"/api/runs/{run_id}/analysis/difficulty", params={"score_set": score_set["id"]}).json()

    assert score_set["count"] == 10_000
    assert score_set["scored"] == 100
    assert body["dataset"] == "fashion-mnist"
    deciles = body["scores"]["deciles"]
    assert [row["count"] for row in deciles] == [10] * 10
    assert [row["skip_rate"] for row in deciles] == [1.0, 1.0, 1.0, 0, 0, 0, 0, 0, 0, 0]
    # Low scores skip, so g rises with the score.
    expected = stats.spearmanr(gates, indices + 1).statistic
    assert body["scores"]["gate_vs_score"]["rho"] == pytest.approx(expected)
    assert body["scores"]["gate_vs_score"]["count"] == 100
    csv_text = client.get(
        f"/api/runs/{run_id}/analysis/difficulty", params={"score_set": score_set["id"], "format": "csv"}
    ).text
    assert csv_text.splitlines()[0] == "decile,score_from,score_to,count,skip_rate,mean_gate"
    assert client.get("/api/score-sets").json()["count"] == 1


def test_score_set_rejections_name_the_field(client):
    cases = [
        ("index,score\n1,0.5\n", {"dataset": "mnist"}, "dataset", "mnist"),
        ("name,score\na,0.5\n", {}, "key_column", None),
        ("index,score\n10000,0.5\n", {}, "file", 10000),
        ("index,score\n1,abc\n", {}, "file", "abc"),
        ("index,score\n1,0.5\n1,0.7\n", {}, "file", "1"),
        ("index,score\n1,0.5\n", {"score_column": "cscore"}, "score_column", "cscore"),
    ]
    for text, fields, field, received in cases:
        response = upload_scores(client, text, **fields)

        assert response.status_code == 422, (text, response.text)
        entry = response.json()["detail"][0]
        assert entry["field"] == field, entry
        if received is not None:
            assert entry["input"] == received, entry


def test_score_set_by_path_maps_class_folders(client, data_dir):
    text = "path,label,cscore\ntest/airplane/0001.jpg,0,0.25\ntest/truck/0000.jpg,9,0.75\n"

    response = upload_scores(client, text, dataset="cifar10")
    unknown = upload_scores(client, "path,cscore\ntest/airplane/99999.jpg,0.1\n", dataset="cifar10")

    assert response.status_code == 201, response.text
    assert response.json()["scored"] == 2
    assert unknown.status_code == 422
    assert "test/airplane/99999.jpg" in unknown.json()["message"]


def test_score_upload_size_limit(settings):
    from fastapi.testclient import TestClient

    from backend.main import create_app

    small = settings.model_copy(update={"max_upload_bytes": 2048})
    with TestClient(create_app(small, run_reaper=False)) as limited:
        text = "index,score\n" + "".join(f"{i},0.5\n" for i in range(1000))
        response = upload_scores(limited, text)

    assert response.status_code == 413
    assert "2048" in response.json()["detail"]


# Comparing two runs


def test_compare_lists_differing_decisions(client, settings):
    labels = np.arange(6) % 10
    correct = np.ones(6, dtype=bool)
    first = block_gated_run(client, settings, np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7]), labels, correct)
    second = block_gated_run(client, settings, np.array([0.1, 0.6, 0.2, 0.8, 0.9, 0.1]), labels, correct)

    page = client.get("/api/runs/compare", params={"a": first, "b": second, "limit": 2}).json()
    rest = client.get("/api/runs/compare", params={"a": first, "b": second, "skip": 2}).json()

    assert page["count"] == 4
    assert page["common"] == 6
    assert page["skipped_by_both"] == 1
    assert page["skipped_by_a_only"] == 2
    assert page["skipped_by_b_only"] == 2
    assert [row["index"] for row in page["data"] + rest["data"]] == [1, 2, 4, 5]
    assert page["data"][0]["gate_a"] == pytest.approx(0.2)
    assert page["data"][0]["gate_b"] == pytest.approx(0.6)
    assert page["data"][0]["label_name"] == "automobile"
    csv_lines = client.get("/api/runs/compare", params={"a": first, "b": second, "format": "csv"}).text.splitlines()
    assert len(csv_lines) == 5
    assert csv_lines[0].startswith("index,label,label_name,gate_a,gate_b")


def test_compare_rejects_ungated_run(client, settings):
    gated = block_gated_run(client, settings, np.array([0.1, 0.9]), np.array([0, 1]), np.array([True, True]))
    plain = create_run(client, gate_kind="none", gate_loss_weight=0.0)
    finish_run(settings.resolved_database_url, plain, make_records(np.zeros((2, 0)), np.array([0, 1]), np.array([True, True])), gate_names=[])

    response = client.get("/api/runs/compare", params={"a": gated, "b": plain})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "b"
    assert "has no gate" in response.json()["message"]


# Sweep table


def test_sweep_table_with_published_column(client, settings):
    body = {
        "name": "table",
        "base": spec_for("none", 0.0),
        "grid": {"seed": [0, 1, 2]},
        "preset": "cifar10-resnet110-baseline",
    }
    sweep = client.post("/api/sweeps", json=body).json()
    for run_id, accuracy in zip(sweep["run_ids"], (0.90, 0.92, 0.97)):
        finish_run(settings.resolved_database_url, run_id, test_accuracy=accuracy)

    table = client.get(f"/api/sweeps/{sweep['id']}/table").json()
    csv_lines = client.get(f"/api/sweeps/{sweep['id']}/table", params={"format": "csv"}).text.splitlines()

    row = table["rows"][0]
    assert row["lambda"] == 0.0
    assert row["finished"] == 3
    assert row["mean_test_accuracy"] == pytest.approx(0.93)
    assert row["median_test_accuracy"] == pytest.approx(0.92)
    assert row["std_test_accuracy"] == pytest.approx(np.std([0.90, 0.92, 0.97], ddof=1))
    assert row["published_test_accuracy"] == pytest.approx(1 - 0.0661)
    assert "He et al. 2015" in row["published"]
    assert csv_lines[0].startswith("lambda,runs,finished,mean_test_accuracy,std_test_accuracy,median_test_accuracy")
    assert csv_lines[0].endswith("published_test_accuracy,published")


def test_sweep_table_without_preset(client, settings):
    sweep = client.post("/api/sweeps", json={"name": "plain", "base": spec_for(), "grid": {"lambda": [0.1, 0.01]}}).json()

    table = client.get(f"/api/sweeps/{sweep['id']}/table").json()

    assert [row["lambda"] for row in table["rows"]] == [0.01, 0.1]
    assert all(row["finished"] == 0 and row["published"] is None for row in table["rows"])
    assert client.get("/api/sweeps/999999/table").status_code == 404


# Analyses


def test_create_and_read_analysis(client, settings):
    run_id = block_gated_run(client, settings, np.array([0.2, 0.8]), np.array([0, 1]), np.array([True, True]))

    response = client.post(f"/api/runs/{run_id}/analyses", json={"kind": "ood", "params": {"dataset": "corruption", "corruption": "jpeg", "severity": 2}})

    assert response.status_code == 201, response.text
    analysis = response.json()
    assert analysis["status"] == "queued"
    assert analysis["params"]["severity"] == 2
    assert client.get(f"/api/analyses/{analysis['id']}").json()["kind"] == "ood"
    listed = client.get(f"/api/runs/{run_id}/analyses").json()
    assert [item["id"] for item in listed["data"]] == [analysis["id"]]
    queued = redis.Redis.from_url(settings.broker_url).lrange(settings.queue, 0, -1)
    assert any(b"gatelab.run_analysis" in message for message in queued)
    assert client.get("/api/analyses/999999").status_code == 404


def test_analysis_rejections(client, settings):
    run_id = block_gated_run(client, settings, np.array([0.2, 0.8]), np.array([0, 1]), np.array([True, True]))
    layer_run = create_run(client, gate_kind="exclusive")
    finish_run(settings.resolved_database_url, layer_run)
    queued_run = create_run(client)
    cifar100_run = client.post("/api/runs", json={**spec_for(), "data": {"dataset": "cifar100"}}).json()["id"]
    finish_run(settings.resolved_database_url, cifar100_run)
    url = f"/api/runs/{run_id}/analyses"

    unknown_kind = client.post(url, json={"kind": "prune"})
    no_severity = client.post(url, json={"kind": "ood", "params": {"dataset": "corruption", "corruption": "jpeg"}})
    bad_threshold = client.post(url, json={"kind": "hard_skip", "params": {"thresholds": [0.5, 1.5]}})
    missing_svhn = client.post(url, json={"kind": "ood", "params": {"dataset": "svhn"}})
    same_set = client.post(f"/api/runs/{cifar100_run}/analyses", json={"kind": "ood", "params": {"dataset": "cifar100"}})
    layer_gate = client.post(f"/api/runs/{layer_run}/analyses", json={"kind": "hard_skip"})
    not_finished = client.post(f"/api/runs/{queued_run}/analyses", json={"kind": "hard_skip"})
    bad_baseline = client.post(url, json={"kind": "hard_skip", "params": {"baseline_run_id": queued_run}})

    assert unknown_kind.status_code == 422
    assert "'ood', 'hard_skip', 'train_samples'" in unknown_kind.json()["message"]
    assert "prune" in unknown_kind.json()["message"]
    assert no_severity.status_code == 422
    assert "severity" in no_severity.json()["message"]
    assert bad_threshold.status_code == 422
    assert "thresholds" in bad_threshold.json()["message"]
    assert missing_svhn.status_code == 422
    assert missing_svhn.json()["detail"][0]["field"] == "params.dataset"
    assert "svhn" in missing_svhn.json()["message"]
    assert "Looked for" in missing_svhn.json()["message"]
    assert same_set.status_code == 422
    assert "must differ from the run's training data set 'cifar100'" in same_set.json()["message"]
    assert layer_gate.status_code == 422
    assert "'exclusive'" in layer_gate.json()["message"]
    assert not_finished.status_code == 409
    assert "queued" in not_finished.json()["detail"]
    assert bad_baseline.status_code == 422
    assert bad_baseline.json()["detail"][0]["field"] == "params.baseline_run_id"


def test_train_samples_rejected_when_present(client, settings):
    run_id = create_run(client)
    records = make_records(np.array([0.5, 0.5]), np.array([0, 1]), np.array([True, True]))
    finish_run(settings.resolved_database_url, run_id, records, split="train")

    response = client.post(f"/api/runs/{run_id}/analyses", json={"kind": "train_samples"})

    assert response.status_code == 409
    assert "split=train" in response.json()["detail"]
