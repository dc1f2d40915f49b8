"""The `gatelab` command: start the stack, submit and follow runs, and manage the database."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gatelab.client import FINAL_STATUSES, GateLabClient, GateLabError, load_spec_file
from gatelab.settings import get_settings

app = typer.Typer(help="GateLab: run and analyse gating experiments on residual networks.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
errors = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def client() -> GateLabClient:
    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    return GateLabClient(settings.api_url, token=token)


def fail(message: str, code: int = 1) -> None:
    errors.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


@app.callback()
def main_options(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
    stack = _start_stack(api_port, dashboard_port, 1, True)
    try:
        with GateLabClient(stack.api_url) as local:
            created = local.submit(load_spec_file(spec_file))
            run_ids = created.get("run_ids", [created["id"]])
            console.print(f"submitted {spec_file}: runs {run_ids}")
            runs = _follow(local, run_ids)
    except (GateLabError, ValueError, OSError) as error:
        stack.stop()
        fail(str(error))
    _print_runs_table(runs)
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
    console.print("starting GateLab (logs in %s) ..." % stack.log_dir)
    try:
        stack.start()
    except LaunchError as error:
        fail(str(error))
    console.print(f"API:       {stack.api_url}  (docs at {stack.api_url}/docs)")
    if dashboard:
        console.print(f"dashboard: {stack.dashboard_url}")
    return stack


def _serve_until_interrupted(stack) -> None:  # type: ignore[no-untyped-def]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
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


# Runs


@app.command()
def submit(
    spec_file: Annotated[Path, typer.Argument(help="JSON or YAML run spec, or a sweep with a 'grid'.")],
    as_json: JsonOption = False,
) -> None:
    """Submit a run or a sweep from a file."""
    try:
        created = client().submit(load_spec_file(spec_file))
    except (GateLabError, ValueError, OSError) as error:
        fail(str(error))
    if as_json:
        print_json(created)
    elif "run_ids" in created:
        console.print(f"sweep {created['id']} queued with runs {created['run_ids']}")
    else:
        console.print(f"run {created['id']} queued")


@app.command()
def status(
    sweep: Annotated[int | None, typer.Option("--sweep", help="Only runs of this sweep.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show runs with their status, progress and results."""
    try:
        runs = client().all_runs(sweep_id=sweep)
    except GateLabError as error:
        fail(str(error))
    if as_json:
        print_json(runs)
    else:
        _print_runs_table(runs)


def _print_runs_table(runs: list[dict]) -> None:
    table = Table("id", "name", "status", "progress", "epoch", "λ", "seed", "test acc", "skip rate", "worker")
    for run in runs:
        table.add_row(
            str(run["id"]),
            run["name"] or "",
            run["status"],
            f"{run['progress']:.0%}",
            f"{run['epoch']}/{run['total_epochs']}",
            f"{run['gate_loss_weight']:g}",
            str(run["seed"]),
            "" if run["test_accuracy"] is None else f"{run['test_accuracy']:.4f}",
            "" if run["skip_rate"] is None else f"{run['skip_rate']:.3f}",
            run["worker"] or "",
        )
    console.print(table)


@app.command()
def watch(
    run_ids: Annotated[list[int], typer.Argument(help="Run ids to follow.")],
    as_json: JsonOption = False,
) -> None:
    """Follow runs with a progress bar each until they finish; exit 1 if any did not succeed."""
    try:
        runs = _follow(client(), run_ids, quiet=as_json)
    except GateLabError as error:
        fail(str(error))
    if as_json:
        print_json(runs)
    else:
        _print_runs_table(runs)
    if any(run["status"] != "succeeded" for run in runs):
        raise typer.Exit(1)


def _follow(api_client: GateLabClient, run_ids: list[int], quiet: bool = False) -> list[dict]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console, disable=quiet) as progress:
        tasks = {run_id: progress.add_task(f"run {run_id}", total=1.0, info="") for run_id in run_ids}

        def update(runs: list[dict]) -> None:
            for run in runs:
                info = f"{run['status']}, epoch {run['epoch']}/{run['total_epochs']}"
                if run["test_accuracy"] is not None:
                    info += f", test accuracy {run['test_accuracy']:.4f}"
                progress.update(tasks[run["id"]], completed=run["progress"], info=info)

        return api_client.wait(run_ids, on_update=update, poll_interval=1.0)


@app.command()
def cancel(run_ids: Annotated[list[int], typer.Argument(help="Runs to cancel.")], as_json: JsonOption = False) -> None:
    """Cancel queued or running runs."""
    _apply_to_runs(run_ids, "cancel", as_json)


@app.command()
def retry(run_ids: Annotated[list[int], typer.Argument(help="Runs to queue again.")], as_json: JsonOption = False) -> None:
    """Queue failed, lost, cancelled or diverged runs again."""
    _apply_to_runs(run_ids, "retry", as_json)


def _apply_to_runs(run_ids: list[int], action: str, as_json: bool) -> None:
    api_client = client()
    results = []
    failed = False
    for run_id in run_ids:
        try:
            results.append(getattr(api_client, action)(run_id))
        except GateLabError as error:
            failed = True
            errors.print(f"[red]error:[/red] run {run_id}: {error.message}")
    if as_json:
        print_json(results)
    else:
        for run in results:
            console.print(f"run {run['id']}: {run['status']}")
    if failed:
        raise typer.Exit(1)


@app.command()
def train(
    spec_file: Annotated[Path, typer.Argument(help="JSON or YAML run spec.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics, per-sample values and the checkpoint.")] = Path("gatelab-run"),
) -> None:
    """Train one run in this process, without the API or a worker, and write its results to a folder."""
    from gatelab.local_training import train_locally

    try:
        train_locally(load_spec_file(spec_file), output, get_settings(), console)
    except (ValueError, OSError) as error:
        fail(str(error))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
