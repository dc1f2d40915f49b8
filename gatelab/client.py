"""A typed Python client for the GateLab REST API.

It needs only httpx (and pandas for the DataFrame helpers), never torch or
gating_core, so scripts and the dashboard can import it alone:

    from gatelab.client import GateLabClient

    client = GateLabClient("http://127.0.0.1:8000")
    sweep = client.submit_sweep_file("examples/quick-sweep.json")
    client.wait(sweep["run_ids"])
    print(client.runs_frame(sweep_id=sweep["id"]))
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import pandas as pd

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "diverged", "lost"})
JSON = dict[str, Any]


class GateLabError(RuntimeError):
    """The API rejected a request or could not be reached; `message` is the server's own explanation."""

    def __init__(self, status_code: int | None, message: str, detail: Any = None) -> None:
        super().__init__(message if status_code is None else f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.detail = detail


def load_spec_file(path: str | Path) -> JSON:
    """Read a run or sweep spec from a JSON or YAML file."""
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a spec file must contain a mapping at the top level; received {type(data).__name__}")
    return data


def is_sweep(spec: JSON) -> bool:
    """A sweep has a grid; a run spec has none."""
    return "grid" in spec


class GateLabClient:
    """Calls the GateLab API. Every method raises GateLabError on a non-2xx response."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
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
        except httpx.HTTPError as error:
            raise GateLabError(None, f"cannot reach the GateLab API at {self.base_url}: {error}") from error
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            raise GateLabError(response.status_code, response.text or response.reason_phrase) from None
        message = body.get("message") if isinstance(body, dict) else None
        detail = body.get("detail") if isinstance(body, dict) else body
        if message is None or message in ("database unavailable", "request body too large"):
            message = detail if isinstance(detail, str) else json.dumps(detail)
        raise GateLabError(response.status_code, message, detail)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # Health and catalogue

    def health(self) -> JSON:
        return self._json("GET", "/api/health")

    def presets(self) -> list[JSON]:
        return self._json("GET", "/api/presets")["data"]

    # Submitting

    def submit_run(self, spec: JSON) -> JSON:
        return self._json("POST", "/api/runs", json=spec)

    def submit_sweep(self, sweep: JSON) -> JSON:
        return self._json("POST", "/api/sweeps", json=sweep)

    def submit(self, spec: JSON) -> JSON:
        """Submit a sweep when the spec has a grid, otherwise one run."""
        return self.submit_sweep(spec) if is_sweep(spec) else self.submit_run(spec)

    def submit_file(self, path: str | Path) -> JSON:
        return self.submit(load_spec_file(path))

    def submit_sweep_file(self, path: str | Path) -> JSON:
        return self.submit_sweep(load_spec_file(path))

    # Runs and sweeps

    def list_runs(self, sweep_id: int | None = None, status: str | None = None, skip: int = 0, limit: int = 100) -> JSON:
        params = {"skip": skip, "limit": limit}
        if sweep_id is not None:
            params["sweep_id"] = sweep_id
        if status is not None:
            params["status"] = status
        return self._json("GET", "/api/runs", params=params)

    def all_runs(self, sweep_id: int | None = None, status: str | None = None) -> list[JSON]:
        """Return every matching run, following the pagination."""
        runs: list[JSON] = []
        while True:
            page = self.list_runs(sweep_id=sweep_id, status=status, skip=len(runs), limit=1000)
            runs.extend(page["data"])
            if not page["data"] or len(runs) >= page["count"]:
                return runs

    def get_run(self, run_id: int) -> JSON:
        return self._json("GET", f"/api/runs/{run_id}")

    def cancel(self, run_id: int) -> JSON:
        return self._json("POST", f"/api/runs/{run_id}/cancel")

    def retry(self, run_id: int) -> JSON:
        return self._json("POST", f"/api/runs/{run_id}/retry")

    def rerun(self, run_id: int) -> JSON:
        return self._json("POST", f"/api/runs/{run_id}/rerun")

    def list_sweeps(self, skip: int = 0, limit: int = 100) -> JSON:
        return self._json("GET", "/api/sweeps", params={"skip": skip, "limit": limit})

    def get_sweep(self, sweep_id: int) -> JSON:
        return self._json("GET", f"/api/sweeps/{sweep_id}")

    def cancel_sweep(self, sweep_id: int) -> JSON:
        return self._json("POST", f"/api/sweeps/{sweep_id}/cancel")

    def metrics(self, run_id: int) -> list[JSON]:
        return self._json("GET", f"/api/runs/{run_id}/metrics")["data"]

    def samples(self, run_id: int, **params: Any) -> JSON:
        """Return one page of per-sample results; parameters as in GET /api/runs/{id}/samples."""
        return self._json("GET", f"/api/runs/{run_id}/samples", params=_drop_none(params))

    def samples_csv(self, run_id: int, **params: Any) -> str:
        return self._request("GET", f"/api/runs/{run_id}/samples", params={**_drop_none(params), "format": "csv"}).text

    def image_png(self, dataset: str, split: str, index: int, scale: int = 1) -> bytes:
        return self._request("GET", f"/api/datasets/{dataset}/images/{split}/{index}.png", params={"scale": scale}).content

    # Waiting

    def wait(
        self,
        run_ids: Iterable[int],
        timeout: float | None = None,
        poll_interval: float = 2.0,
        on_update: Callable[[list[JSON]], None] | None = None,
    ) -> list[JSON]:
        """Poll until every run reaches a final status; return the final runs.

        Raises TimeoutError when `timeout` seconds pass first.
        """
        ids = list(run_ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            runs = [self.get_run(run_id) for run_id in ids]
            if on_update is not None:
                on_update(runs)
            if all(run["status"] in FINAL_STATUSES for run in runs):
                return runs
            if deadline is not None and time.monotonic() > deadline:
                pending = [run["id"] for run in runs if run["status"] not in FINAL_STATUSES]
                raise TimeoutError(f"runs {pending} did not finish within {timeout} s")
            time.sleep(poll_interval)

    # DataFrames

    def runs_frame(self, sweep_id: int | None = None, status: str | None = None) -> pd.DataFrame:
        import pandas as pd

        columns = [
            "id", "name", "status", "progress", "epoch", "total_epochs", "gate_kind", "gate_loss_weight",
            "seed", "test_accuracy", "train_loss", "mean_gate", "skip_rate", "worker", "gpu",
        ]
        return pd.DataFrame(self.all_runs(sweep_id=sweep_id, status=status), columns=columns)

    def metrics_frame(self, run_id: int) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.metrics(run_id))

    def samples_frame(self, run_id: int, include_gates: bool = False, **params: Any) -> pd.DataFrame:
        """Return every per-sample row that matches `params` as a DataFrame, one column per gate when asked."""
        import pandas as pd

        rows: list[JSON] = []
        gate_names: list[str] = []
        while True:
            page = self.samples(run_id, skip=len(rows), limit=10_000, include_gates=include_gates, **params)
            rows.extend(page["data"])
            gate_names = page["gate_names"]
            if not page["data"] or len(rows) >= page["count"]:
                break
        frame = pd.DataFrame(rows)
        if include_gates and "gates" in frame:
            gates = pd.DataFrame(frame.pop("gates").tolist(), columns=[f"gate:{name}" for name in gate_names])
            frame = pd.concat([frame, gates], axis=1)
        elif "gates" in frame:
            frame = frame.drop(columns="gates")
        return frame


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}
