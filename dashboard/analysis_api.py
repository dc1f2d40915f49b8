"""Cached loaders for the analysis pages. They fetch aggregates, never every sample row.

Results of a finished run change only when an analysis adds to them, so they
keep RESULT_TTL_SECONDS; the analysis lists keep LIVE_TTL_SECONDS, because a
queued analysis becomes running and then succeeds while the page is open.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.api import LIVE_TTL_SECONDS, RESULT_TTL_SECONDS, get_client


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def distributions(run_id: int, threshold: float, dataset: str | None = None, split: str = "test", variant: str = "") -> dict[str, Any]:
    return get_client().distributions(run_id, threshold=threshold, dataset=dataset, split=split, variant=variant)


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def difficulty(run_id: int, threshold: float, score_set: int | None = None, split: str | None = None) -> dict[str, Any]:
    return get_client().difficulty(run_id, score_set=score_set, threshold=threshold, split=split)


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def comparison(a: int, b: int, threshold: float, skip: int, limit: int) -> dict[str, Any]:
    return get_client().compare_runs(a, b, threshold=threshold, skip=skip, limit=limit)


@st.cache_data(ttl=RESULT_TTL_SECONDS, show_spinner=False)
def comparison_csv(a: int, b: int, threshold: float) -> str:
    return get_client().compare_runs_csv(a, b, threshold=threshold)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def sweep_table(sweep_id: int) -> dict[str, Any]:
    return get_client().sweep_table(sweep_id)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def sweep_table_csv(sweep_id: int) -> str:
    return get_client().sweep_table_csv(sweep_id)


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def analyses(run_id: int, kind: str | None = None) -> list[dict[str, Any]]:
    return get_client().list_analyses(run_id, kind=kind, limit=1000)["data"]


@st.cache_data(ttl=LIVE_TTL_SECONDS, show_spinner=False)
def score_sets() -> list[dict[str, Any]]:
    return get_client().list_score_sets(limit=1000)["data"]


def clear_analysis_caches() -> None:
    """Forget cached lists after this session submitted an analysis or uploaded scores."""
    for loader in (analyses, score_sets, distributions, difficulty):
        loader.clear()
