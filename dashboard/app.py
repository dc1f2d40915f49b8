"""GateLab dashboard. Start it with `streamlit run dashboard/app.py` or `gatelab up`.

It reads everything from the GateLab API at GATELAB_API_URL.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="GateLab", layout="wide")
navigation = st.navigation(
    [
        st.Page(PAGES / "runs.py", title="Runs", url_path="runs", default=True),
        st.Page(PAGES / "launch.py", title="Launch", url_path="launch"),
        st.Page(PAGES / "sweep.py", title="Sweep", url_path="sweep"),
        st.Page(PAGES / "run.py", title="Run", url_path="run"),
        st.Page(PAGES / "distributions.py", title="Distributions", url_path="distributions"),
        st.Page(PAGES / "difficulty.py", title="Difficulty", url_path="difficulty"),
        st.Page(PAGES / "ood.py", title="Out-of-distribution", url_path="ood"),
        st.Page(PAGES / "hard_skip.py", title="Hard skip", url_path="hard-skip"),
        st.Page(PAGES / "compare.py", title="Compare runs", url_path="compare"),
        st.Page(PAGES / "reproducibility.py", title="Reproducibility", url_path="reproducibility"),
        st.Page(PAGES / "baselines.py", title="Baselines", url_path="baselines"),
    ]
)
navigation.run()
