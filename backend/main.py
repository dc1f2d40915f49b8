"""The FastAPI application. Start it with `uvicorn --factory backend.main:create_app` or `gatelab api`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import install_error_handlers
from backend.api.routes import datasets, health, presets, runs, samples, sweeps
from backend.api.routes import baselines
from backend.api.routes import analysis, analysis_scores, analysis_tables, analysis_views
from backend.db.migrate import upgrade_database
from backend.db.session import get_engine, session_factory
from backend.queue import RunQueue
from backend.services.reaper import reap
from backend.storage.baselines import install_run_checks
from gatelab import __version__
from gatelab.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# During an outage the reaper logs its first failure with the traceback, then
# one line per this many failed passes, so the log does not fill up.
REAPER_FAILURES_PER_LOG = 20

DESCRIPTION = """
Launch gated-ResNet runs and lambda sweeps, follow their progress, and read
their metrics and per-sample gate values. Every write needs
`Authorization: Bearer <token>` when the server has GATELAB_API_TOKEN set.
"""


class BodySizeLimit:
    """Rejects request bodies above a size limit with 413 before the route reads them."""

    def __init__(self, app: ASGIApp, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        is_upload = headers.get(b"content-type", b"").startswith(b"multipart/")
        limit = self.max_upload_bytes if is_upload else self.max_json_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _reject_too_large(send, int(declared), limit)
            return

        # A body without a declared length is counted while the route reads
        # it. Past the limit, the route receives a disconnect and this middleware
        # answers 413 in its place, unless the route has already started a
        # response. FastAPI turns any exception raised while it reads a body
        # into a 400, so raising here would hide the 413.
        received = 0
        rejected = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit and not response_started:
                rejected = True
                await _reject_too_large(send, received, limit)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return
            response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def _reject_too_large(send: Send, received: int, limit: int) -> None:
    body = (
        f'{{"detail": "request body too large: {received} bytes; the limit is {limit} bytes",'
        f' "message": "request body too large"}}'
    ).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def _reaper_loop(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    failures = 0
    while True:
        await asyncio.sleep(settings.reaper_interval)
        try:
            await asyncio.to_thread(reap, app.state.sessions, app.state.queue, settings)
        except Exception as error:  # keep reaping after a database or broker outage
            failures += 1
            if failures == 1:
                logger.exception("reaper pass failed; retrying every %.0f s", settings.reaper_interval)
            elif failures % REAPER_FAILURES_PER_LOG == 0:
                logger.error("reaper pass failed %d times in a row; last error: %s", failures, error)
            continue
        if failures:
            logger.info("reaper pass succeeded again after %d failures", failures)
            failures = 0


def create_app(settings: Settings | None = None, run_reaper: bool = True) -> FastAPI:
    """Build the API for `settings`; the database is migrated to the newest schema on start-up."""
    settings = settings or get_settings()
    url = settings.resolved_database_url

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # uvicorn configures only its own loggers; this shows the reaper's and
        # the error handlers' messages too. It does nothing where a host
        # process (or pytest) already configured logging.
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        await asyncio.to_thread(upgrade_database, url)
        task = asyncio.create_task(_reaper_loop(app)) if run_reaper else None
        logger.info("GateLab API %s started", __version__)
        yield
        if task is not None:
            task.cancel()
        logger.info("GateLab API stopped")

    app = FastAPI(title="GateLab", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.sessions = session_factory(url)
    app.state.engine = get_engine(url)
    app.state.queue = RunQueue(settings.broker_url, settings.queue)
    install_error_handlers(app)
    # Before the runs router, whose /api/runs/{run_id} would take "compare" as a run id.
    app.include_router(analysis_views.compare_router)
    for module in (health, runs, sweeps, samples, datasets, presets):
        app.include_router(module.router)
    for module in (analysis, analysis_views, analysis_tables, analysis_scores):
        app.include_router(module.router)
    app.include_router(baselines.router)
    install_run_checks(app.state.sessions)
    app.add_middleware(
        BodySizeLimit, max_json_bytes=settings.max_request_bytes, max_upload_bytes=settings.max_upload_bytes
    )
    return app
