"""The README documents every setting as the settings model describes it, and its links point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

from gatelab.settings import Settings
from scripts.settings_table import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_lists_every_setting():
    text = README.read_text(encoding="utf-8")

    missing = [name for name in Settings.model_fields if f"`GATELAB_{name.upper()}`" not in text]

    assert missing == []


def test_readme_settings_table_is_current():
    text = README.read_text(encoding="utf-8")

    assert settings_table() in text, "regenerate the table with: python -m scripts.settings_table"


def test_readme_links_exist():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", text)

    assert targets
    missing = [target for target in targets if not (README.parent / target).exists()]
    assert missing == []
