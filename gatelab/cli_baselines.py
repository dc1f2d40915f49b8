"""`gatelab baselines`: import published checkpoints as baselines, list them and show one.

Every command goes through the API, which checks and evaluates the checkpoint and
stores it, so an import from the command line and one from a script or the browser
are the same operation. `gatelab.cli` adds `baselines_app` to the `gatelab` command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gatelab.cli_output import console, fail, print_json
from gatelab.client import GateLabClient, GateLabError

baselines_app = typer.Typer(
    help="Import published CIFAR ResNet checkpoints as baselines that runs can start from.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout instead of a table.")]


def _client() -> GateLabClient:
    # Imported here because gatelab.cli imports this module; its client() honours --api-url.
    from gatelab.cli import client

    return client()


@baselines_app.command("import")
def import_checkpoint(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="Checkpoint file written by torch.save.")],
    arch: Annotated[str, typer.Option("--arch", help="Network of the checkpoint: resnet20, resnet32, resnet44, resnet56, resnet110, ...")],
    normalization: Annotated[
        str,
        typer.Option(
            "--normalization",
            help="Input normalisation it was trained with: imagenet, cifar, or MEAN/STD such as 0.5,0.5,0.5/0.25,0.25,0.25.",
        ),
    ],
    name: Annotated[str | None, typer.Option("--name", help="Name shown in lists. Default: the file name without extension.")] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="Data set it was trained on: cifar10 or cifar100.")] = "cifar10",
    test_datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--test-dataset",
            help="Test set to measure it on; repeat for several. A data set name or npz:PATH. Default: the data set's test split.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a checkpoint, check that every tensor fits the network, measure its accuracy and store it.

    On a CPU, measuring a ResNet-56 on 10,000 test images takes a minute or more.
    """
    if not as_json:
        console.print(f"uploading {file} and measuring it on {', '.join(test_datasets or [dataset])} ...")
    try:
        result = _client().import_baseline(
            file, arch, normalization, name=name, dataset=dataset, test_datasets=test_datasets or ()
        )
    except GateLabError as error:
        fail(error.message)
    if as_json:
        print_json(result)
        return
    baseline = result["baseline"]
    verb = "imported as" if result["created"] else "already imported as"
    console.print(f"{file.name}: {verb} baseline {baseline['id']} ({baseline['name']})")
    print_baselines_table([baseline])
    _print_report(baseline["report"])


@baselines_app.command("list")
def list_baselines(as_json: JsonOption = False) -> None:
    """List the imported baselines with their accuracy on each test set."""
    try:
        baselines = _client().all_baselines()
    except GateLabError as error:
        fail(error.message)
    if as_json:
        print_json(baselines)
    elif not baselines:
        console.print("no baselines yet; import one with `gatelab baselines import FILE --arch ... --normalization ...`")
    else:
        print_baselines_table(baselines)


@baselines_app.command("show")
def show_baseline(baseline_id: Annotated[int, typer.Argument(min=1, help="Baseline id.")], as_json: JsonOption = False) -> None:
    """Show one baseline: network, normalisation, file hash, accuracy and how its tensors matched."""
    try:
        baseline = _client().get_baseline(baseline_id)
    except GateLabError as error:
        fail(error.message)
    if as_json:
        print_json(baseline)
        return
    print_baselines_table([baseline])
    console.print(f"sha256 {baseline['sha256']}, uploaded as {baseline['source_filename']}")
    console.print(f"normalisation: mean {baseline['normalization']['mean']}, std {baseline['normalization']['std']}")
    _print_report(baseline["report"])


def print_baselines_table(baselines: list[dict[str, Any]]) -> None:
    """Print one row per baseline, with 'correct / count (accuracy)' for each test set."""
    table = Table("id", "name", "arch", "data set", "normalisation", "sha256", "test set", "correct", "accuracy")
    for baseline in baselines:
        evaluations = baseline["evaluations"] or [None]
        for position, evaluation in enumerate(evaluations):
            first = position == 0
            table.add_row(
                str(baseline["id"]) if first else "",
                baseline["name"] if first else "",
                baseline["arch"] if first else "",
                baseline["dataset"] if first else "",
                baseline["normalization_name"] if first else "",
                baseline["sha256"][:12] if first else "",
                evaluation["dataset"] if evaluation else "",
                f"{evaluation['correct']} / {evaluation['count']}" if evaluation else "",
                f"{evaluation['accuracy']:.2%}" if evaluation else "",
            )
    console.print(table)


def _print_report(report: dict[str, Any]) -> None:
    line = f"tensors: {report['loaded']} of {report['tensors_in_file']} loaded"
    if report.get("renamed"):
        line += f", {report['renamed']} renamed"
    left_over = report.get("left_over") or []
    line += f", {len(left_over)} left over" + (f": {', '.join(left_over)}" if left_over else "")
    console.print(line)
