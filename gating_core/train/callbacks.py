"""Training events and the callbacks that react to them.

The trainer calls these hooks and nothing else, so the same loop runs inside a
worker (which writes metrics to the database), the CLI (which draws a progress
bar) and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gating_core.train.trainer import TrainState


@dataclass(frozen=True)
class EpochMetrics:
    """Summary of one epoch. Losses are means per image; accuracies and errors are fractions."""

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

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


class StopReason(str, Enum):
    CANCELLED = "cancelled"
    DIVERGED = "diverged"


class StopTraining(Exception):
    """Raised by a callback to end training early; the trainer lets it propagate."""

    def __init__(self, reason: StopReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DivergenceError(StopTraining):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, iteration: int, last_finite: EpochMetrics | None) -> None:
        super().__init__(
            StopReason.DIVERGED,
            f"the training loss became non-finite in epoch {epoch} at iteration {iteration}",
        )
        self.epoch = epoch
        self.iteration = iteration
        self.last_finite = last_finite


class Callback:
    """Base class with no-op hooks; subclasses override the ones they need."""

    def on_train_start(self, state: TrainState) -> None:
        """Called once before the first epoch that this process trains, also after a resume."""

    def on_epoch_start(self, state: TrainState) -> None:
        """Called before each epoch; `state.epoch` counts the epochs completed so far."""

    def on_step(self, state: TrainState) -> None:
        """Called after every optimiser step. Must stay cheap and must not read tensors."""

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        """Called after each epoch's evaluation, once `state.epoch` includes that epoch."""

    def on_train_end(self, state: TrainState) -> None:
        """Called once after the last epoch."""


class CallbackList(Callback):
    """Forwards every event to each callback in order."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        self.callbacks = list(callbacks)

    def on_train_start(self, state: TrainState) -> None:
        for callback in self.callbacks:
            callback.on_train_start(state)

    def on_epoch_start(self, state: TrainState) -> None:
        for callback in self.callbacks:
            callback.on_epoch_start(state)

    def on_step(self, state: TrainState) -> None:
        for callback in self.callbacks:
            callback.on_step(state)

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(state, metrics)

    def on_train_end(self, state: TrainState) -> None:
        for callback in self.callbacks:
            callback.on_train_end(state)
