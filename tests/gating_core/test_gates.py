"""Tests of the gate modules: outputs and losses against values computed by hand, and unit-level identities.

The device comes from GATELAB_TEST_DEVICE (default cpu).
"""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gating_core.models import build_model
from gating_core.models.blocks import BasicUnit, PreActBottleneckUnit, UnitOutput
from gating_core.models.gates import (
    DistanceStageGate,
    EntropyStageGate,
    ExclusiveGate,
    ShortcutOnlyGate,
    SigmoidStageGate,
    SoftmaxStageGate,
    TwoWayGate,
    make_layer_gate,
)
from gating_core.spec import GateSpec, ModelSpec

DEVICE = torch.device(os.environ.get("GATELAB_TEST_DEVICE", "cpu"))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def tensor(values: list, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype, device=DEVICE)


def set_parameters(module: nn.Module, **values: list) -> None:
    """Overwrite parameters by dotted name, e.g. conv_weight for conv.weight."""
    with torch.no_grad():
        for name, value in values.items():
            parameter = module.get_parameter(name.replace("_", ".", 1))
            parameter.copy_(torch.tensor(value, dtype=parameter.dtype).view_as(parameter))


# A 1-channel input of two images of 1x2 pixels, and the shortcut and residual maps
# that a unit would combine.
UNIT_INPUT = [[[[1.0, 3.0]]], [[[-2.0, 0.0]]]]
SHORTCUT = [[[[10.0, 20.0]]], [[[30.0, 40.0]]]]
RESIDUAL = [[[[1.0, 2.0]]], [[[3.0, 4.0]]]]


def sigmoid_gate_by_hand(weight: float, bias: float) -> list[list[float]]:
    return [[sigmoid(weight * x + bias) for x in image[0][0]] for image in UNIT_INPUT]


@pytest.mark.parametrize("gate_class", [ExclusiveGate, ShortcutOnlyGate])
def test_sigmoid_layer_gate_by_hand(gate_class: type) -> None:
    gate = gate_class(1, 1, stride=1, bias_init=-6.0).to(device=DEVICE, dtype=torch.float64)
    set_parameters(gate, conv_weight=[0.5], conv_bias=[-1.0])
    g = sigmoid_gate_by_hand(0.5, -1.0)

    out, use, loss = gate(tensor(UNIT_INPUT), tensor(SHORTCUT), tensor(RESIDUAL))

    if gate_class is ExclusiveGate:
        expected_out = [
            [(1 - g[b][i]) * SHORTCUT[b][0][0][i] + g[b][i] * RESIDUAL[b][0][0][i] for i in range(2)] for b in range(2)
        ]
    else:
        expected_out = [
            [(1 - g[b][i]) * SHORTCUT[b][0][0][i] + RESIDUAL[b][0][0][i] for i in range(2)] for b in range(2)
        ]
    norms = [math.sqrt(g[b][0] ** 2 + g[b][1] ** 2) for b in range(2)]
    torch.testing.assert_close(out.view(2, 2), tensor(expected_out))
    torch.testing.assert_close(use, tensor([(g[0][0] + g[0][1]) / 2, (g[1][0] + g[1][1]) / 2]))
    torch.testing.assert_close(loss, tensor((norms[0] + norms[1]) / 2))


@pytest.mark.parametrize("gate_class", [ExclusiveGate, ShortcutOnlyGate])
def test_sigmoid_layer_gate_mixed_dtypes(gate_class: type) -> None:
    """Under autocast a unit can get a bfloat16 branch and a float32 shortcut; the output is float32."""
    gate = gate_class(1, 1, stride=1, bias_init=-6.0).to(device=DEVICE)
    set_parameters(gate, conv_weight=[0.5], conv_bias=[-1.0])
    shortcut = torch.tensor(SHORTCUT, device=DEVICE, dtype=torch.float32)
    residual = torch.tensor(RESIDUAL, device=DEVICE, dtype=torch.bfloat16)
    g = torch.tensor(sigmoid_gate_by_hand(0.5, -1.0), device=DEVICE, dtype=torch.float32).view(2, 1, 1, 2)

    out, _, _ = gate(torch.tensor(UNIT_INPUT, device=DEVICE), shortcut, residual)

    residual_part = g * residual.float() if gate_class is ExclusiveGate else residual.float()
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, (1 - g) * shortcut + residual_part)


def test_sigmoid_layer_gate_starts_at_bias() -> None:
    gate = ExclusiveGate(4, 8, stride=2, bias_init=-3.0).to(DEVICE)

    _, use, _ = gate(torch.randn(2, 4, 6, 6, device=DEVICE), torch.zeros(2, 8, 3, 3, device=DEVICE),
                     torch.zeros(2, 8, 3, 3, device=DEVICE))

    assert torch.count_nonzero(gate.conv.weight) == 0
    torch.testing.assert_close(use, torch.full((2,), sigmoid(-3.0), device=DEVICE))


def test_two_way_gate_by_hand() -> None:
    gate = TwoWayGate(1, stride=1, kernel_size=1).to(device=DEVICE, dtype=torch.float64)
    set_parameters(gate, conv_weight=[1.0, -1.0], conv_bias=[0.0, 0.5])

    out, use, loss = gate(tensor(UNIT_INPUT), tensor(SHORTCUT), tensor(RESIDUAL))

    # Channel 0 ("use", g1) has logit x and channel 1 ("skip", g2) has logit 0.5 - x.
    g1 = [[sigmoid(x - (0.5 - x)) for x in image[0][0]] for image in UNIT_INPUT]
    g2 = [[1 - value for value in row] for row in g1]
    expected_out = [
        [g1[b][i] * RESIDUAL[b][0][0][i] + g2[b][i] * SHORTCUT[b][0][0][i] for i in range(2)] for b in range(2)
    ]
    expected_loss = -(math.log(g2[0][0]) + math.log(g2[0][1]) + math.log(g2[1][0]) + math.log(g2[1][1])) / 4
    torch.testing.assert_close(out.view(2, 2), tensor(expected_out))
    torch.testing.assert_close(use, tensor([(g1[0][0] + g1[0][1]) / 2, (g1[1][0] + g1[1][1]) / 2]))
    torch.testing.assert_close(loss, tensor(expected_loss))


@pytest.mark.parametrize("stride", [1, 2])
def test_two_way_kernel_three_keeps_residual_shape(stride: int) -> None:
    gate = TwoWayGate(4, stride=stride, kernel_size=3).to(DEVICE)
    x = torch.randn(2, 4, 8, 8, device=DEVICE)
    branch = torch.randn(2, 6, 8 // stride, 8 // stride, device=DEVICE)

    out, use, loss = gate(x, branch, branch)

    assert gate.conv.kernel_size == (3, 3)
    assert out.shape == branch.shape
    assert use.shape == (2,)
    torch.testing.assert_close(loss, torch.tensor(math.log(2.0), device=DEVICE))


def test_two_way_rejects_kernel_two() -> None:
    with pytest.raises(ValueError, match="two_way_kernel"):
        TwoWayGate(4, stride=1, kernel_size=2)


# Two images whose o1 has 2 channels of 1x1 pixels, and their o2.
FIRST_OUTPUT = [[[[1.0]], [[2.0]]], [[[-1.0]], [[0.5]]]]
STAGE_OUTPUT = [[[[4.0]], [[-1.0]]], [[[2.0]], [[3.0]]]]


def hidden_by_hand() -> list[float]:
    """Return relu(o1[0] + o1[1]) per image: the hidden layer with weight [1, 1] and bias 0."""
    return [max(0.0, image[0][0][0] + image[1][0][0]) for image in FIRST_OUTPUT]


def make_scalar_stage_gate(gate_class: type) -> nn.Module:
    gate = gate_class(2, 1).to(device=DEVICE, dtype=torch.float64)
    set_parameters(gate, hidden_weight=[1.0, 1.0], hidden_bias=[0.0], head_weight=[2.0], head_bias=[-1.0])
    return gate


def test_model1_gate_by_hand() -> None:
    gate = make_scalar_stage_gate(SigmoidStageGate)
    o1, o2 = tensor(FIRST_OUTPUT), tensor(STAGE_OUTPUT)

    decision = gate.decide(o1)
    combined = gate.combine(decision, o1, o2)
    loss = gate.loss(decision, o1, combined)

    g = [sigmoid(2.0 * h - 1.0) for h in hidden_by_hand()]
    expected = [[g[b] * STAGE_OUTPUT[b][c][0][0] + (1 - g[b]) * FIRST_OUTPUT[b][c][0][0] for c in range(2)]
                for b in range(2)]
    torch.testing.assert_close(decision.use, tensor(g))
    torch.testing.assert_close(combined.view(2, 2), tensor(expected))
    torch.testing.assert_close(loss, tensor((g[0] ** 2 + g[1] ** 2) / 2))


def test_model1_2_gate_by_hand() -> None:
    gate = make_scalar_stage_gate(DistanceStageGate)
    o1, o2 = tensor(FIRST_OUTPUT), tensor(STAGE_OUTPUT)

    decision = gate.decide(o1)
    combined = gate.combine(decision, o1, o2)
    loss = gate.loss(decision, o1, combined)

    g = [sigmoid(2.0 * h - 1.0) for h in hidden_by_hand()]
    squared_distances = []
    for b in range(2):
        total = 0.0
        for c in range(2):
            out = g[b] * STAGE_OUTPUT[b][c][0][0] + (1 - g[b]) * FIRST_OUTPUT[b][c][0][0]
            total += (FIRST_OUTPUT[b][c][0][0] - out) ** 2
        squared_distances.append(total)
    torch.testing.assert_close(loss, tensor((squared_distances[0] + squared_distances[1]) / 2))


@pytest.mark.parametrize("entropy_sigmoid", [True, False])
def test_model2_gate_by_hand(entropy_sigmoid: bool) -> None:
    gate = EntropyStageGate(2, 2, num_classes=3, entropy_sigmoid=entropy_sigmoid, entropy_scale=4.0)
    gate = gate.to(device=DEVICE, dtype=torch.float64)
    # The hidden layer passes o1 through (identity weight, ReLU), and the head's three
    # logits are (f0, f1, 0) for features f.
    set_parameters(
        gate,
        hidden_weight=[1.0, 0.0, 0.0, 1.0],
        hidden_bias=[0.0, 0.0],
        head_weight=[1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        head_bias=[0.0, 0.0, 0.0],
    )
    o1 = tensor(FIRST_OUTPUT)

    decision = gate.decide(o1)
    loss = gate.loss(decision, o1, o1)

    expected = []
    for image in FIRST_OUTPUT:
        logits = [max(0.0, image[0][0][0]), max(0.0, image[1][0][0]), 0.0]
        total = sum(math.exp(z) for z in logits)
        probabilities = [math.exp(z) / total for z in logits]
        entropy = -sum(p * math.log(p) for p in probabilities)
        normalized = entropy / math.log(3)
        expected.append(sigmoid(4.0 * (normalized - 0.5)) if entropy_sigmoid else normalized)
    torch.testing.assert_close(decision.use, tensor(expected))
    torch.testing.assert_close(decision.skip, 1 - tensor(expected))
    assert loss.item() == 0.0


@pytest.mark.parametrize("loss_kind", ["ce", "bce"])
def test_model3_gate_by_hand(loss_kind: str) -> None:
    gate = SoftmaxStageGate(2, 1, loss_kind).to(device=DEVICE, dtype=torch.float64)
    # Logits: skip = 0.5 * h + 0.25, use = -h.
    set_parameters(gate, hidden_weight=[1.0, 1.0], hidden_bias=[0.0], head_weight=[0.5, -1.0],
                   head_bias=[0.25, 0.0])
    o1, o2 = tensor(FIRST_OUTPUT), tensor(STAGE_OUTPUT)

    decision = gate.decide(o1)
    combined = gate.combine(decision, o1, o2)
    loss = gate.loss(decision, o1, combined)

    g1 = []
    for h in hidden_by_hand():
        skip_logit, use_logit = 0.5 * h + 0.25, -h
        g1.append(math.exp(skip_logit) / (math.exp(skip_logit) + math.exp(use_logit)))
    g2 = [1 - value for value in g1]
    expected = [[g1[b] * FIRST_OUTPUT[b][c][0][0] + g2[b] * STAGE_OUTPUT[b][c][0][0] for c in range(2)]
                for b in range(2)]
    torch.testing.assert_close(decision.use, tensor(g2))
    torch.testing.assert_close(decision.skip, tensor(g1))
    torch.testing.assert_close(combined.view(2, 2), tensor(expected))
    torch.testing.assert_close(loss, tensor(-(math.log(g1[0]) + math.log(g1[1])) / 2))


def test_model3_rejects_unknown_loss() -> None:
    with pytest.raises(ValueError, match="model3_loss"):
        SoftmaxStageGate(2, 1, "mse")


def test_forced_stage_gate_weights() -> None:
    gate = SoftmaxStageGate(2, 1, "ce").to(device=DEVICE, dtype=torch.float64)
    gate.forced_value = 0.25

    decision = gate.decide(tensor(FIRST_OUTPUT))
    loss = gate.loss(decision, tensor(FIRST_OUTPUT), tensor(FIRST_OUTPUT))

    torch.testing.assert_close(decision.use, tensor([0.25, 0.25]))
    torch.testing.assert_close(decision.skip, tensor([0.75, 0.75]))
    torch.testing.assert_close(loss, tensor(-math.log(0.75)))


def test_exclusive_network_loss_averages_units() -> None:
    model = build_model(ModelSpec(depth=8, gate=GateSpec(kind="exclusive")), 10).to(DEVICE)

    with model.force_gate(0.5):
        output = model(torch.randn(2, 3, 32, 32, device=DEVICE))

    # Depth 8 has one unit per stage, with g maps of 16x32x32, 32x16x16 and 64x8x8.
    norms = [0.5 * math.sqrt(16 * 32 * 32), 0.5 * math.sqrt(32 * 16 * 16), 0.5 * math.sqrt(64 * 8 * 8)]
    torch.testing.assert_close(output.gate_loss, torch.tensor(sum(norms) / 3, device=DEVICE))


def test_two_way_network_loss_averages_units() -> None:
    model = build_model(ModelSpec(depth=8, gate=GateSpec(kind="two_way")), 10).to(DEVICE)

    with model.force_gate(0.2):
        output = model(torch.randn(2, 3, 32, 32, device=DEVICE))

    torch.testing.assert_close(output.gate_loss, torch.tensor(-math.log(0.8), device=DEVICE))
    torch.testing.assert_close(output.gates, torch.full((2, 3), 0.2, device=DEVICE))


def make_unit(unit_class: type, gate_kind: str) -> nn.Module:
    unit = unit_class(16, 8, stride=2, shortcut="B")
    unit.gate = make_layer_gate(GateSpec(kind=gate_kind), unit.in_channels, unit.out_channels, unit.stride)
    unit = unit.to(device=DEVICE, dtype=torch.float64).eval()
    with torch.no_grad():
        for module in unit.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return unit


def finish(unit: nn.Module, combined: torch.Tensor) -> torch.Tensor:
    return combined if unit.preact else F.relu(combined)


@pytest.mark.parametrize("unit_class", [BasicUnit, PreActBottleneckUnit])
@pytest.mark.parametrize(("gate_kind", "value"), [("exclusive", 1.0), ("exclusive", 0.0), ("shortcut_only", 0.0),
                                                  ("two_way", 1.0), ("two_way", 0.0)])
def test_forced_unit_identities(unit_class: type, gate_kind: str, value: float) -> None:
    unit = make_unit(unit_class, gate_kind)
    x = torch.randn(2, 16, 8, 8, device=DEVICE, dtype=torch.float64)
    unit.gate.forced_value = value

    with torch.no_grad():
        output = unit(x)
        shortcut, residual = unit.branches(x)

    assert isinstance(output, UnitOutput)
    if gate_kind == "shortcut_only":
        expected = finish(unit, shortcut + residual)  # the plain residual unit
    elif value == 1.0:
        expected = finish(unit, residual)  # a plain unit without shortcut
    else:
        expected = finish(unit, shortcut)  # the shortcut alone
    torch.testing.assert_close(output.out, expected, rtol=0, atol=0)
    torch.testing.assert_close(output.use, torch.full((2,), value, device=DEVICE, dtype=torch.float64))
