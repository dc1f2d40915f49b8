"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from gating_core.presets import SchemeName
from gating_core.spec import RunSpec

ItemT = TypeVar("ItemT")

# One grid axis may list at most this many values; the settings cap the total run count.
MAX_GRID_VALUES = 100


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, with the count of all matching items."""

    data: list[ItemT]
    count: int


class SweepCreate(BaseModel):
    """A base run spec and a grid; the sweep has one run per combination of grid values."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, description="Name shown in lists and plots.")
    base: RunSpec = Field(default_factory=RunSpec, description="Spec shared by every run of the sweep.")
    grid: dict[str, list[Any]] = Field(
        ...,
        description=(
            "Spec fields to vary, each with its list of values, for example "
            '{"gate_loss_weight": [0.001, 0.1, 10], "seed": [0, 1, 2]}. Keys are spec fields '
            "in dotted form (model.depth, train.epochs, ...); 'lambda' is short for gate_loss_weight."
        ),
    )
    baseline_run_id: int | None = Field(
        None, ge=1, description="A finished run drawn as the baseline line on the sweep page."
    )
    preset: str | None = Field(None, max_length=100, description="The preset this sweep came from, if any.")


class RunPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sweep_id: int | None
    name: str | None
    status: str
    progress: float = Field(description="Fraction of training iterations done, 0 to 1.")
    epoch: int = Field(description="Epochs completed.")
    total_epochs: int
    attempts: int
    cancel_requested: bool
    worker: str | None
    gpu: str | None
    error: str | None
    divergence: dict[str, Any] | None
    gate_kind: str
    gate_loss_weight: float
    seed: int
    test_accuracy: float | None
    train_loss: float | None
    mean_gate: float | None
    skip_rate: float | None = Field(description="Fraction of test images whose gate value is below 0.5.")
    precision: str | None
    environment: dict[str, Any] | None
    init_report: dict[str, Any] | None = Field(
        description="For runs started from a run or a baseline: tensors loaded, missing, unexpected and left fresh."
    )
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]


class SweepPublic(BaseModel):
    id: int
    name: str
    base_spec: dict[str, Any]
    grid: dict[str, list[Any]]
    preset: str | None
    baseline_run_id: int | None
    created_at: datetime
    run_ids: list[int]
    status_counts: dict[str, int]


class EpochMetricPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    train_loss: float
    gate_loss: float
    train_error: float
    test_accuracy: float
    test_loss: float
    mean_gate: float | None
    test_mean_gate: float | None
    validation_accuracy: float | None
    lr: float
    seconds: float
    images_per_second: float


class SamplePublic(BaseModel):
    position: int = Field(description="Rank of the image within the evaluated set.")
    index: int = Field(description="Index of the image in its data set split.")
    label: int
    label_name: str | None
    prediction: int
    prediction_name: str | None
    correct: bool
    confidence: float = Field(description="Maximum softmax probability.")
    loss: float = Field(description="Cross-entropy of this image.")
    energy: float = Field(description="-logsumexp of the logits; lower means more in-distribution.")
    gate: float | None = Field(description="Gate value, or the mean over units for layer-level gates.")
    gates: list[float] | None = Field(None, description="One value per gate, when requested.")


class SamplesPage(Page[SamplePublic]):
    dataset: str
    split: str
    variant: str
    gate_names: list[str]


class Health(BaseModel):
    status: str
    database: str
    broker: str
    version: str


class Message(BaseModel):
    message: str


class PresetPublic(BaseModel):
    """A named sweep that regenerates one experiment family; launch it with POST /api/presets/{name}/launch."""

    name: str
    description: str
    dataset: str
    network: str = Field(description="Network key, for example resnet110 or preresnet164.")
    gate: str = Field(description="Gate family, for example model1, model3-bce, two_way-3x3 or none.")
    scheme: str = Field(description="Training scheme of the base spec: scheme1, 164-epoch or constant.")
    base: dict[str, Any] = Field(
        description=(
            "Full RunSpec shared by every run. Presets that start from a baseline run have "
            'init {"source": "run", "id": null}: the id is given at launch.'
        )
    )
    grid: dict[str, list[Any]]
    run_count: int
    published: dict[str, Any] = Field(
        description="Published test errors of the same network with their sources, or {} when none are sourced."
    )
    requires_baseline_run: bool = Field(
        description="True when every run starts from the weights of a finished ungated run named at launch."
    )


class PresetLaunch(BaseModel):
    """Options for launching a preset. All are optional, except baseline_run_id for presets that need a baseline run."""

    model_config = ConfigDict(extra="forbid")

    baseline_run_id: int | None = Field(
        None,
        ge=1,
        description=(
            "A succeeded ungated run of the same network and data set. Required for presets with "
            "requires_baseline_run, whose runs all start from its weights. For the others it is only "
            "drawn as the baseline line on the sweep page."
        ),
    )
    seeds: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] | None = Field(
        None, min_length=1, max_length=MAX_GRID_VALUES, description="Seeds that replace the preset's."
    )
    lambdas: list[Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False)]] | None = Field(
        None, min_length=1, max_length=MAX_GRID_VALUES, description="Gate-loss weights that replace the preset's nine."
    )
    scheme: SchemeName | None = Field(
        None, description="Training scheme that replaces the preset's optimiser and schedule fields."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        description=(
            "Spec fields to set on the base, in dotted form, applied after the scheme; for a quick try "
            '{"train.epochs": 1, "data.train_subset": 512, "data.test_subset": 500}.'
        ),
    )
    name: str | None = Field(None, min_length=1, max_length=200, description="Sweep name. Default: the preset's name.")
