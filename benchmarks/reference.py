"""The reference training loop that GateLab's trainer is timed against.

It is the loop of the usual PyTorch CIFAR training scripts: a map-style data
set that hands out PIL images (as `torchvision.datasets.CIFAR10` does), the
torchvision transforms RandomCrop(32, padding=4), RandomHorizontalFlip,
ToTensor and Normalize, a `DataLoader` with worker processes, and float32
training of a contiguous (NCHW) model with `torch.optim.SGD` in its default
implementation. It reads the loss with `.item()` after every step, as those
scripts do to print a running loss.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from gating_core.models import build_model
from gating_core.spec import RunSpec


class PilImages(Dataset):
    """Decoded uint8 (N, 32, 32, 3) images served one at a time as transformed PIL images."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: transforms.Compose) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = Image.fromarray(self.images[index])
        return self.transform(image), int(self.labels[index])


def reference_transform(mean: Sequence[float], std: Sequence[float]) -> transforms.Compose:
    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


class ReferenceLoop:
    """Trains the spec's network on PIL images through a DataLoader, in float32."""

    def __init__(self, spec: RunSpec, images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                 std: Sequence[float], workers: int, num_classes: int = 10) -> None:
        torch.manual_seed(spec.seed)
        self.model = build_model(spec.model, num_classes)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=spec.train.lr,
            momentum=spec.train.momentum,
            weight_decay=spec.train.weight_decay,
        )
        dataset = PilImages(images, labels, reference_transform(mean, std))
        self.loader = DataLoader(dataset, batch_size=spec.train.batch_size, shuffle=True, num_workers=workers)
        self.gate_loss_weight = spec.gate_loss_weight

    def run_epoch(self) -> tuple[float, float]:
        """Train one epoch and return its seconds and mean training loss."""
        self.model.train()
        started = time.perf_counter()
        loss_sum = 0.0
        steps = 0
        for images, labels in self.loader:
            output = self.model(images)
            loss = F.cross_entropy(output.logits, labels) + self.gate_loss_weight * output.gate_loss

            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

            loss_sum += loss.item()
            steps += 1
        return time.perf_counter() - started, loss_sum / max(1, steps)
