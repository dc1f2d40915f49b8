"""A Streamlit dashboard process beside the running stack, and a headless Chromium driven by Playwright.

Chromium is Debian's /usr/bin/chromium (`make test` installs it); Playwright
never downloads a browser here. Where Chromium is missing or cannot start, the
tests skip, except with CI=true, where they fail.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from scripts.screenshot_tools import CHROMIUM, CHROMIUM_ARGS
from tests.support.services import skip_or_fail, start_dashboard

# Streamlit renders slowly on a loaded 2-core machine; each wait is bounded by this.
PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def dashboard_url(running_stack) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The dashboard, as a real Streamlit server, on the running stack's API."""
    folder = running_stack["folder"]
    process, url = start_dashboard(running_stack["environment"], folder / "dashboard.log", running_stack["api_url"])
    try:
        yield url
    finally:
        process.stop()


@pytest.fixture(scope="session")
def chromium_context(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A headless Chromium with a fresh profile, as a Playwright browser context."""
    if shutil.which(CHROMIUM) is None:
        skip_or_fail(f"{CHROMIUM} is missing; install Debian's chromium package (scripts/install-system-packages.sh)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is missing; install the project with its test extras")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1400, "height": 1000},
            )
        except Error as error:
            skip_or_fail(f"Chromium at {CHROMIUM} cannot be started: {error.message.splitlines()[0]}")
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(chromium_context):  # type: ignore[no-untyped-def]
    """A new browser tab, closed after the test."""
    tab = chromium_context.new_page()
    yield tab
    tab.close()
