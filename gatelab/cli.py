"""The `gatelab` command: start the stack, submit, follow and export runs, and manage the database.

Exit codes: 0 on success, 1 when a run did not succeed or the API rejected a
request, 2 for usage errors such as a missing argument or an unreadable spec
file. API messages are printed to stderr word for word, and `--json` prints
only JSON on stdout.
"""

from __future__ import annotations

import enum
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from gatelab.cli_baselines import baselines_app
from gatelab.cli_catalog import catalog_app
from gatelab.cli_output import (
    EXIT_FAILURE,
    EXIT_USAGE,
    console,
    fail,
    follow_runs,
    print_json,
    print_runs_table,
    report_error,
)
from gatelab.client import GateLabClient, GateLabError, Run, load_spec_file
from gatelab.settings import get_settings

app = typer.Typer(help="GateLab: run and analyse gating experiments on residual networks.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(baselines_app, name="baselines")
app.add_typer(catalog_app)  # models, presets


class ExportFormatChoice(str, enum.Enum):
    csv = "csv"
    parquet = "parquet"


class SplitChoice(str, enum.Enum):
    test = "test"
    train = "train"


JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of text.")]
SweepOption = Annotated[int | None, typer.Option("--sweep", help="The runs of this sweep.", min=1)]
RunIdsArgument = Annotated[list[int] | None, typer.Argument(help="Run ids.", show_default=False)]

_api_url: str | None = None


def client() -> GateLabClient:
    """Return a client for --api-url, else for GATELAB_API_URL, with GATELAB_API_TOKEN when set."""
    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return GateLabClient(_api_url or settings.api_url, token=token)


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="Base URL of the GateLab API. Default: GATELAB_API_URL or http://127.0.0.1:8000.")
    ] = None,
) -> None:
    global _api_url
    _api_url = api_url
    # httpx logs every request at INFO, so other libraries log warnings only unless --verbose.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("gatelab").setLevel(logging.DEBUG if verbose else logging.INFO)


# Services


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Number of API processes.")] = 1,
) -> None:
    """Run the API server (migrations are applied on start-up)."""
    import uvicorn

    uvicorn.run("backend.main:create_app", factory=True, host=host, port=port, workers=workers)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Runs trained at once; use 1 per GPU.")] = 1,
    name: Annotated[str, typer.Option(help="Worker node name; give each worker its own.")] = "worker@%h",
) -> None:
    """Run a Celery worker that trains queued runs."""
    from worker.celery_app import celery_app

    settings = get_settings()
    celery_app.worker_main(
        ["worker", "--pool=prefork", f"--concurrency={concurrency}", f"--hostname={name}", "-Q", settings.queue, "--loglevel=INFO"]
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to the configured database."""
    from backend.db.migrate import upgrade_database

    upgrade_database(get_settings().resolved_database_url)
    console.print("database is at the newest schema")


@app.command()
def up(
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    dashboard_port: Annotated[int, typer.Option(help="Port of the dashboard.")] = 8501,
    workers: Annotated[int, typer.Option(help="Number of local workers.")] = 1,
    dashboard: Annotated[bool, typer.Option(help="Start the dashboard.")] = True,
) -> None:
    """Start Redis (embedded when GATELAB_BROKER_URL is unset), the API, workers and the dashboard until Ctrl-C."""
    stack = _start_stack(api_port, dashboard_port, workers, dashboard)
    _serve_until_interrupted(stack)


@app.command()
def demo(
    spec_file: Annotated[Path, typer.Argument(help="Sweep or run spec to submit.")] = Path("examples/quick-sweep.json"),
    api_port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
    dashboard_port: Annotated[int, typer.Option(help="Port of the dashboard.")] = 8501,
    exit_when_done: Annotated[bool, typer.Option(help="Stop the stack once the runs finish.")] = False,
) -> None:
    """Start the stack, submit a spec, follow its runs, then keep serving the dashboard."""
    spec = _load_spec(spec_file)
    stack = _start_stack(api_port, dashboard_port, 1, True)
    try:
        with GateLabClient(stack.api_url) as local:
            created = local.submit(spec)
            run_ids = created.get("run_ids", [created["id"]])
            console.print(f"submitted {spec_file}: runs {run_ids}")
            runs = follow_runs(local, run_ids)
    except GateLabError as error:
        stack.stop()
        fail(error.message)
    except KeyboardInterrupt:
        console.print("stopping ...")
        stack.stop()
        console.print("stopped")
        raise typer.Exit(130) from None
    print_runs_table(runs)
    if "run_ids" in created:
        console.print(f"sweep page: {stack.dashboard_url}/sweep?sweep={created['id']}")
    console.print(f"gallery of the first run: {stack.dashboard_url}/run?run={run_ids[0]}")
    if exit_when_done:
        stack.stop()
        failed = [run for run in runs if run["status"] != "succeeded"]
        raise typer.Exit(1 if failed else 0)
    _serve_until_interrupted(stack)


def _start_stack(api_port: int, dashboard_port: int, workers: int, dashboard: bool):  # type: ignore[no-untyped-def]
    from gatelab.launcher import LaunchError, Stack

    stack = Stack(get_settings(), api_port=api_port, dashboard_port=dashboard_port, workers=workers, with_dashboard=dashboard)
    # SIGTERM (from `kill` or a supervisor) stops the services like Ctrl-C does,
    # so that no API, worker or Redis outlives this command. SIGINT gets the same
    # handler because a shell without job control starts background commands with
    # SIGINT ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    console.print("starting GateLab (logs in %s) ..." % stack.log_dir)
    try:
        stack.start()
    except LaunchError as error:
        fail(str(error))
    console.print(f"API:       {stack.api_url}  (docs at {stack.api_url}/docs)")
    if dashboard:
        console.print(f"dashboard: {stack.dashboard_url}")
    return stack


def _interrupt(_signal_number: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _serve_until_interrupted(stack) -> None:  # type: ignore[no-untyped-def]
    """Watch the services once a second until Ctrl-C or SIGTERM, then stop them all; exit 1 if one dies."""
    console.print("press Ctrl-C to stop")
    try:
        while True:
            failed = stack.failed_services()
            if failed:
                names = ", ".join(f"{service.name} (log {service.log_path})" for service in failed)
                stack.stop()
                fail(f"a service stopped unexpectedly: {names}")
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping ...")
        stack.stop()
        console.print("stopped")


# Runs


def _load_spec(spec_file: Path) -> dict[str, Any]:
    """Read a spec file; an unreadable or malformed file is a usage error (exit 2)."""
    try:
        return load_spec_file(spec_file)
    except (ValueError, OSError) as error:
        fail(str(error), EXIT_USAGE)


@app.command()
def submit(
    spec_file: Annotated[Path, typer.Argument(help="JSON or YAML run spec, or a sweep with a 'grid'.")],
    watch_runs: Annotated[bool, typer.Option("--watch", help="Follow the new runs until they finish.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Submit a run or a sweep from a file."""
    spec = _load_spec(spec_file)
    api_client = client()
    try:
        created = api_client.submit(spec)
    except GateLabError as error:
        fail(error.message)
    run_ids = created.get("run_ids", [created["id"]])
    if not as_json:
        if "run_ids" in created:
            console.print(f"sweep {created['id']} queued with runs {run_ids}")
        else:
            console.print(f"run {created['id']} queued")
    if not watch_runs:
        if as_json:
            print_json(created)
        return
    _watch(api_client, run_ids, as_json, timeout=None, interval=2.0)


@app.command()
def status(
    sweep: SweepOption = None,
    run_status: Annotated[str | None, typer.Option("--status", help="Only runs with this status, e.g. failed.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show runs, newest first, with their status, progress and results."""
    try:
        runs = client().all_runs(sweep_id=sweep, status=run_status)
    except GateLabError as error:
        fail(error.message)
    if as_json:
        print_json(runs)
    elif not runs:
        console.print("no runs match")
    else:
        print_runs_table(runs)


@app.command()
def watch(
    run_ids: RunIdsArgument = None,
    sweep: SweepOption = None,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds (exit 1).", min=0)] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls of the API.", min=0.1)] = 2.0,
    as_json: JsonOption = False,
) -> None:
    """Follow runs with a progress bar each (epoch, ETA) until they finish, then print their final metrics.

    Exits 1 if any run did not succeed.
    """
    _require_runs_or_sweep(run_ids, sweep)
    api_client = client()
    if sweep is not None:
        try:
            run_ids = api_client.get_sweep(sweep)["run_ids"]
        except GateLabError as error:
            fail(error.message)
    _watch(api_client, list(run_ids or []), as_json, timeout, interval)


def _watch(api_client: GateLabClient, run_ids: list[int], as_json: bool, timeout: float | None, interval: float) -> None:
    try:
        runs = follow_runs(api_client, run_ids, quiet=as_json, timeout=timeout, poll_interval=interval)
    except GateLabError as error:
        fail(error.message)
    except TimeoutError as error:
        fail(str(error))
    if as_json:
        print_json(runs)
    else:
        print_runs_table(runs, title="final metrics")
    if any(run["status"] != "succeeded" for run in runs):
        raise typer.Exit(EXIT_FAILURE)


def _require_runs_or_sweep(run_ids: list[int] | None, sweep: int | None) -> None:
    if not run_ids and sweep is None:
        raise typer.BadParameter("give one or more run ids, or --sweep ID", param_hint="RUN_IDS")
    if run_ids and sweep is not None:
        raise typer.BadParameter("give run ids or --sweep ID, not both", param_hint="RUN_IDS")


@app.command()
def cancel(run_ids: RunIdsArgument = None, sweep: SweepOption = None, as_json: JsonOption = False) -> None:
    """Cancel queued or running runs, or every unfinished run of a sweep; finished runs stay as they are."""
    _require_runs_or_sweep(run_ids, sweep)
    api_client = client()
    if sweep is None:
        _apply_to_runs(api_client, list(run_ids or []), api_client.cancel, as_json)
        return
    try:
        cancelled = api_client.cancel_sweep(sweep)
    except GateLabError as error:
        fail(error.message)
    if as_json:
        print_json(cancelled)
    else:
        counts = ", ".join(f"{count} {name}" for name, count in sorted(cancelled["status_counts"].items()))
        console.print(f"sweep {sweep}: cancel requested; runs now {counts}")


@app.command()
def retry(run_ids: RunIdsArgument = None, sweep: SweepOption = None, as_json: JsonOption = False) -> None:
    """Queue failed, lost, cancelled or diverged runs again, or every such run of a sweep."""
    _require_runs_or_sweep(run_ids, sweep)
    api_client = client()
    if sweep is None:
        _apply_to_runs(api_client, list(run_ids or []), api_client.retry, as_json)
        return
    try:
        retried = api_client.retry_sweep(sweep)
    except GateLabError as error:
        fail(error.message)
    if as_json:
        print_json(retried)
    elif not retried:
        console.print(f"sweep {sweep} has no failed, lost, cancelled or diverged runs; nothing to retry")
    else:
        console.print(f"sweep {sweep}: queued runs {[run['id'] for run in retried]} again")


def _apply_to_runs(api_client: GateLabClient, run_ids: list[int], action: Callable[[int], Run], as_json: bool) -> None:
    """Apply `action` to each run, report each rejection word for word, and exit 1 if any was rejected."""
    results = []
    rejected = False
    for run_id in run_ids:
        try:
            results.append(action(run_id))
        except GateLabError as error:
            rejected = True
            report_error(f"run {run_id}: {error.message}")
    if as_json:
        print_json(results)
    else:
        for run in results:
            cancelling = " (stopping)" if run["cancel_requested"] and run["status"] == "running" else ""
            console.print(f"run {run['id']}: {run['status']}{cancelling}")
    if rejected:
        raise typer.Exit(EXIT_FAILURE)


@app.command()
def export(
    run_id: Annotated[int, typer.Argument(help="Run to export.", min=1)],
    file_format: Annotated[ExportFormatChoice, typer.Option("--format", help="File format of the tables.")] = ExportFormatChoice.csv,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder to write to. Default: ./run-ID.")] = None,
    split: Annotated[SplitChoice, typer.Option(help="Which per-sample results to export.")] = SplitChoice.test,
    as_json: JsonOption = False,
) -> None:
    """Write a run's record (run.json), per-epoch metrics and per-sample values, with one column per gate.

    Exits 1 when the run has no per-sample results yet; its record and metrics are written all the same.
    """
    from gatelab.export import export_run

    folder = output or Path(f"run-{run_id}")
    try:
        result = export_run(client(), run_id, folder, file_format.value, split.value)
    except GateLabError as error:
        fail(error.message)
    except OSError as error:
        fail(f"cannot write to {folder}: {error}")
    if as_json:
        print_json(result.as_dict())
    else:
        for name, path in result.files.items():
            console.print(f"{name}: {path}")
        console.print(f"{result.metrics_rows} epochs, {result.samples_rows or 0} samples")
    if result.samples_missing:
        fail(f"no per-sample values exported: {result.samples_missing}")


@app.command()
def train(
    spec_file: Annotated[Path, typer.Argument(help="JSON or YAML run spec.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics, per-sample values and the checkpoint.")] = Path("gatelab-run"),
) -> None:
    """Train one run in this process, without the API or a worker, and write its results to a folder."""
    from gatelab.local_training import train_locally

    spec = _load_spec(spec_file)
    try:
        train_locally(spec, output, get_settings(), console)
    except (ValueError, OSError) as error:
        fail(str(error))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
