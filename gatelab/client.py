"""A typed Python client for the GateLab REST API.

It needs only httpx (pandas for the DataFrame helpers and PyYAML for YAML spec
files are imported when first used), never torch or gating_core, so scripts and
the dashboard can import it alone:

    from gatelab.client import GateLabClient

    with GateLabClient("http://127.0.0.1:8000") as client:
        sweep = client.submit_file("examples/quick-sweep.json")
        client.wait(sweep["run_ids"])
        print(client.runs_frame(sweep_id=sweep["id"]))

Responses are returned as plain dicts typed with the TypedDicts below, so both
`run["status"]` and a type checker's view of the fields work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypedDict, TypeVar

import httpx

if TYPE_CHECKING:
    import pandas as pd

# "lost" counts as final here: the API requeues a lost run at once while it has
# attempts left, so a run that stays lost has used them all up.
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "diverged", "lost"})
JSON = dict[str, Any]
ItemT = TypeVar("ItemT")

RUN_COLUMNS = [
    "id", "sweep_id", "name", "status", "progress", "epoch", "total_epochs", "gate_kind", "gate_loss_weight",
    "seed", "test_accuracy", "train_loss", "mean_gate", "skip_rate", "worker", "gpu",
]
METRIC_COLUMNS = [
    "epoch", "train_loss", "gate_loss", "train_error", "test_accuracy", "test_loss", "mean_gate",
    "test_mean_gate", "validation_accuracy", "lr", "seconds", "images_per_second",
]


class Run(TypedDict):
    """One run as GET /api/runs/{id} returns it; timestamps are ISO 8601 strings in UTC."""

    id: int
    sweep_id: int | None
    name: str | None
    status: str
    progress: float
    epoch: int
    total_epochs: int
    attempts: int
    cancel_requested: bool
    worker: str | None
    gpu: str | None
    error: str | None
    divergence: JSON | None
    gate_kind: str
    gate_loss_weight: float
    seed: int
    test_accuracy: float | None
    train_loss: float | None
    mean_gate: float | None
    skip_rate: float | None
    precision: str | None
    environment: JSON | None
    init_report: JSON | None
    created_at: str
    started_at: str | None
    heartbeat_at: str | None
    finished_at: str | None
    spec: JSON


class Sweep(TypedDict):
    """One sweep with the ids of its runs and how many runs are in each status."""

    id: int
    name: str
    base_spec: JSON
    grid: dict[str, list[Any]]
    preset: str | None
    baseline_run_id: int | None
    created_at: str
    run_ids: list[int]
    status_counts: dict[str, int]


class EpochMetrics(TypedDict):
    """Metrics of one finished epoch."""

    epoch: int
    train_loss: float
    gate_loss: float
    train_error: float
    test_accuracy: float
    test_loss: float
    mean_gate: float | None
    test_mean_gate: float | None
    validation_accuracy: float | None
    lr: float
    seconds: float
    images_per_second: float


class Sample(TypedDict):
    """Per-sample result of one evaluated image; `gates` is filled only when requested."""

    position: int
    index: int
    label: int
    label_name: str | None
    prediction: int
    prediction_name: str | None
    correct: bool
    confidence: float
    loss: float
    energy: float
    gate: float | None
    gates: list[float] | None


class Page(TypedDict, Generic[ItemT]):
    """One page of a list endpoint: the items and the number of all matching items."""

    data: list[ItemT]
    count: int


class SamplesPage(TypedDict):
    """One page of per-sample results and the evaluation they belong to."""

    data: list[Sample]
    count: int
    dataset: str
    split: str
    variant: str
    gate_names: list[str]


class Health(TypedDict):
    """Liveness of the API, its database and its broker."""

    status: str
    database: str
    broker: str
    version: str


class GateLabError(RuntimeError):
    """An API request that was rejected, or a server that could not be reached.

    `status_code` is the HTTP status, or None when no response came back.
    `message` is the server's own explanation, unchanged, and `detail` the
    structured body (for a 422, one entry per invalid field).
    """

    def __init__(self, status_code: int | None, message: str, detail: Any = None) -> None:
        super().__init__(message if status_code is None else f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.detail = detail


def load_spec_file(path: str | Path) -> JSON:
    """Read a run or sweep spec from a JSON or YAML file.

    Raises OSError when the file cannot be read and ValueError, naming the file,
    when it is not valid JSON or YAML or has no mapping at the top level.
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: invalid YAML: {error}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: invalid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a spec file must contain a mapping at the top level; received {type(data).__name__}")
    return data


def is_sweep(spec: JSON) -> bool:
    """Tell a sweep (it has a grid) from a single run spec."""
    return "grid" in spec


class GateLabClient:
    """Calls the GateLab API. Every method raises GateLabError on a non-2xx response or a network failure."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GateLabClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            message = f"the GateLab API at {self.base_url} did not respond within {self.timeout:g} s ({error})"
            raise GateLabError(None, message) from error
        except httpx.HTTPError as error:
            raise GateLabError(None, f"cannot reach the GateLab API at {self.base_url}: {error}") from error
        if response.is_success:
            return response
        raise _error_from_response(response)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # Health and catalogue

    def health(self) -> Health:
        """Return the API's health; a 503 (database down) raises GateLabError."""
        return self._json("GET", "/api/health")

    def openapi(self) -> JSON:
        """Return the API's OpenAPI document, which contains every spec field with its limits."""
        return self._json("GET", "/openapi.json")

    def presets(self) -> list[JSON]:
        return self._json("GET", "/api/presets")["data"]

    # Submitting

    def submit_run(self, spec: JSON) -> Run:
        """Create one run from a RunSpec dict and queue it."""
        return self._json("POST", "/api/runs", json=spec)

    def submit_sweep(self, sweep: JSON) -> Sweep:
        """Create a sweep ({"name", "base": RunSpec, "grid": {field: [values]}}) and queue its runs."""
        return self._json("POST", "/api/sweeps", json=sweep)

    def submit(self, spec: JSON) -> Run | Sweep:
        """Submit a sweep when the spec has a grid, otherwise one run."""
        if is_sweep(spec):
            return self.submit_sweep(spec)
        return self.submit_run(spec)

    def submit_file(self, path: str | Path) -> Run | Sweep:
        """Submit the run or sweep in a JSON or YAML file."""
        return self.submit(load_spec_file(path))

    def submit_sweep_file(self, path: str | Path) -> Sweep:
        return self.submit_sweep(load_spec_file(path))

    # Runs

    def list_runs(self, sweep_id: int | None = None, status: str | None = None, skip: int = 0, limit: int = 100) -> Page[Run]:
        """Return one page of runs, newest first."""
        params = _drop_none({"sweep_id": sweep_id, "status": status, "skip": skip, "limit": limit})
        return self._json("GET", "/api/runs", params=params)

    def all_runs(self, sweep_id: int | None = None, status: str | None = None) -> list[Run]:
        """Return every matching run, newest first, following the pagination."""
        runs: list[Run] = []
        while True:
            page = self.list_runs(sweep_id=sweep_id, status=status, skip=len(runs), limit=1000)
            runs.extend(page["data"])
            if not page["data"] or len(runs) >= page["count"]:
                return runs

    def get_run(self, run_id: int) -> Run:
        return self._json("GET", f"/api/runs/{run_id}")

    def cancel(self, run_id: int) -> Run:
        """Cancel a queued run at once, or ask a running one to stop; a finished run is returned unchanged."""
        return self._json("POST", f"/api/runs/{run_id}/cancel")

    def retry(self, run_id: int) -> Run:
        """Queue a failed, lost, cancelled or diverged run again; other statuses raise GateLabError (409)."""
        return self._json("POST", f"/api/runs/{run_id}/retry")

    def rerun(self, run_id: int) -> Run:
        """Create a new run with the same spec."""
        return self._json("POST", f"/api/runs/{run_id}/rerun")

    # Sweeps

    def list_sweeps(self, skip: int = 0, limit: int = 100) -> Page[Sweep]:
        return self._json("GET", "/api/sweeps", params={"skip": skip, "limit": limit})

    def get_sweep(self, sweep_id: int) -> Sweep:
        return self._json("GET", f"/api/sweeps/{sweep_id}")

    def cancel_sweep(self, sweep_id: int) -> Sweep:
        """Cancel every queued or running run of the sweep."""
        return self._json("POST", f"/api/sweeps/{sweep_id}/cancel")

    def retry_sweep(self, sweep_id: int) -> list[Run]:
        """Queue again every failed, lost, cancelled or diverged run of the sweep; return those runs.

        Raises GateLabError (404) for an unknown sweep. Runs in other statuses are
        left alone, so calling it twice queues nothing the second time.
        """
        return self._json("POST", f"/api/sweeps/{sweep_id}/retry")["data"]

    # Results

    def metrics(self, run_id: int) -> list[EpochMetrics]:
        """Return the metrics of every finished epoch, oldest first."""
        return self._json("GET", f"/api/runs/{run_id}/metrics")["data"]

    def samples(self, run_id: int, **params: Any) -> SamplesPage:
        """Return one page of per-sample results; `params` are the query parameters of GET /api/runs/{id}/samples."""
        return self._json("GET", f"/api/runs/{run_id}/samples", params=_drop_none(params))

    def samples_csv(self, run_id: int, **params: Any) -> str:
        """Return every matching per-sample row as CSV text."""
        query = {**_drop_none(params), "format": "csv"}
        return self._request("GET", f"/api/runs/{run_id}/samples", params=query).text

    def image_png(self, dataset: str, split: str, index: int, scale: int = 1) -> bytes:
        """Return one image of a data set as PNG bytes, enlarged `scale` times."""
        path = f"/api/datasets/{dataset}/images/{split}/{index}.png"
        return self._request("GET", path, params={"scale": scale}).content

    # Waiting

    def wait(
        self,
        run_ids: int | Iterable[int],
        timeout: float | None = None,
        poll_interval: float = 2.0,
        on_update: Callable[[list[Run]], None] | None = None,
    ) -> list[Run]:
        """Poll until every run reaches a final status and return the runs in the order of `run_ids`.

        `on_update` receives the runs after every poll. Raises TimeoutError, naming
        the unfinished runs, when `timeout` seconds pass first.
        """
        ids = [run_ids] if isinstance(run_ids, int) else list(run_ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            runs = [self.get_run(run_id) for run_id in ids]
            if on_update is not None:
                on_update(runs)
            pending = [run["id"] for run in runs if run["status"] not in FINAL_STATUSES]
            if not pending:
                return runs
            pause = poll_interval
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"runs {pending} did not finish within {timeout:g} s")
                pause = min(poll_interval, remaining)
            time.sleep(pause)

    def wait_sweep(self, sweep_id: int, timeout: float | None = None, poll_interval: float = 2.0) -> list[Run]:
        """Wait for every run of a sweep; see `wait`."""
        return self.wait(self.get_sweep(sweep_id)["run_ids"], timeout=timeout, poll_interval=poll_interval)

    # DataFrames

    def runs_frame(self, sweep_id: int | None = None, status: str | None = None) -> pd.DataFrame:
        """Return the matching runs as a DataFrame with one row per run and the columns in RUN_COLUMNS."""
        import pandas as pd

        return pd.DataFrame(self.all_runs(sweep_id=sweep_id, status=status), columns=RUN_COLUMNS)

    def metrics_frame(self, run_id: int) -> pd.DataFrame:
        """Return the per-epoch metrics as a DataFrame with one row per epoch, empty before the first epoch ends."""
        import pandas as pd

        return pd.DataFrame(self.metrics(run_id), columns=METRIC_COLUMNS)

    def samples_frame(self, run_id: int, include_gates: bool = False, **params: Any) -> pd.DataFrame:
        """Return every per-sample row that matches `params` as a DataFrame.

        With `include_gates`, each gate gets a column "gate:<name>" (one per residual
        unit for layer-level gates) beside the summary column "gate".
        """
        import pandas as pd

        rows: list[Sample] = []
        while True:
            page = self.samples(run_id, skip=len(rows), limit=10_000, include_gates=include_gates, **params)
            rows.extend(page["data"])
            gate_names = page["gate_names"]
            if not page["data"] or len(rows) >= page["count"]:
                break
        frame = pd.DataFrame(rows, columns=list(Sample.__annotations__))
        gates = frame.pop("gates")
        if include_gates:
            columns = [f"gate:{name}" for name in gate_names]
            values = gates.tolist() if len(frame) else []
            frame = pd.concat([frame, pd.DataFrame(values, columns=columns, index=frame.index)], axis=1)
        return frame

    # Per-sample analyses

    def submit_analysis(self, run_id: int, kind: str, params: JSON | None = None) -> JSON:
        """Queue an analysis (ood, hard_skip or train_samples) of a succeeded run; return it with status queued."""
        return self._json("POST", f"/api/runs/{run_id}/analyses", json={"kind": kind, "params": params or {}})

    def list_analyses(self, run_id: int, kind: str | None = None, skip: int = 0, limit: int = 100) -> Page[JSON]:
        params = _drop_none({"kind": kind, "skip": skip, "limit": limit})
        return self._json("GET", f"/api/runs/{run_id}/analyses", params=params)

    def get_analysis(self, analysis_id: int) -> JSON:
        return self._json("GET", f"/api/analyses/{analysis_id}")

    def wait_analysis(self, analysis_id: int, timeout: float | None = None, poll_interval: float = 2.0) -> JSON:
        """Poll until the analysis succeeds or fails and return it; raise TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            analysis = self.get_analysis(analysis_id)
            if analysis["status"] in ("succeeded", "failed"):
                return analysis
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"analysis {analysis_id} did not finish within {timeout} s")
            time.sleep(poll_interval)

    def distributions(self, run_id: int, **params: Any) -> JSON:
        """Return the g histogram, skip rate per class and unit x class heatmap of a run's results."""
        return self._json("GET", f"/api/runs/{run_id}/analysis/distributions", params=_drop_none(params))

    def difficulty(self, run_id: int, score_set: int | None = None, **params: Any) -> JSON:
        """Return Spearman correlations of g and, with a score set, the skip rate by score decile."""
        query = _drop_none({"score_set": score_set, **params})
        return self._json("GET", f"/api/runs/{run_id}/analysis/difficulty", params=query)

    def compare_runs(self, a: int, b: int, threshold: float = 0.5, **params: Any) -> JSON:
        """Return one page of the images whose skip decision differs between runs `a` and `b`."""
        query = _drop_none({"a": a, "b": b, "threshold": threshold, **params})
        return self._json("GET", "/api/runs/compare", params=query)

    def compare_runs_csv(self, a: int, b: int, threshold: float = 0.5, **params: Any) -> str:
        """Return every image whose skip decision differs between runs `a` and `b`, as CSV."""
        query = _drop_none({"a": a, "b": b, "threshold": threshold, **params, "format": "csv"})
        return self._request("GET", "/api/runs/compare", params=query).text

    def sweep_table(self, sweep_id: int) -> JSON:
        return self._json("GET", f"/api/sweeps/{sweep_id}/table")

    def sweep_table_csv(self, sweep_id: int) -> str:
        return self._request("GET", f"/api/sweeps/{sweep_id}/table", params={"format": "csv"}).text

    def upload_score_set(
        self,
        source: str | Path | bytes,
        dataset: str,
        split: str,
        name: str | None = None,
        key_column: str | None = None,
        score_column: str | None = None,
        filename: str = "scores.csv",
    ) -> JSON:
        """Import a CSV of (path or index, score) rows, from a file path or bytes, as a score set of one split."""
        if isinstance(source, bytes):
            content = source
        else:
            content = Path(source).read_bytes()
            filename = Path(source).name
        fields = _drop_none(
            {"dataset": dataset, "split": split, "name": name, "key_column": key_column, "score_column": score_column}
        )
        files = {"file": (filename, content, "text/csv")}
        return self._json("POST", "/api/score-sets", data=fields, files=files)

    def list_score_sets(self, skip: int = 0, limit: int = 100) -> Page[JSON]:
        return self._json("GET", "/api/score-sets", params={"skip": skip, "limit": limit})

    # Baselines

    def import_baseline(
        self,
        path: str | Path,
        arch: str,
        normalization: str,
        name: str | None = None,
        dataset: str = "cifar10",
        test_datasets: Iterable[str] = (),
        timeout: float = 3600.0,
    ) -> JSON:
        """Upload a checkpoint as a baseline and return {"created": bool, "baseline": {...}}.

        The API measures the checkpoint on each test set during the request, which takes
        minutes for 10,000 images on a CPU, hence the long default `timeout` in seconds.
        """
        path = Path(path)
        form: dict[str, Any] = {"arch": arch, "normalization": normalization, "dataset": dataset}
        if name is not None:
            form["name"] = name
        if test_datasets:
            form["test_dataset"] = list(test_datasets)
        with path.open("rb") as file:
            files = {"file": (path.name, file, "application/octet-stream")}
            return self._json("POST", "/api/baselines", data=form, files=files, timeout=timeout)

    def list_baselines(self, skip: int = 0, limit: int = 100) -> JSON:
        return self._json("GET", "/api/baselines", params={"skip": skip, "limit": limit})

    def all_baselines(self) -> list[JSON]:
        """Return every baseline, newest first, following the pagination."""
        baselines: list[JSON] = []
        while True:
            page = self.list_baselines(skip=len(baselines), limit=1000)
            baselines.extend(page["data"])
            if not page["data"] or len(baselines) >= page["count"]:
                return baselines

    def get_baseline(self, baseline_id: int) -> JSON:
        return self._json("GET", f"/api/baselines/{baseline_id}")


def _error_from_response(response: httpx.Response) -> GateLabError:
    """Build the error for a non-2xx response, keeping the server's message word for word."""
    try:
        body = response.json()
    except ValueError:
        return GateLabError(response.status_code, response.text or response.reason_phrase)
    if not isinstance(body, dict):
        return GateLabError(response.status_code, json.dumps(body), body)
    detail = body.get("detail")
    message = body.get("message")
    # A few bodies carry only a short label in "message" and the explanation in "detail".
    if message is None or isinstance(detail, str):
        message = detail if isinstance(detail, str) else json.dumps(detail)
    return GateLabError(response.status_code, message, detail)


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}
