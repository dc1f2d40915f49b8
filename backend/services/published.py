"""Published figures for a sweep's results table, taken from the preset that the sweep came from.

A preset's `published` entry lists test errors in percent with their statistic
and source. The table shows the mean over runs where the source gives one,
else the first figure, converted to an accuracy so that it sits beside the
measured mean test accuracy.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def _presets() -> dict[str, Any]:
    # Read defensively: the table stays usable without the preset catalogue.
    try:
        from gating_core.presets import PRESETS
    except ImportError:
        return {}
    return PRESETS


def published_accuracy(preset_name: str | None) -> tuple[float | None, str | None]:
    """Return (accuracy, description of the figure and its source) for a preset, or (None, None)."""
    if not preset_name:
        return None, None
    preset = _presets().get(preset_name)
    published = getattr(preset, "published", None) or {}
    results = published.get("results") or []
    if not results:
        return None, None
    means = [result for result in results if str(result.get("statistic", "")).startswith("mean")]
    chosen = means[0] if means else results[0]
    try:
        error_percent = float(chosen["test_error_percent"])
    except (KeyError, TypeError, ValueError):
        logger.warning("preset %s has a published figure without a numeric test_error_percent: %s", preset_name, chosen)
        return None, None
    spread = f" ± {chosen['std']}" if chosen.get("std") is not None else ""
    description = (
        f"{chosen.get('model', preset_name)}: {error_percent}%{spread} test error, "
        f"{chosen.get('statistic', 'as reported')} ({chosen.get('source', 'source not given')})"
    )
    return round(1.0 - error_percent / 100.0, 6), description
