"""GateLab dashboard. Start it with `streamlit run dashboard/app.py` or `gatelab up`.

It reads everything from the GateLab API at GATELAB_API_URL.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="GateLab", layout="wide")
navigation = st.navigation(
    [
        st.Page(VIEWS / "runs.py", title="Runs", url_path="runs", default=True),
        st.Page(VIEWS / "launch.py", title="Launch", url_path="launch"),
        st.Page(VIEWS / "sweep.py", title="Sweep", url_path="sweep"),
        st.Page(VIEWS / "run.py", title="Run", url_path="run"),
        st.Page(VIEWS / "distributions.py", title="Distributions", url_path="distributions"),
        st.Page(VIEWS / "difficulty.py", title="Difficulty", url_path="difficulty"),
        st.Page(VIEWS / "ood.py", title="Out-of-distribution", url_path="ood"),
        st.Page(VIEWS / "hard_skip.py", title="Hard skip", url_path="hard-skip"),
        st.Page(VIEWS / "compare.py", title="Compare runs", url_path="compare"),
        st.Page(VIEWS / "reproducibility.py", title="Reproducibility", url_path="reproducibility"),
        st.Page(VIEWS / "baselines.py", title="Baselines", url_path="baselines"),
    ]
)
navigation.run()
