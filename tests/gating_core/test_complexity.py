"""Tests of parameter and MAC counts against the published figures of the architectures.

The device comes from GATELAB_TEST_DEVICE (default cpu).
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from gating_core.models import build_model
from gating_core.models.complexity import (
    count_macs,
    count_parameters,
    describe_architectures,
    gated_stage_macs,
)
from gating_core.spec import GATE_KINDS, GateSpec, ModelSpec

DEVICE = torch.device(os.environ.get("GATELAB_TEST_DEVICE", "cpu"))


def make_model(arch: str = "resnet", block: str = "basic", depth: int = 20, gate: str = "none",
               shortcut: str | None = None) -> nn.Module:
    spec = ModelSpec(arch=arch, block=block, depth=depth, shortcut=shortcut, gate=GateSpec(kind=gate))
    return build_model(spec, num_classes=10).to(DEVICE)


def within(value: int, expected: float, tolerance: float) -> bool:
    return abs(value - expected) <= tolerance * expected


def test_resnet20_option_a_parameters_exact() -> None:
    # The published CIFAR ResNet-20 with option A shortcuts has 269,722 parameters.
    assert count_parameters(make_model(depth=20, shortcut="A")) == 269_722


# Published parameter counts of these networks, in millions to two digits.
PUBLISHED_PARAMETERS = [
    ("resnet", "basic", 20, 0.27e6),
    ("resnet", "basic", 56, 0.85e6),
    ("resnet", "basic", 110, 1.7e6),
    ("resnet", "bottleneck", 164, 1.7e6),
    ("preact_resnet", "bottleneck", 164, 1.7e6),
]


@pytest.mark.parametrize(("arch", "block", "depth", "expected"), PUBLISHED_PARAMETERS)
def test_parameters_match_published(arch: str, block: str, depth: int, expected: float) -> None:
    parameters = count_parameters(make_model(arch, block, depth))

    assert within(parameters, expected, 0.02), parameters


# Commonly published MACs per 32x32 image of these CIFAR ResNets (conv and linear layers).
PUBLISHED_MACS = [(20, 41e6), (110, 253e6)]


@pytest.mark.parametrize(("depth", "expected"), PUBLISHED_MACS)
def test_macs_match_published(depth: int, expected: float) -> None:
    macs = count_macs(make_model(depth=depth))

    assert within(macs, expected, 0.03), macs


def test_macs_of_single_layers() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, kernel_size=3, stride=2, padding=1), nn.Flatten(), nn.Linear(4 * 16 * 16, 5))

    macs = count_macs(model)

    assert macs == (4 * 16 * 16) * (3 * 3 * 3) + (4 * 16 * 16) * 5


def test_count_macs_keeps_training_mode() -> None:
    model = make_model(depth=8).train()
    running_mean = model.bn1.running_mean.clone()

    count_macs(model)

    assert model.training
    assert torch.equal(model.bn1.running_mean, running_mean)


def test_gate_macs_add_to_backbone() -> None:
    plain = count_macs(make_model(depth=8))
    gated = count_macs(make_model(depth=8, gate="exclusive"))

    # One 1x1 gate convolution per unit, with the unit's input channels and output map.
    gate_macs = 16 * (16 * 32 * 32) + 16 * (32 * 16 * 16) + 32 * (64 * 8 * 8)
    assert gated - plain == gate_macs


def test_gated_stage_macs_counts_later_units() -> None:
    model = make_model(depth=20, gate="model1")

    # Units 2 and 3 of stage 3: two 3x3 convolutions of 64 -> 64 channels on 8x8 each.
    assert gated_stage_macs(model) == 2 * 2 * (64 * 8 * 8) * (64 * 3 * 3)


def test_gated_stage_macs_rejects_layer_gate() -> None:
    with pytest.raises(ValueError, match="block-level gate"):
        gated_stage_macs(make_model(depth=8, gate="two_way"))


def test_describe_lists_every_combination() -> None:
    rows = describe_architectures()

    names = {row["name"] for row in rows}
    assert names == {"ResNet-110", "ResNet-164", "PreResNet-110", "PreResNet-164", "ResNet-34"}
    assert len(rows) == len(names) * len(GATE_KINDS)
    assert {(row["name"], row["gate"]) for row in rows} == {(name, gate) for name in names for gate in GATE_KINDS}


@pytest.mark.parametrize(
    ("arch", "block", "depth", "gate"),
    [("resnet", "basic", 110, "exclusive"), ("preact_resnet", "bottleneck", 164, "model2"),
     ("resnet34", "basic", 34, "two_way"), ("resnet", "bottleneck", 164, "model3")],
)
def test_describe_matches_built_network(arch: str, block: str, depth: int, gate: str) -> None:
    rows = describe_architectures()
    row = next(row for row in rows if (row["arch"], row["block"], row["gate"]) == (arch, block, gate))
    model = make_model(arch, block, depth, gate)

    assert row["params"] == count_parameters(model)
    assert row["gate_params"] == sum(count_parameters(module) for module in model.gate_modules())
    assert row["macs"] == count_macs(model)
    assert row["gate_count"] == model.gate_count
    assert row["gated_stage"] == model.gated_stage
    if model.gated_stage is None:
        assert row["gated_stage_macs"] is None
    else:
        assert row["gated_stage_macs"] == gated_stage_macs(model)


def test_describe_returns_copies() -> None:
    describe_architectures()[0]["params"] = -1

    assert describe_architectures()[0]["params"] > 0


def test_describe_rejects_one_class() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        describe_architectures(num_classes=1)
