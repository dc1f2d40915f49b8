"""Per-sample evaluation: prediction, confidence, loss, energy and gate values for every image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from gating_core.data.pipeline import DeviceImages, eval_batches
from gating_core.train.precision import PrecisionPlan


@dataclass(frozen=True)
class SampleRecords:
    """One entry per evaluated image, in the order of `indices`.

    `indices` point into the original data set, so they name the image even when
    the evaluation used a subset. `gates` has one column per gate (see the
    model's `gate_names`) and holds the weight of the gated computation, so a low
    value means the image skips it. `energy` is -logsumexp(logits): lower means
    more in-distribution.
    """

    indices: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    confidence: np.ndarray
    loss: np.ndarray
    energy: np.ndarray
    gates: np.ndarray

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def correct(self) -> np.ndarray:
        return self.predictions == self.labels

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self) else float("nan")

    @property
    def gate(self) -> np.ndarray | None:
        """One gate value per image: the gate itself, or the mean over units for layer-level gates."""
        if self.gates.shape[1] == 0:
            return None
        return self.gates.mean(axis=1)


@torch.no_grad()
def evaluate_samples(
    model: torch.nn.Module,
    data: DeviceImages,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    precision: PrecisionPlan,
    batch_size: int = 500,
    channels_last: bool = True,
) -> SampleRecords:
    """Run the model in eval mode over every image of `data` and collect per-sample values."""
    was_training = model.training
    model.eval()
    outputs: dict[str, list[torch.Tensor]] = {
        name: [] for name in ("predictions", "confidence", "loss", "energy", "gates")
    }

    for images, labels in eval_batches(data, batch_size, mean, std, channels_last=channels_last):
        with precision.autocast():
            output = model(images)
        logits = output.logits.float()
        probabilities = logits.softmax(dim=1)
        confidence, predictions = probabilities.max(dim=1)

        outputs["predictions"].append(predictions)
        outputs["confidence"].append(confidence)
        outputs["loss"].append(F.cross_entropy(logits, labels, reduction="none"))
        outputs["energy"].append(-torch.logsumexp(logits, dim=1))
        outputs["gates"].append(output.gates.float())

    model.train(was_training)
    arrays = {name: _concatenate(parts) for name, parts in outputs.items()}
    return SampleRecords(
        indices=data.indices.copy(),
        labels=data.labels.cpu().numpy().astype(np.int64),
        predictions=arrays["predictions"].astype(np.int64),
        confidence=arrays["confidence"].astype(np.float32),
        loss=arrays["loss"].astype(np.float32),
        energy=arrays["energy"].astype(np.float32),
        gates=arrays["gates"].astype(np.float32).reshape(len(data.indices), -1),
    )


def _concatenate(parts: list[torch.Tensor]) -> np.ndarray:
    if not parts:
        return np.zeros((0,), dtype=np.float32)
    return torch.cat(parts).cpu().numpy()
