"""Expansion of a sweep's grid into one run spec per combination of values."""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from gating_core.spec import RunSpec

GRID_ALIASES = {"lambda": "gate_loss_weight"}
# Fields that the grid may not vary: the name is set per run from the varied values.
EXCLUDED_GRID_FIELDS = frozenset({"name"})


class SpecError(ValueError):
    """A spec or grid that cannot make valid runs; `loc` is the path of the offending field."""

    def __init__(self, loc: list[str | int], message: str, received: Any = None) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message
        self.received = received


def grid_fields(model: type[BaseModel] = RunSpec, prefix: str = "") -> list[str]:
    """Return the dotted names of every leaf field of the run spec, in declaration order."""
    names: list[str] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.extend(grid_fields(annotation, f"{dotted}."))
        elif dotted not in EXCLUDED_GRID_FIELDS:
            names.append(dotted)
    return names


class Axis(NamedTuple):
    """One grid axis: the key as the user wrote it, the spec field it sets, and its values."""

    key: str
    field: str
    values: list[Any]


def expand_grid(base: RunSpec, grid: dict[str, list[Any]], max_runs: int, sweep_name: str) -> list[RunSpec]:
    """Return one validated spec per grid combination, or raise SpecError naming the first bad field."""
    if not grid:
        raise SpecError(
            ["body", "grid"],
            f"grid must name at least one field with a list of values; fields: lambda, {', '.join(grid_fields())}",
            grid,
        )

    allowed = grid_fields()
    axes: list[Axis] = []
    run_count = 1
    for key, values in grid.items():
        field = GRID_ALIASES.get(key, key)
        if field not in allowed:
            raise SpecError(
                ["body", "grid", key],
                f"grid field must be one of lambda, {', '.join(allowed)}; received {key!r}",
                key,
            )
        if not values:
            raise SpecError(["body", "grid", key], f"grid.{key} must list at least one value; received []", values)
        axes.append(Axis(key, field, values))
        run_count *= len(values)

    if run_count > max_runs:
        raise SpecError(
            ["body", "grid"],
            f"the grid makes {run_count} runs; a sweep may have at most {max_runs}",
            run_count,
        )

    base_values = base.model_dump(mode="json")
    specs: list[RunSpec] = []
    for combination in itertools.product(*(axis.values for axis in axes)):
        values = _deep_copy(base_values)
        for axis, value in zip(axes, combination):
            _set_dotted(values, axis.field, value)
        values["name"] = _run_name(base.name or sweep_name, axes, combination)
        specs.append(_validate(values, axes, combination))
    return specs


def _validate(values: dict[str, Any], axes: list[Axis], combination: tuple[Any, ...]) -> RunSpec:
    """Validate one run's spec; an error names the grid key the user wrote, or the base field."""
    try:
        return RunSpec.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        dotted = ".".join(loc)
        varied = ", ".join(f"{axis.key}={value!r}" for axis, value in zip(axes, combination))
        message = str(first["msg"]).removeprefix("Value error, ")
        axis = next((axis for axis in axes if dotted == axis.field or dotted.startswith(f"{axis.field}.")), None)
        if axis is not None:
            inner = dotted.removeprefix(axis.field).lstrip(".")
            where = ["body", "grid", axis.key, *([inner] if inner else [])]
        else:
            where = ["body", "base", *loc]
        raise SpecError(
            where,
            f"{message} (received {first.get('input')!r}, in the run with {varied})",
            first.get("input"),
        ) from error


def _run_name(prefix: str, axes: list[Axis], combination: tuple[Any, ...]) -> str:
    labels = []
    for axis, value in zip(axes, combination):
        field = axis.field
        short = {"gate_loss_weight": "λ", "seed": "seed"}.get(field, field.split(".")[-1])
        labels.append(f"{short}={value:g}" if isinstance(value, float) else f"{short}={value}")
    return f"{prefix} {' '.join(labels)}"[:200]


def _set_dotted(values: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    target = values
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _deep_copy(values: Any) -> Any:
    if isinstance(values, dict):
        return {key: _deep_copy(value) for key, value in values.items()}
    if isinstance(values, list):
        return [_deep_copy(value) for value in values]
    return values
