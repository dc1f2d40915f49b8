"""Schemathesis sends generated requests to every operation of the OpenAPI schema: none may end in a 5xx.

NOTE: schemathesis's pytest loader (`schemathesis.pytest.from_fixture`) fails
under pytest 9 (it sets `node._nodeid`), so this test draws cases from each
operation's Hypothesis strategy itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.services import postgres_database

pytestmark = pytest.mark.slow

# Examples per operation and generation mode. With about 40 operations this is
# about 1,200 requests in process; raise it locally for a deeper search.
EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def database_url() -> Iterator[str]:
    """PostgreSQL only: it rejects inputs that SQLite stores (NUL bytes, integers above 64 bits)."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def api_schema(settings_env: dict[str, str]) -> Any:
    from backend.main import create_app
    from gatelab.settings import Settings

    values = {key.removeprefix("GATELAB_").lower(): value for key, value in settings_env.items()}
    # Small sweeps keep each generated request cheap; the cap itself is tested elsewhere.
    app = create_app(Settings(**values, max_runs_per_sweep=4), run_reaper=False)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def server_errors(operation: Any, mode: GenerationMode) -> list[str]:
    """Send generated cases to one operation and return a line for each 5xx response."""
    errors: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        # The same examples on every run, so that CI results do not change from run to run.
        derandomize=True,
        # No shrinking, so the run stays bounded; the first failing case is reported as generated.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        request = f"{operation.label} ({mode.value}) path={case.path_parameters} query={case.query} body={case.body!r:.300}"
        try:
            response = case.call()
        except Exception as error:  # the in-process transport re-raises what the app did not handle (a 500)
            errors.append(f"{request}: unhandled {type(error).__name__}: {str(error)[:300]}")
            return
        if response.status_code >= 500:
            errors.append(f"{request}: {response.status_code} {response.text[:300]}")

    try:
        send()
    except Unsatisfiable:
        # An operation without parameters or body has no invalid input to generate.
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid input could be generated"
    return errors


def test_api_never_answers_5xx(api_schema: Any):
    errors: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            errors.extend(server_errors(operation, mode))

    assert operations >= 10
    if errors:
        pytest.fail(f"{len(errors)} generated requests ended in a server error:\n" + "\n".join(errors))
