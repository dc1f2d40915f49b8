"""Named sweep presets that regenerate each experiment family of the gating study.

A preset is a sweep as POST /api/sweeps accepts it (a full base `RunSpec` and a
grid), plus a description and any published figures for the same network.
Gated families with a gate loss sweep the nine λ values 1e-5, 1e-4, ..., 1e3
over `SWEEP_SEEDS`. Families without a gate loss (Model 2, layer gates without
a loss) and the ungated baselines vary only the seed, over `BASELINE_SEEDS`.

Presets named `*-from-baseline` start every run from the weights of a finished
ungated run. That run's id exists only at launch time, so their `base` has
`init: {"source": "run", "id": null}` and `requires_baseline_run` is true.
`Preset.sweep_body(baseline_run_id=...)` fills the id in, and the API, the CLI
and the dashboard form ask for it.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import ValidationError

from gating_core.spec import GateSpec, ModelSpec, RunSpec, TrainSpec

# λ = 10^k for k = -5 ... 3.
LAMBDAS: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
# NOTE: three seeds per λ and five per baseline are this catalogue's choice, not
# figures from a paper. Launch with other `seeds` to change them.
SWEEP_SEEDS: tuple[int, ...] = (0, 1, 2)
BASELINE_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)

SchemeName = Literal["scheme1", "164-epoch", "constant"]
SCHEMES: tuple[str, ...] = get_args(SchemeName)
DEFAULT_SCHEME = "scheme1"
# Networks of depth 110 or more train their first 390 iterations (about one epoch
# of 128-image batches) at lr 0.01 before the scheme's lr 0.1.
WARMUP_MIN_DEPTH = 110
WARMUP_ITERATIONS = 390
WARMUP_LR = 0.01

HE_2015 = "He et al. 2015, Deep Residual Learning for Image Recognition, Table 6"
HE_2016 = "He et al. 2016, Identity Mappings in Deep Residual Networks"


def training_scheme(name: str, depth: int) -> dict[str, Any]:
    """Return the optimiser and schedule fields of `TrainSpec` for a named training scheme.

    scheme1: SGD with lr 0.1, momentum 0.9, weight decay 1e-4 and batch 128, lr/10
    after epochs 82 and 123, 250 epochs. 164-epoch: the same schedule stopped after
    164 epochs. constant: lr 0.1 for all 250 epochs. Every scheme warms up at lr
    0.01 for 390 iterations when `depth` is 110 or more.
    """
    if name not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}; received {name!r}")
    if depth < 1:
        raise ValueError(f"depth must be 1 or more; received {depth}")

    scheme: dict[str, Any] = {
        "epochs": 250,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "schedule": "step",
        "lr_milestones": [82, 123],
        "warmup_iterations": WARMUP_ITERATIONS if depth >= WARMUP_MIN_DEPTH else 0,
        "warmup_lr": WARMUP_LR,
    }
    if name == "164-epoch":
        scheme["epochs"] = 164
    elif name == "constant":
        # NOTE: keeping lr 0.1 for 250 epochs is this catalogue's choice for the constant variant.
        scheme["schedule"] = "constant"
    return scheme


class PresetError(ValueError):
    """A preset that cannot be launched with the given options; `field` names the offending option."""

    def __init__(self, field: str, message: str, received: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.received = received


@dataclass(frozen=True)
class PublishedResult:
    """One published CIFAR-10 test error of the network that a preset trains."""

    model: str
    test_error_percent: float
    statistic: str
    source: str
    std: float | None = None

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "model": self.model,
            "test_error_percent": self.test_error_percent,
            "statistic": self.statistic,
            "source": self.source,
        }
        if self.std is not None:
            values["std"] = self.std
        return values


# NOTE: only the figures below are sourced. The statistic of the He et al. 2016
# figure was not checked against the paper's table.
PUBLISHED_CIFAR10: dict[str, tuple[PublishedResult, ...]] = {
    "resnet110": (
        PublishedResult("ResNet-110", 6.43, "best of 5 runs", HE_2015),
        PublishedResult("ResNet-110", 6.61, "mean of 5 runs", HE_2015, std=0.16),
    ),
    "resnet164": (PublishedResult("ResNet-164", 5.93, "as reported", HE_2016),),
    "preresnet164": (PublishedResult("PreResNet-164", 5.46, "mean of 5 runs", HE_2016),),
}


def published_figures(network: str, dataset: str) -> dict[str, Any]:
    """Return the published figures for a network on a data set, or {} when none are sourced."""
    results = PUBLISHED_CIFAR10.get(network, ()) if dataset == "cifar10" else ()
    if not results:
        return {}
    return {
        "metric": "test error (%) on the original CIFAR-10 test images",
        "schedule": "164-epoch",
        "note": (
            "The published networks trained for 164 epochs: launch with scheme '164-epoch' to match. "
            "A data directory with a lossy JPEG copy of CIFAR-10 gives higher errors."
        ),
        "results": [result.as_dict() for result in results],
    }


@dataclass(frozen=True)
class Preset:
    """A named sweep: a base spec, its grid, a description and any published figures."""

    name: str
    description: str
    dataset: str
    network: str
    gate: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    published: dict[str, Any] = field(default_factory=dict)
    requires_baseline_run: bool = False
    scheme: str = DEFAULT_SCHEME

    @property
    def run_count(self) -> int:
        return math.prod(len(values) for values in self.grid.values())

    def as_dict(self) -> dict[str, Any]:
        """Return the preset as JSON-ready values, with its run count."""
        return {
            "name": self.name,
            "description": self.description,
            "dataset": self.dataset,
            "network": self.network,
            "gate": self.gate,
            "scheme": self.scheme,
            "base": copy.deepcopy(self.base),
            "grid": copy.deepcopy(self.grid),
            "run_count": self.run_count,
            "published": copy.deepcopy(self.published),
            "requires_baseline_run": self.requires_baseline_run,
        }

    def sweep_body(
        self,
        *,
        baseline_run_id: int | None = None,
        seeds: Sequence[int] | None = None,
        lambdas: Sequence[float] | None = None,
        scheme: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Build the body of POST /api/sweeps that launches this preset.

        `baseline_run_id` is required when the preset starts from a baseline run,
        and then every run loads that run's weights. For other presets it only
        names the run that the sweep page draws as the baseline. `seeds` and
        `lambdas` replace the grid's values. `scheme` replaces the training
        scheme, and `overrides` then sets dotted spec fields such as
        {"train.epochs": 1, "data.train_subset": 512}. Raises PresetError naming
        the option at fault.
        """
        base = copy.deepcopy(self.base)
        grid = copy.deepcopy(self.grid)
        self._set_init(base, baseline_run_id)
        if scheme is not None:
            base["train"].update(_scheme_or_error(scheme, _effective_depth(base)))
        _replace_axis(self.name, grid, "seed", seeds, "seeds")
        _replace_axis(self.name, grid, "gate_loss_weight", lambdas, "lambdas")
        for key, value in (overrides or {}).items():
            _apply_override(base, grid, key, value)
        _validate_base(base, overrides or {})
        return {
            "name": name or self.name,
            "base": base,
            "grid": grid,
            "preset": self.name,
            "baseline_run_id": baseline_run_id,
        }

    def _set_init(self, base: dict[str, Any], baseline_run_id: int | None) -> None:
        if not self.requires_baseline_run:
            return
        if baseline_run_id is None:
            raise PresetError(
                "baseline_run_id",
                f"preset {self.name!r} starts from a baseline run, so baseline_run_id is required: "
                f"give the id of a succeeded ungated {NETWORKS[self.network][0]} run on "
                f"{DATASET_NAMES[self.dataset]}",
            )
        base["init"] = {"source": "run", "id": baseline_run_id}


def check_baseline_run(body: Mapping[str, Any], baseline_spec: Mapping[str, Any], run_id: int) -> None:
    """Raise PresetError unless run `run_id` (spec `baseline_spec`) can initialise the sweep `body`.

    The baseline must be ungated and have the same architecture, block type,
    depth, shortcut and training data set as the sweep's base spec, so that
    every backbone tensor loads.
    """
    target = RunSpec.model_validate(body["base"])
    try:
        baseline = RunSpec.model_validate(baseline_spec)
    except ValidationError as error:
        raise PresetError("baseline_run_id", f"run {run_id} has a spec that no longer validates: {error}", run_id) from error

    expected = _backbone(target)
    received = _backbone(baseline)
    if baseline.model.gate.kind != "none":
        raise PresetError(
            "baseline_run_id",
            f"run {run_id} is gated ({baseline.model.gate.kind}); a baseline run must have gate kind 'none'",
            run_id,
        )
    if received != expected:
        raise PresetError(
            "baseline_run_id",
            f"run {run_id} trained {_describe_backbone(received)}; this sweep needs {_describe_backbone(expected)}",
            run_id,
        )


def _backbone(spec: RunSpec) -> tuple[str, str, int, str, str]:
    model = spec.model
    block = "basic" if model.arch == "resnet34" else model.block
    return (model.arch, block, model.effective_depth, model.effective_shortcut, spec.data.dataset)


def _describe_backbone(backbone: tuple[str, str, int, str, str]) -> str:
    arch, block, depth, shortcut, dataset = backbone
    return f"arch {arch}, block {block}, depth {depth}, shortcut {shortcut} on {dataset}"


def _effective_depth(base: Mapping[str, Any]) -> int:
    model = base["model"]
    return 34 if model["arch"] == "resnet34" else int(model["depth"])


def _scheme_or_error(scheme: str, depth: int) -> dict[str, Any]:
    if scheme not in SCHEMES:
        raise PresetError("scheme", f"scheme must be one of {', '.join(SCHEMES)}; received {scheme!r}", scheme)
    return training_scheme(scheme, depth)


def _replace_axis(
    preset: str, grid: dict[str, list[Any]], axis: str, values: Sequence[Any] | None, option: str
) -> None:
    if values is None:
        return
    if axis not in grid:
        raise PresetError(
            option,
            f"preset {preset!r} does not vary {axis}; its grid varies {', '.join(grid)}",
            list(values),
        )
    if not values:
        raise PresetError(option, f"{option} must list at least one value; received []", [])
    grid[axis] = list(values)


def _apply_override(base: dict[str, Any], grid: Mapping[str, list[Any]], key: str, value: Any) -> None:
    if key in grid or key in ("lambda", "name"):
        raise PresetError(
            f"overrides.{key}",
            f"overrides may not set {key!r}, which the grid or the sweep sets; use seeds or lambdas",
            value,
        )
    parts = key.split(".")
    target = base
    for position, part in enumerate(parts[:-1]):
        child = target.get(part)
        if not isinstance(child, dict):
            prefix = ".".join(parts[: position + 1])
            message = f"{prefix!r} is not a section of the run spec. Use dotted spec fields such as train.epochs"
            raise PresetError(f"overrides.{key}", message, key)
        target = child
    target[parts[-1]] = value


def _validate_base(base: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    try:
        RunSpec.model_validate(base)
    except ValidationError as error:
        first = error.errors()[0]
        dotted = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if not dotted:
            raise PresetError("base", message, first.get("input")) from error
        # Blame the override that set this field, or one that set a section containing it.
        culprit = next((key for key in overrides if dotted == key or dotted.startswith(f"{key}.")), None)
        option = f"overrides.{culprit}" if culprit else f"base.{dotted}"
        raise PresetError(option, f"{dotted}: {message}", first.get("input")) from error


class UnknownPresetError(PresetError):
    """No preset has the requested name."""


DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}

# Preset network name -> (display name, ModelSpec fields).
NETWORKS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet110": ("ResNet-110", {"arch": "resnet", "block": "basic", "depth": 110}),
    "resnet164": ("ResNet-164", {"arch": "resnet", "block": "bottleneck", "depth": 164}),
    "preresnet110": ("PreResNet-110", {"arch": "preact_resnet", "block": "basic", "depth": 110}),
    "preresnet164": ("PreResNet-164", {"arch": "preact_resnet", "block": "bottleneck", "depth": 164}),
    "resnet34": ("ResNet-34", {"arch": "resnet34", "block": "basic", "depth": 34}),
}

# Gate family -> (GateSpec fields, whether it sweeps λ, summary for the description).
GATE_FAMILIES: dict[str, tuple[dict[str, Any], bool, str]] = {
    "model1": ({"kind": "model1"}, True, "block gate Model 1 (g·o2 + (1−g)·o1, gate loss mean g²)"),
    "model1_2": ({"kind": "model1_2"}, True, "block gate Model 1.2 (Model 1's gate, gate loss mean ||o1 − output||²)"),
    "model2-sigmoid": (
        {"kind": "model2", "entropy_sigmoid": True},
        False,
        "block gate Model 2 with g = sigmoid(s·(H/log K − 1/2)) from a class head's entropy H, no gate loss",
    ),
    "model2-entropy": (
        {"kind": "model2", "entropy_sigmoid": False},
        False,
        "block gate Model 2 with the plain normalised entropy g = H/log K, no gate loss",
    ),
    "model3-ce": ({"kind": "model3", "model3_loss": "ce"}, True, "block gate Model 3 (skip/use softmax, cross-entropy gate loss)"),
    "model3-bce": (
        {"kind": "model3", "model3_loss": "bce"},
        True,
        "block gate Model 3 (skip/use softmax, binary cross-entropy gate loss on the skip probability)",
    ),
    "exclusive": ({"kind": "exclusive"}, True, "exclusive gating (1−g)·x + g·F(x) on every unit, gate loss mean ||g||"),
    "exclusive-no-loss": ({"kind": "exclusive"}, False, "exclusive gating (1−g)·x + g·F(x) on every unit, no gate loss"),
    "shortcut_only": ({"kind": "shortcut_only"}, True, "shortcut-only gating (1−g)·x + F(x) on every unit, gate loss mean ||g||"),
    "shortcut_only-no-loss": ({"kind": "shortcut_only"}, False, "shortcut-only gating (1−g)·x + F(x) on every unit, no gate loss"),
    "two_way-1x1": ({"kind": "two_way", "two_way_kernel": 1}, True, "two-way gating g1·F(x) + g2·x from a 1x1 convolution on every unit"),
    "two_way-3x3": ({"kind": "two_way", "two_way_kernel": 3}, True, "two-way gating g1·F(x) + g2·x from a 3x3 convolution on every unit"),
}
BLOCK_FAMILIES = ("model1", "model1_2", "model2-sigmoid", "model2-entropy", "model3-ce", "model3-bce")
LAYER_FAMILIES = ("exclusive", "exclusive-no-loss", "shortcut_only", "shortcut_only-no-loss", "two_way-1x1", "two_way-3x3")
LAYER_GATE_NETWORKS = {"cifar10": ("resnet110", "preresnet110", "preresnet164"), "cifar100": ("resnet110",)}
# ResNet-34 has four stages, and its block gate covers the third (6 units, 256 channels).
RESNET34_GATED_STAGE = 3


def _base_spec(network: str, dataset: str, gate: Mapping[str, Any], from_baseline: bool) -> dict[str, Any]:
    model_fields = NETWORKS[network][1]
    model = ModelSpec(**model_fields, gate=GateSpec(**gate))
    train = TrainSpec(**training_scheme(DEFAULT_SCHEME, model.effective_depth))
    values = RunSpec(model=model, data={"dataset": dataset}, train=train).model_dump(mode="json")
    if from_baseline:
        values["init"] = {"source": "run", "id": None}
    return values


def _grid_and_summary(sweeps_lambda: bool) -> tuple[dict[str, list[Any]], str]:
    if sweeps_lambda:
        grid: dict[str, list[Any]] = {"gate_loss_weight": list(LAMBDAS), "seed": list(SWEEP_SEEDS)}
        return grid, f"Nine λ values from 1e-5 to 1e3 × {len(SWEEP_SEEDS)} seeds"
    return {"seed": list(BASELINE_SEEDS)}, f"{len(BASELINE_SEEDS)} seeds"


def _gated_preset(dataset: str, network: str, family: str, from_baseline: bool = False) -> Preset:
    gate, sweeps_lambda, summary = GATE_FAMILIES[family]
    display = NETWORKS[network][0]
    name = f"{dataset}-{network}-{family}"
    if network == "resnet34":
        gate = {**gate, "stage": RESNET34_GATED_STAGE}
        name += f"-stage{RESNET34_GATED_STAGE}"
        summary += f" over stage {RESNET34_GATED_STAGE} of 4"
    grid, runs = _grid_and_summary(sweeps_lambda)
    start = "from scratch"
    if from_baseline:
        name += "-from-baseline"
        start = f"starting from a finished ungated {display} run given at launch"
    return Preset(
        name=name,
        description=f"{display} on {DATASET_NAMES[dataset]} with {summary}. {runs}, {start}, Scheme 1.",
        dataset=dataset,
        network=network,
        gate=family,
        base=_base_spec(network, dataset, gate, from_baseline),
        grid=grid,
        requires_baseline_run=from_baseline,
    )


def _baseline_preset(dataset: str, network: str) -> Preset:
    display = NETWORKS[network][0]
    grid, runs = _grid_and_summary(False)
    return Preset(
        name=f"{dataset}-{network}-baseline",
        description=f"Ungated {display} on {DATASET_NAMES[dataset]}. {runs}, from scratch, Scheme 1.",
        dataset=dataset,
        network=network,
        gate="none",
        base=_base_spec(network, dataset, {"kind": "none"}, False),
        grid=grid,
        published=published_figures(network, dataset),
    )


def _build_catalogue() -> dict[str, Preset]:
    presets: list[Preset] = []
    for dataset in DATASET_NAMES:
        presets.extend(_baseline_preset(dataset, network) for network in NETWORKS)
        for family in BLOCK_FAMILIES:
            presets.append(_gated_preset(dataset, "resnet110", family))
            presets.append(_gated_preset(dataset, "resnet110", family, from_baseline=True))
        for network in LAYER_GATE_NETWORKS[dataset]:
            presets.extend(_gated_preset(dataset, network, family) for family in LAYER_FAMILIES)
        if dataset == "cifar10":
            presets.extend(_gated_preset(dataset, "resnet34", family) for family in BLOCK_FAMILIES)
    return {preset.name: preset for preset in presets}


PRESETS: dict[str, Preset] = _build_catalogue()


def list_presets() -> list[Preset]:
    """Return every preset in catalogue order.

    Per data set: baselines, ResNet-110 block gates, layer gates, then (CIFAR-10 only)
    ResNet-34 block gates.
    """
    return list(PRESETS.values())


def get_preset(name: str) -> Preset:
    """Return the preset called `name`, or raise UnknownPresetError with the closest names."""
    preset = PRESETS.get(name)
    if preset is not None:
        return preset
    message = f"unknown preset {name!r}"
    close = difflib.get_close_matches(name, list(PRESETS), n=3, cutoff=0.6)
    if close:
        message += f" (closest names: {', '.join(close)})"
    raise UnknownPresetError("name", message, name)
