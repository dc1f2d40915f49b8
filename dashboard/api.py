"""The dashboard's only way to the data: the REST client, with cached loaders.

Cached reads expire after a stated time-to-live, so a page refresh shows
progress within that time while repeated renders of one page stay fast.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from gatelab.client import GateLabClient, GateLabError
from gatelab.settings import get_settings

# Runs change while they train; their lists and details expire quickly.
LIVE_TTL_SECONDS = 3
# Metrics, samples and images of a finished run do not change.
RESULT_TTL_SECONDS = 300


@st.cache_resource
def get_client() -> GateLabClient:
    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return GateLabClient(settings.api_url, token=token)


def show_error(error: GateLabError) -> None:
    """Render an API error in the page, with the server's message, instead of a traceback."""
    if error.status_code is None:
        st.error(f"The GateLab API is unreachable. {error.message}")
    else:
        st.error(f"The API rejected the request (HTTP {error.status_code}): {error.message}")


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def runs_page(sweep_id: int | None, status: str | None, skip: int, limit: int) -> dict[str, Any]:
    return get_client().list_runs(sweep_id=sweep_id, status=status, skip=skip, limit=limit)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def sweep_runs(sweep_id: int) -> pd.DataFrame:
    return pd.DataFrame(get_client().all_runs(sweep_id=sweep_id))


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def run(run_id: int) -> dict[str, Any]:
    return get_client().get_run(run_id)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def sweeps() -> list[dict[str, Any]]:
    return get_client().list_sweeps(limit=1000)["data"]


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def sweep(sweep_id: int) -> dict[str, Any]:
    return get_client().get_sweep(sweep_id)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def metrics(run_id: int) -> pd.DataFrame:
    return pd.DataFrame(get_client().metrics(run_id))


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def samples_page(run_id: int, **params: Any) -> dict[str, Any]:
    return get_client().samples(run_id, **params)


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False, max_entries=5000)
def image(dataset: str, split: str, index: int, scale: int = 3) -> bytes:
    return get_client().image_png(dataset, split, index, scale=scale)


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def openapi() -> dict[str, Any]:
    return get_client().openapi()


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def presets() -> list[dict[str, Any]]:
    try:
        return get_client().presets()
    except GateLabError:
        return []


def clear_live_caches() -> None:
    for loader in (runs_page, sweep_runs, run, sweeps, sweep, metrics):
        loader.clear()


def rerun_button(run_id: int, key: str, **button_options: Any) -> None:
    """Draw a button that queues a new run with this run's spec, and link to the new run once it is queued."""
    if not st.button("Re-run with the same spec", key=key, **button_options):
        return
    try:
        new_run = get_client().rerun(run_id)
    except GateLabError as error:
        show_error(error)
        return
    clear_live_caches()
    st.success(f"Run {new_run['id']} is queued with the same spec: [open it](run?run={new_run['id']})")

