"""The code version that every run records: the git commit, or what the image was built from."""

from __future__ import annotations

import re

from gating_core.experiment import code_version


def test_checkout_gives_its_commit():
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", code_version())


def test_without_git_the_build_variable_is_used(monkeypatch):
    # An empty PATH hides git, as in the Docker image.
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("GATELAB_CODE_VERSION", "0123abcd")

    assert code_version() == "0123abcd"


def test_without_git_or_variable_it_is_unknown(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("GATELAB_CODE_VERSION", raising=False)

    assert code_version() == "unknown"
