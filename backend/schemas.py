"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gating_core.presets import SchemeName
from gating_core.spec import RunSpec

ItemT = TypeVar("ItemT")

# One grid axis may list at most this many values, well above any sweep the run
# cap allows, so that a runaway list is refused before anything expands it.
MAX_GRID_VALUES = 10_000


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, with the count of all matching items."""

    data: list[ItemT]
    count: int


class SweepCreate(BaseModel):
    """A base run spec and a grid; the sweep has one run per combination of grid values."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, description="Name shown in lists and plots.")
    base: RunSpec = Field(default_factory=RunSpec, description="Spec shared by every run of the sweep.")
    grid: dict[str, Annotated[list[Any], Field(max_length=MAX_GRID_VALUES)]] = Field(
        ...,
        max_length=20,
        description=(
            "Spec fields to vary, each with its list of values, for example "
            '{"gate_loss_weight": [0.001, 0.1, 10], "seed": [0, 1, 2]}. Keys are spec fields '
            "in dotted form (model.depth, train.epochs, ...); 'lambda' is short for gate_loss_weight."
        ),
    )
    baseline_run_id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="A finished run drawn as the baseline line on the sweep page."
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


# Per-sample analyses: requests that a worker performs, and the tables that the API computes.

AnalysisStatus = Literal["queued", "running", "succeeded", "failed"]
OodDatasetName = Literal["fashion-mnist", "cifar100", "svhn", "corruption"]
CorruptionKind = Literal["gaussian_noise", "gaussian_blur", "contrast", "jpeg"]
# Up to 51 thresholds gives a 0.02 grid over [0, 1]; every threshold is one pass over the images.
MAX_HARD_SKIP_THRESHOLDS = 51
DEFAULT_HARD_SKIP_THRESHOLDS = [round(0.1 * step, 1) for step in range(11)]


class OodParams(BaseModel):
    """Which out-of-distribution images to evaluate the run on."""

    model_config = ConfigDict(extra="forbid")

    dataset: OodDatasetName = Field(
        ...,
        description=(
            "fashion-mnist (padded to 32x32, gray repeated to 3 channels), cifar100, svhn, or 'corruption': "
            "the run's own test images with a corruption at a severity."
        ),
    )
    corruption: CorruptionKind | None = Field(None, description="Corruption kind; required when dataset is 'corruption'.")
    severity: int | None = Field(None, ge=1, le=5, description="Corruption severity 1-5; required when dataset is 'corruption'.")
    limit: int | None = Field(
        None, ge=1, le=100_000, description="Evaluate at most this many images: the first of a fixed random order."
    )
    batch_size: int = Field(500, ge=1, le=4096, description="Images per forward pass.")

    @model_validator(mode="after")
    def _corruption_fields(self) -> OodParams:
        needs_corruption = self.dataset == "corruption"
        given = {"corruption": self.corruption, "severity": self.severity}
        if needs_corruption and (self.corruption is None or self.severity is None):
            raise ValueError(f"corruption and severity are required when dataset is 'corruption'; received {given}")
        if not needs_corruption and (self.corruption is not None or self.severity is not None):
            raise ValueError(
                f"corruption and severity must be empty when dataset is {self.dataset!r}; received {given}"
            )
        return self

    @property
    def variant(self) -> str:
        """The stored evaluation's variant: 'kind-severity' for a corruption, else 'ood'.

        It is never empty, so that the run's own test results stay the default that
        sample queries without a variant return.
        """
        return f"{self.corruption}-{self.severity}" if self.dataset == "corruption" else "ood"


class HardSkipParams(BaseModel):
    """Thresholds of a hard-skip curve and the images it runs on."""

    model_config = ConfigDict(extra="forbid")

    thresholds: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: list(DEFAULT_HARD_SKIP_THRESHOLDS),
        min_length=1,
        max_length=MAX_HARD_SKIP_THRESHOLDS,
        description="Skip thresholds τ from 0 to 1: an image skips the gated stage when its g < τ.",
    )
    limit: int | None = Field(
        None, ge=1, le=100_000, description="Use at most this many of the run's test images: the first of a fixed random order."
    )
    batch_size: int = Field(500, ge=1, le=4096, description="Images per forward pass; wall time per image depends on it.")
    baseline_run_id: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="A finished ungated run drawn as the baseline point; default: the sweep's baseline.",
    )


class TrainSamplesParams(BaseModel):
    """Which training images get per-sample gate values."""

    model_config = ConfigDict(extra="forbid")

    images: Literal["trained", "all"] = Field(
        "trained", description="trained: the images the run trained on. all: every image of the training split."
    )
    batch_size: int = Field(500, ge=1, le=4096, description="Images per forward pass.")


class OodAnalysisCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["ood"]
    params: OodParams


class HardSkipAnalysisCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["hard_skip"]
    params: HardSkipParams = Field(default_factory=HardSkipParams)


class TrainSamplesAnalysisCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["train_samples"]
    params: TrainSamplesParams = Field(default_factory=TrainSamplesParams)


AnalysisCreate = Annotated[
    OodAnalysisCreate | HardSkipAnalysisCreate | TrainSamplesAnalysisCreate, Field(discriminator="kind")
]


class AnalysisPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    kind: str
    params: dict[str, Any]
    status: str = Field(description="queued, running, succeeded or failed.")
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class ScoreSetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    dataset: str
    split: str
    count: int = Field(description="Images in the split; images without a score have none.")
    scored: int = Field(description="Images that have a score.")
    created_at: datetime


class GateHistogram(BaseModel):
    edges: list[float] = Field(description="Bin edges over [0, 1]; the last bin includes 1.")
    correct: list[int] = Field(description="Correctly classified images per bin.")
    wrong: list[int] = Field(description="Wrongly classified images per bin.")


class ClassSkipRow(BaseModel):
    label: int
    class_name: str
    count: int
    skip_rate: float | None = Field(description="Fraction of the class's images with g below the threshold.")
    mean_gate: float | None
    accuracy: float | None


class UnitClassHeatmap(BaseModel):
    units: list[str]
    classes: list[str]
    values: list[list[float | None]] = Field(description="Mean gate value, one row per unit and one column per class.")


class DistributionsPublic(BaseModel):
    run_id: int
    dataset: str
    split: str
    variant: str
    count: int
    threshold: float
    skip_rate: float | None
    mean_gate: float | None
    gate_names: list[str]
    histogram: GateHistogram
    classes: list[ClassSkipRow]
    heatmap: UnitClassHeatmap | None = Field(description="Present for layer-level gates, which have one gate per unit.")


class CorrelationPublic(BaseModel):
    rho: float | None = Field(description="Spearman's rank correlation; None when undefined (constant column, < 3 images).")
    p_value: float | None
    count: int = Field(description="Images with finite values in both columns.")


class DecileRow(BaseModel):
    decile: int = Field(description="1 holds the lowest scores, 10 the highest.")
    score_from: float
    score_to: float
    count: int
    skip_rate: float | None
    mean_gate: float | None


class ScoreDifficulty(BaseModel):
    score_set: ScoreSetPublic
    gate_vs_score: CorrelationPublic
    deciles: list[DecileRow]


class DifficultyPublic(BaseModel):
    run_id: int
    dataset: str
    split: str
    variant: str
    count: int
    threshold: float
    gate_vs_loss: CorrelationPublic
    gate_vs_misclassified: CorrelationPublic
    scores: ScoreDifficulty | None = Field(description="Present when a score set was requested.")


class DifferingSample(BaseModel):
    index: int = Field(description="Index of the image in its data set split.")
    label: int
    label_name: str | None
    gate_a: float
    gate_b: float
    prediction_a: int
    prediction_b: int
    correct_a: bool
    correct_b: bool


class ComparisonPage(Page[DifferingSample]):
    run_a: int
    run_b: int
    dataset: str
    split: str
    threshold: float
    common: int = Field(description="Images that both runs evaluated.")
    skipped_by_both: int
    skipped_by_a_only: int
    skipped_by_b_only: int


class SweepTableRow(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    gate_loss_weight: float = Field(serialization_alias="lambda", description="λ, the gate-loss weight.")
    runs: int
    finished: int
    mean_test_accuracy: float | None
    std_test_accuracy: float | None = Field(description="Sample standard deviation over seeds; None below two seeds.")
    median_test_accuracy: float | None
    mean_train_loss: float | None
    mean_gate: float | None
    skip_rate: float | None
    published_test_accuracy: float | None = Field(
        description="The study's figure for this network from the sweep's preset, as an accuracy; None when none is known."
    )
    published: str | None = Field(description="Where the published figure comes from.")


class SweepTable(BaseModel):
    sweep_id: int
    name: str
    preset: str | None
    baseline_run_id: int | None
    baseline_test_accuracy: float | None
    rows: list[SweepTableRow]


# Baselines: imported checkpoints that runs can start from.


class BaselineEvaluationPublic(BaseModel):
    dataset: str = Field(description="Test set: a data set name (its test split) or npz:PATH.")
    correct: int = Field(description="Images classified correctly.")
    count: int = Field(description="Images evaluated.")
    accuracy: float = Field(description="correct / count.")
    seconds: float = Field(description="Time the evaluation took, in seconds.")
    device: str = Field(description="Torch device of the evaluation, which always runs in float32.")
    created_at: datetime


class BaselinePublic(BaseModel):
    id: int
    name: str
    arch: str = Field(description="Short name of the network, such as resnet56.")
    dataset: str = Field(description="Data set the checkpoint was trained on.")
    model_spec: dict[str, Any] = Field(description="The network as a run spec's model section; runs from it must match.")
    normalization: dict[str, Any] = Field(description="Per-channel mean and std on the 0-1 scale that it was trained with.")
    normalization_name: str = Field(description="'imagenet' or 'cifar' when the values are that preset, else MEAN/STD.")
    source_filename: str = Field(description="Name of the uploaded file; kept for display only.")
    sha256: str = Field(description="SHA-256 of the uploaded file.")
    report: dict[str, Any] = Field(
        description="How the file's tensors matched the network: counts loaded and renamed, and the names left over."
    )
    evaluations: list[BaselineEvaluationPublic] = Field(description="Accuracy on each test set, measured at import.")
    created_at: datetime


class BaselineImportResult(BaseModel):
    created: bool = Field(
        description=(
            "False when the same file was imported before with the same arch, data set and normalisation: "
            "the existing baseline is returned, measured on any test set it lacked."
        )
    )
    baseline: BaselinePublic
