"""Device and numeric precision choices for training and evaluation."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from gating_core.spec import Precision

logger = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """Return the CUDA device when `name` is 'auto' and one is present, else the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N; received {name!r}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available on this machine")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Report whether the device has native bf16 arithmetic (AVX512-BF16 or AMX on CPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@dataclass(frozen=True)
class PrecisionPlan:
    """The dtype that autocast uses, or None for plain float32."""

    autocast_dtype: torch.dtype | None
    device: torch.device

    @property
    def name(self) -> str:
        return "bf16" if self.autocast_dtype == torch.bfloat16 else "float32"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the enclosed forward pass under autocast when the plan uses bf16.

        Parameters and BatchNorm statistics stay float32 under autocast; only the
        activations of matrix and convolution operations drop to bf16.
        """
        if self.autocast_dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype):
            yield


def plan_precision(requested: Precision, device: torch.device) -> PrecisionPlan:
    """Pick bf16 autocast for 'auto' where the device supports it; reject 'bf16' where it does not."""
    supported = bf16_supported(device)
    if requested == "float32" or (requested == "auto" and not supported):
        return PrecisionPlan(None, device)
    if requested == "bf16" and not supported:
        raise ValueError(
            f"train.precision is 'bf16' but device {device} has no bf16 support; "
            "use 'auto' or 'float32'"
        )
    return PrecisionPlan(torch.bfloat16, device)
