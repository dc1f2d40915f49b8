"""Run specifications: the network and its gate, the data, and the training schedule.

A `RunSpec` is everything a worker, the CLI or a test needs to train one run.
The backend reuses these models as request bodies, so the limits declared on the
fields are the limits that the OpenAPI page shows and that a request is checked
against.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

Architecture = Literal["resnet", "preact_resnet", "resnet34"]
BlockType = Literal["basic", "bottleneck"]
ShortcutType = Literal["A", "B"]
GateKind = Literal[
    "none",
    "exclusive",
    "shortcut_only",
    "two_way",
    "model1",
    "model1_2",
    "model2",
    "model3",
]
Precision = Literal["auto", "float32", "bf16"]

LAYER_GATES: tuple[str, ...] = ("exclusive", "shortcut_only", "two_way")
BLOCK_GATES: tuple[str, ...] = ("model1", "model1_2", "model2", "model3")
GATE_KINDS: tuple[str, ...] = ("none", *LAYER_GATES, *BLOCK_GATES)

# Deepest network a spec may ask for: ResNet-1202 (6n+2 with n=200) is the
# deepest CIFAR ResNet in He et al. 2015.
MAX_DEPTH = 1202
RESNET34_DEPTH = 34
RESNET34_UNITS = (3, 4, 6, 3)
CIFAR_STAGE_COUNT = 3
NAMED_NORMALIZATIONS = ("cifar", "imagenet")
TEST_DATASETS = ("cifar10", "cifar100")


def nested_error(field: str, message: str, value: object) -> ValidationError:
    """Build a validation error located at `field` inside the value being validated.

    A validator of a whole sub-model raises this so the error points at the exact
    field (model.gate.stage) rather than at the sub-model (model.gate).
    """
    detail = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(field,), input=value)
    return ValidationError.from_exception_data("spec", [detail])


class SpecModel(BaseModel):
    """Base for spec sections: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class GateSpec(SpecModel):
    """The gate type and its settings. Settings that a gate type does not use are ignored."""

    kind: GateKind = Field(
        "none",
        description=(
            "Gate type. Layer-level gates sit on every residual unit: exclusive, "
            "shortcut_only, two_way. Block-level gates sit over one stage: model1, "
            "model1_2, model2, model3. 'none' builds the plain network."
        ),
    )
    stage: int | None = Field(
        None,
        ge=1,
        le=4,
        description=(
            "Stage that a block-level gate covers, counted from 1. Default: the last "
            "stage of a CIFAR ResNet (3), the third of four for resnet34."
        ),
    )
    bias_init: float = Field(
        -6.0,
        ge=-20.0,
        le=20.0,
        allow_inf_nan=False,
        description=(
            "Initial bias b of exclusive and shortcut_only gates, g = sigmoid(conv1x1(x) + b). "
            "He et al. 2016 found -6 best."
        ),
    )
    two_way_kernel: Literal[1, 3] = Field(
        1, description="Kernel size of the two-filter convolution of a two_way gate."
    )
    hidden_units: int = Field(
        512,
        ge=1,
        le=4096,
        description="Width of the fully connected layer that block-level gates apply to the flattened o1.",
    )
    entropy_sigmoid: bool = Field(
        True,
        description=(
            "model2 only: g = sigmoid(s * (H / log K - 1/2)) when true, g = H / log K when false."
        ),
    )
    entropy_scale: float = Field(
        10.0,
        gt=0.0,
        le=1000.0,
        allow_inf_nan=False,
        description="model2 only: the scale s inside the sigmoid.",
    )
    model3_loss: Literal["ce", "bce"] = Field(
        "ce",
        description=(
            "model3 only: the gate loss that pushes samples towards skipping, cross-entropy "
            "over the (skip, use) pair or binary cross-entropy on the skip probability."
        ),
    )

    @property
    def is_layer_level(self) -> bool:
        return self.kind in LAYER_GATES

    @property
    def is_block_level(self) -> bool:
        return self.kind in BLOCK_GATES


class ModelSpec(SpecModel):
    """The residual network and its gate."""

    arch: Architecture = Field(
        "resnet",
        description=(
            "resnet: CIFAR ResNet (He et al. 2015). preact_resnet: pre-activation units "
            "(He et al. 2016). resnet34: ImageNet ResNet-34 with a 3x3 stride-1 stem and no max-pool."
        ),
    )
    block: BlockType = Field(
        "basic",
        description="Residual unit of resnet and preact_resnet: basic needs depth 6n+2, bottleneck 9n+2.",
    )
    depth: int = Field(
        20,
        ge=8,
        le=MAX_DEPTH,
        description="Number of weighted layers. Ignored by resnet34, which is always 34.",
    )
    shortcut: ShortcutType | None = Field(
        None,
        description=(
            "Shortcut where the shape changes: A zero-pads a stride-2 subsample (no parameters), "
            "B is a 1x1 convolution. Default: A for basic units of resnet and preact_resnet, "
            "B for bottleneck units and resnet34."
        ),
    )
    gate: GateSpec = Field(default_factory=GateSpec)

    @field_validator("depth")
    @classmethod
    def _check_depth(cls, depth: int, info: ValidationInfo) -> int:
        if info.data.get("arch") == "resnet34":
            return depth
        block = info.data.get("block")
        if block == "basic" and (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n+2 for basic units (8, 14, 20, ..., 110, ...); received {depth}")
        if block == "bottleneck" and (depth - 2) % 9 != 0:
            raise ValueError(
                f"depth must be 9n+2 for bottleneck units (11, 20, 29, ..., 164, ...); received {depth}"
            )
        return depth

    @field_validator("gate")
    @classmethod
    def _check_gate_stage(cls, gate: GateSpec, info: ValidationInfo) -> GateSpec:
        arch = info.data.get("arch")
        stage_count = len(RESNET34_UNITS) if arch == "resnet34" else CIFAR_STAGE_COUNT
        if gate.stage is not None and gate.stage > stage_count:
            raise nested_error(
                "stage", f"gate.stage must be between 1 and {stage_count} for {arch}; received {gate.stage}", gate.stage
            )
        return gate

    @property
    def stage_count(self) -> int:
        return len(RESNET34_UNITS) if self.arch == "resnet34" else CIFAR_STAGE_COUNT

    @property
    def units_per_stage(self) -> tuple[int, ...]:
        if self.arch == "resnet34":
            return RESNET34_UNITS
        layers_per_unit = 2 if self.block == "basic" else 3
        n = (self.depth - 2) // (3 * layers_per_unit)
        return (n, n, n)

    @property
    def effective_depth(self) -> int:
        return RESNET34_DEPTH if self.arch == "resnet34" else self.depth

    @property
    def effective_shortcut(self) -> ShortcutType:
        if self.shortcut is not None:
            return self.shortcut
        if self.arch == "resnet34" or self.block == "bottleneck":
            return "B"
        return "A"

    @property
    def gated_stage(self) -> int:
        """The 1-based stage that a block-level gate covers."""
        if self.gate.stage is not None:
            return self.gate.stage
        return 3

    @property
    def display_name(self) -> str:
        """A short name such as 'ResNet-110', 'PreResNet-164' or 'ResNet-34'."""
        if self.arch == "resnet34":
            return "ResNet-34"
        prefix = "PreResNet" if self.arch == "preact_resnet" else "ResNet"
        return f"{prefix}-{self.depth}"


# Pixel values lie in [0, 1], so a channel's mean does too, and its standard
# deviation is above 0 and at most 0.5. The upper limit of 1 leaves room for
# unusual inputs.
ChannelMean = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
ChannelStd = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]


class Normalization(SpecModel):
    """Per-channel mean and standard deviation on the 0-1 scale."""

    mean: tuple[ChannelMean, ChannelMean, ChannelMean]
    std: tuple[ChannelStd, ChannelStd, ChannelStd]

    @field_validator("std")
    @classmethod
    def _positive_std(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(not math.isfinite(v) or v <= 0 for v in value):
            raise ValueError(f"every std must be a finite number above 0; received {list(value)}")
        return value


NormalizationChoice = Annotated[
    Literal["cifar", "imagenet"] | Normalization,
    Field(
        description=(
            "Input normalisation: 'cifar' (the training set's statistics), 'imagenet' "
            "(mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225) or explicit mean and std."
        )
    ),
]


class DataSpec(SpecModel):
    """Which images a run trains and tests on."""

    dataset: Literal["cifar10", "cifar100"] = Field("cifar10", description="Training data set.")
    test_dataset: str | None = Field(
        None,
        max_length=300,
        description=(
            "Test set, when it is not the training data set's own test split: a data set "
            "name, or 'npz:PATH' for a .npz of uint8 x (N, 32, 32, 3) and labels y, with "
            "PATH relative to the data directory."
        ),
    )
    train_subset: int | None = Field(
        None, ge=1, le=50_000, description="Train on this many training images, chosen at random with a fixed seed."
    )
    test_subset: int | None = Field(
        None, ge=1, le=10_000, description="Test on the first this many images of a fixed random order."
    )
    validation_size: int = Field(
        0,
        ge=0,
        le=25_000,
        description="Hold out this many training images as a validation set (5000 gives the 45k/5k split).",
    )
    normalization: NormalizationChoice | None = Field(
        None,
        description=(
            "Input normalisation. Default: the baseline's when the run starts from one, "
            "else 'cifar'."
        ),
    )
    augment: bool = Field(True, description="Pad by 4, take a random 32x32 crop and flip at random.")

    @field_validator("test_dataset")
    @classmethod
    def _check_test_dataset(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("npz:"):
            path = value[len("npz:"):]
            if not path.endswith(".npz"):
                raise ValueError(f"an npz test set must name a .npz file; received {value!r}")
            if path.startswith("/") or ".." in path.split("/"):
                raise ValueError(
                    f"an npz test set path must be relative to the data directory and stay "
                    f"inside it; received {value!r}"
                )
            return value
        if value not in TEST_DATASETS:
            raise ValueError(
                f"test_dataset must be one of {', '.join(TEST_DATASETS)} or 'npz:PATH'; received {value!r}"
            )
        return value



class TrainSpec(SpecModel):
    """Optimiser and learning-rate schedule."""

    epochs: int = Field(250, ge=1, le=1000, description="Number of passes over the training images.")
    batch_size: int = Field(128, ge=1, le=4096, description="Images per optimiser step.")
    lr: float = Field(0.1, gt=0.0, le=10.0, allow_inf_nan=False, description="Learning rate after warm-up.")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum.")
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0, allow_inf_nan=False, description="L2 weight decay.")
    schedule: Literal["step", "constant"] = Field(
        "step", description="step: divide the lr by 10 at each milestone epoch. constant: keep it."
    )
    lr_milestones: list[Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=lambda: [82, 123],
        max_length=20,
        description="Epochs (counted from 1) after which a step schedule divides the lr by 10.",
    )
    warmup_iterations: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Train the first this many iterations at warmup_lr (He et al. use 390 for depth 110).",
    )
    warmup_lr: float = Field(0.01, gt=0.0, le=10.0, allow_inf_nan=False, description="Learning rate during warm-up.")
    precision: Precision = Field(
        "auto",
        description=(
            "auto: bf16 autocast where the device supports it, else float32. "
            "bf16 fails on a device without bf16 support."
        ),
    )
    channels_last: bool = Field(True, description="Keep activations in NHWC memory layout.")
    compile: bool = Field(False, description="Compile the model with torch.compile (CUDA only).")

    @field_validator("lr_milestones")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError(f"lr_milestones must be strictly increasing; received {value}")
        return value


class InitSpec(SpecModel):
    """Where the weights start."""

    source: Literal["scratch", "run", "baseline"] = Field(
        "scratch",
        description=(
            "scratch: Kaiming initialisation. run: the weights of a finished run. "
            "baseline: an imported checkpoint. Gate layers always start fresh."
        ),
    )
    id: int | None = Field(
        None, ge=1, le=2**31 - 1, description="The run or baseline id, for source run or baseline."
    )

    @model_validator(mode="after")
    def _id_matches_source(self) -> InitSpec:
        if self.source == "scratch" and self.id is not None:
            raise ValueError(f"init.id must be empty when init.source is 'scratch'; received {self.id}")
        if self.source != "scratch" and self.id is None:
            raise ValueError(f"init.id is required when init.source is {self.source!r}")
        return self


class RunSpec(SpecModel):
    """Everything needed to train and evaluate one run."""

    name: str | None = Field(None, max_length=200, description="Free-text label shown in tables.")
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    init: InitSpec = Field(default_factory=InitSpec)
    gate_loss_weight: float = Field(
        0.0,
        ge=0.0,
        le=1e6,
        allow_inf_nan=False,
        description="The gate-loss weight lambda: loss = cross-entropy + lambda * gate loss.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed for weights, batch order and augmentation.")
    record_train_samples: bool = Field(
        False,
        description="After training, also store per-sample gate values for every training image used.",
    )

    @field_validator("gate_loss_weight")
    @classmethod
    def _check_gate_loss(cls, weight: float, info: ValidationInfo) -> float:
        model = info.data.get("model")
        if model is not None and weight > 0 and model.gate.kind in ("none", "model2"):
            raise ValueError(
                f"gate_loss_weight must be 0 for gate kind {model.gate.kind!r}, which has no "
                f"gate loss; received {weight}"
            )
        return weight
