"""Gated residual networks for 32x32 images: architectures, gates, counts and weight loading.

`build_model(spec, num_classes)` is the entry point. The network's forward pass
returns a `ModelOutput` of logits, per-sample gate values and the unweighted gate loss.
"""

from __future__ import annotations

from gating_core.models.resnet import GatedResNet, ModelOutput
from gating_core.models.weights import LoadReport, load_matching_weights
from gating_core.spec import ModelSpec


def build_model(spec: ModelSpec, num_classes: int) -> GatedResNet:
    """Build the network and gate that `spec` describes, with `num_classes` outputs (at least 2)."""
    return GatedResNet(spec, num_classes)


__all__ = ["GatedResNet", "LoadReport", "ModelOutput", "build_model", "load_matching_weights"]
