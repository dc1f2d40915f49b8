"""Terminal output of the `gatelab` command: run tables, live progress bars, JSON and error messages.

Tables and progress go to stdout through rich. Errors go to stderr without
markup or line wrapping, so an API message reads exactly as the server wrote
it. With `--json`, commands print nothing on stdout but the JSON document.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gatelab.client import GateLabClient, Run

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

# Exit codes: 0 success, 1 a run did not succeed or the API rejected a request, 2 a usage error.
EXIT_FAILURE = 1
EXIT_USAGE = 2

TABLE_CAPTION = (
    "done: share of training iterations; acc: test accuracy; loss: training loss; "
    "g: mean gate value on the test set; skip: share of test images with g < 0.5"
)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print `message` to stderr, word for word, and exit with `code`."""
    report_error(message)
    raise typer.Exit(code)


def report_error(message: str) -> None:
    errors.print(f"[red]error:[/red] {escape(message)}")


def print_json(value: Any) -> None:
    """Write `value` as indented JSON to stdout, and nothing else."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _number(value: float | None, pattern: str) -> str:
    return "" if value is None else format(value, pattern)


def print_runs_table(runs: Sequence[Run], title: str | None = None) -> None:
    """Print one row per run with its status, progress and final metrics, then the error of each failed run."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    widths = {"id": 3, "status": 9, "done": 4, "epoch": 5, "λ": 6, "seed": 4, "acc": 6, "loss": 6, "g": 5, "skip": 5}
    for header, width in widths.items():
        table.add_column(header, no_wrap=True, min_width=width)
    table.add_column("worker", overflow="fold")
    table.add_column("name", overflow="ellipsis", no_wrap=True)
    for run in runs:
        table.add_row(
            str(run["id"]),
            run["status"],
            f"{run['progress']:.0%}",
            f"{run['epoch']}/{run['total_epochs']}",
            f"{run['gate_loss_weight']:g}",
            str(run["seed"]),
            _number(run["test_accuracy"], ".4f"),
            _number(run["train_loss"], ".4f"),
            _number(run["mean_gate"], ".3f"),
            _number(run["skip_rate"], ".3f"),
            escape(_worker_label(run)),
            escape(run["name"] or ""),
        )
    console.print(table)
    console.print(TABLE_CAPTION, style="dim")
    for run in runs:
        if run["error"]:
            errors.print(f"run {run['id']} {run['status']}: {escape(run['error'])}")


def _worker_label(run: Run) -> str:
    worker = run["worker"] or ""
    if run["gpu"]:
        worker += f" ({run['gpu']})"
    return worker


def _progress_info(run: Run) -> str:
    info = f"{run['status']}, epoch {run['epoch']}/{run['total_epochs']}"
    if run["test_accuracy"] is not None:
        info += f", test accuracy {run['test_accuracy']:.4f}"
    return info


def follow_runs(
    client: GateLabClient,
    run_ids: list[int],
    quiet: bool = False,
    timeout: float | None = None,
    poll_interval: float = 1.0,
) -> list[Run]:
    """Poll the runs until each one is final, with a live progress bar per run showing epoch and ETA.

    The ETA comes from rich's estimate of the rate at which progress grew while
    the bar was shown. Raises TimeoutError after `timeout` seconds.
    """
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=console, disable=quiet) as progress:
        tasks = {run_id: progress.add_task(f"run {run_id}", total=1.0, info="") for run_id in run_ids}

        def update(runs: list[Run]) -> None:
            for run in runs:
                progress.update(tasks[run["id"]], completed=run["progress"], info=_progress_info(run))

        return client.wait(run_ids, timeout=timeout, poll_interval=poll_interval, on_update=update)
