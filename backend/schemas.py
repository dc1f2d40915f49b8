"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

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
