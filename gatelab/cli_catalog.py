"""`gatelab models` and `gatelab presets`: the networks, gates and sweep presets that GateLab offers.

`models` computes parameter and MAC counts locally with gating_core. `presets`
lists, shows and launches presets through the API. `catalog_app` contains
these commands, and `gatelab.cli` adds them to the `gatelab` command.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatelab.client import GateLabClient, GateLabError

catalog_app = typer.Typer()
presets_app = typer.Typer(help="List, show and launch the sweep presets of the study.")
catalog_app.add_typer(presets_app, name="presets")

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")]


def _client() -> GateLabClient:
    # Imported here because gatelab.cli imports this module. Its client() applies the API URL settings.
    from gatelab.cli import client

    return client()


def _fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(1)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _millions(value: int | None, decimals: int) -> str:
    return "" if value is None else f"{value / 1e6:.{decimals}f}M"


def _table(title: str, text_columns: tuple[str, ...], number_columns: tuple[str, ...]) -> Table:
    """Return a compact table that fits 80 columns: cells never wrap, so names stay whole for grep."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title=title)
    for name in text_columns:
        table.add_column(name, no_wrap=True)
    for name in number_columns:
        table.add_column(name, justify="right", no_wrap=True)
    return table


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the block with one intra-op thread, then restore the previous count.

    The counts come from batch-1 forward passes, which gain nothing from more threads.
    On a 2-core machine busy with other jobs, describe_architectures(10) took about
    60 s with 2 threads and 4 s with 1 (measured with time.time around the call).
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@catalog_app.command()
def models(
    classes: Annotated[int, typer.Option("--classes", min=2, help="Number of output classes (10 for CIFAR-10, 100 for CIFAR-100).")] = 10,
    as_json: JsonOption = False,
) -> None:
    """List every study network with every gate kind: parameters and multiply-accumulates per 32x32 image.

    "Skippable MACs": for a block-level gate, the MACs that a hard skip saves on each skipped image.
    """
    from gating_core.models.complexity import describe_architectures

    with _one_torch_thread():
        rows = describe_architectures(classes)
    if as_json:
        _print_json(rows)
        return
    title = f"{classes} classes, MACs of Conv2d and Linear layers per 32x32 image"
    numbers = ("gated\nstage", "gates", "params", "gate\nparams", "MACs", "skippable\nMACs")
    table = _table(title, ("network", "gate"), numbers)
    for row in rows:
        table.add_row(
            row["name"],
            row["gate"],
            "" if row["gated_stage"] is None else str(row["gated_stage"]),
            str(row["gate_count"]),
            _millions(row["params"], 2),
            _millions(row["gate_params"], 2),
            _millions(row["macs"], 1),
            _millions(row["gated_stage_macs"], 1),
        )
    console.print(table)


def _published_errors(published: dict[str, Any]) -> str:
    return ", ".join(f"{result['test_error_percent']}%" for result in published.get("results", []))


@presets_app.callback(invoke_without_command=True)
def list_presets(context: typer.Context, as_json: JsonOption = False) -> None:
    """List every preset with its run count. `gatelab presets launch NAME` starts one."""
    if context.invoked_subcommand is not None:
        return
    try:
        presets = _client().presets()
    except GateLabError as error:
        _fail(str(error))
    if as_json:
        _print_json(presets)
        return
    title = f"{len(presets)} presets (`gatelab presets show NAME` prints one in full)"
    table = _table(title, ("name", "baseline\nrun", "published\ntest error"), ("runs",))
    for preset in presets:
        table.add_row(
            preset["name"],
            "required" if preset["requires_baseline_run"] else "",
            _published_errors(preset["published"]),
            str(preset["run_count"]),
        )
    console.print(table)


@presets_app.command("show")
def show_preset(name: Annotated[str, typer.Argument(help="Preset name.")], as_json: JsonOption = False) -> None:
    """Print one preset: its description, grid, published figures and base spec."""
    try:
        preset = _client()._json("GET", f"/api/presets/{name}")
    except GateLabError as error:
        _fail(str(error))
    if as_json:
        _print_json(preset)
        return
    console.print(f"[bold]{escape(preset['name'])}[/bold]: {escape(preset['description'])}")
    console.print(f"grid: {json.dumps(preset['grid'])} ({preset['run_count']} runs)")
    if preset["requires_baseline_run"]:
        console.print("needs --baseline-run: the id of a succeeded ungated run of the same network and data set")
    published = preset["published"]
    if published:
        console.print(f"published {escape(published['metric'])}:")
        for result in published["results"]:
            figure = f"{result['test_error_percent']}%"
            if "std" in result:
                figure += f" ± {result['std']}"
            console.print(f"  {result['model']} {figure}, {result['statistic']}: {escape(result['source'])}")
        console.print(f"  {escape(published['note'])}")
    console.print_json(json.dumps(preset["base"]))


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split 'train.epochs=1' into ('train.epochs', 1). Values parse as JSON where they can, else stay strings."""
    key, separator, raw = text.partition("=")
    if not separator or not key:
        raise typer.BadParameter(f"expected FIELD=VALUE, for example train.epochs=1; received {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


@presets_app.command("launch")
def launch_preset(
    name: Annotated[str, typer.Argument(help="Preset name, from `gatelab presets`.")],
    baseline_run: Annotated[
        int | None,
        typer.Option("--baseline-run", min=1, help="Id of a succeeded ungated run, required by *-from-baseline presets."),
    ] = None,
    seeds: Annotated[list[int] | None, typer.Option("--seed", min=0, help="Seed to run; repeat for several. Replaces the preset's seeds.")] = None,
    lambdas: Annotated[
        list[float] | None, typer.Option("--lambda", min=0.0, help="Gate-loss weight; repeat for several. Replaces the nine λ values.")
    ] = None,
    scheme: Annotated[str | None, typer.Option(help="Training scheme: scheme1, 164-epoch or constant.")] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option("--set", help="Set a spec field, for example --set train.epochs=1 --set data.train_subset=512."),
    ] = None,
    sweep_name: Annotated[str | None, typer.Option("--name", help="Sweep name. Default: the preset's name.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Launch a preset as a sweep and queue its runs."""
    overrides = dict(parse_assignment(text) for text in assignments or [])
    options = {
        "baseline_run_id": baseline_run,
        "seeds": seeds or None,
        "lambdas": lambdas or None,
        "scheme": scheme,
        "overrides": overrides,
        "name": sweep_name,
    }
    body = {key: value for key, value in options.items() if value not in (None, {})}
    try:
        sweep = _client()._json("POST", f"/api/presets/{name}/launch", json=body)
    except GateLabError as error:
        _fail(str(error))
    if as_json:
        _print_json(sweep)
        return
    console.print(f"sweep {sweep['id']} ({escape(sweep['name'])}) queued with {len(sweep['run_ids'])} runs")
