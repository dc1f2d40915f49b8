"""`gatelab train`: one run in the current process, with a progress bar, results written to a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from gatelab.settings import Settings


def train_locally(spec_values: dict[str, Any], output: Path, settings: Settings, console: Console) -> Path:
    """Train the spec with the worker's trainer and write spec, metrics, samples and checkpoint under `output`.

    Training resumes when `output` already holds a checkpoint of the same spec.
    """
    from pydantic import ValidationError

    from gating_core.experiment import run_experiment
    from gating_core.spec import RunSpec
    from gating_core.train.callbacks import Callback

    try:
        spec = RunSpec.model_validate(spec_values)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "spec"
        raise ValueError(f"invalid spec: {field}: {first['msg']}; received {first.get('input')!r}") from None
    if spec.init.source != "scratch":
        raise ValueError("gatelab train starts from scratch only; use the API for runs that start from a run or baseline")

    output.mkdir(parents=True, exist_ok=True)
    spec_path = output / "spec.json"
    if spec_path.exists() and json.loads(spec_path.read_text()) != spec.model_dump(mode="json"):
        raise ValueError(f"{output} holds results of a different spec; choose another --output folder")
    spec_path.write_text(json.dumps(spec.model_dump(mode="json"), indent=2))

    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=1.0, info="")

        class ProgressBar(Callback):
            def on_step(self, state) -> None:  # type: ignore[no-untyped-def]
                progress.update(task, completed=state.progress)

            def on_epoch_end(self, state, metrics) -> None:  # type: ignore[no-untyped-def]
                info = f"epoch {metrics.epoch}/{state.total_epochs}: test accuracy {metrics.test_accuracy:.4f}"
                progress.update(task, completed=state.progress, info=info)
                pd.DataFrame([m.as_dict() for m in state.history]).to_csv(output / "metrics.csv", index=False)

        result = run_experiment(
            spec,
            data_dir=settings.resolved_data_dir,
            cache_dir=settings.resolved_cache_dir,
            device=settings.device,
            callbacks=[ProgressBar()],
            checkpoint_path=output / "checkpoint.pt",
            allow_download=settings.allow_download,
        )

    samples = result.test_samples
    frame = pd.DataFrame(
        {
            "index": samples.indices,
            "label": samples.labels,
            "prediction": samples.predictions,
            "correct": samples.correct,
            "confidence": samples.confidence,
            "loss": samples.loss,
            "energy": samples.energy,
        }
    )
    gate_names = list(getattr(result.state.model, "gate_names", []))
    if samples.gate is not None:
        frame["gate"] = samples.gate
        for column, name in enumerate(gate_names):
            frame[f"gate:{name}"] = samples.gates[:, column]
    frame.to_csv(output / "samples.csv", index=False)
    (output / "environment.json").write_text(json.dumps(result.environment, indent=2))
    console.print(f"test accuracy {samples.accuracy:.4f}; results in {output}")
    return output
