"""Parameter and multiply-accumulate (MAC) counts of gated networks.

MACs are those of every Conv2d and Linear layer for one 1x3x32x32 image, measured
with forward hooks. Batch norm, activations, pooling, softmax and the elementwise
gate arithmetic are not counted, as is usual for ResNet MAC figures.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from gating_core.models.gates import make_layer_gate, make_stage_gate
from gating_core.models.resnet import INPUT_SIZE, GatedResNet
from gating_core.spec import GATE_KINDS, GateSpec, ModelSpec

# The networks of the study: (arch, block, depth).
STUDY_ARCHITECTURES: tuple[tuple[str, str, int], ...] = (
    ("resnet", "basic", 110),
    ("resnet", "bottleneck", 164),
    ("preact_resnet", "basic", 110),
    ("preact_resnet", "bottleneck", 164),
    ("resnet34", "basic", 34),
)


def count_parameters(model: nn.Module) -> int:
    """Return the number of parameter values of the model, gates included."""
    return sum(parameter.numel() for parameter in model.parameters())


def _layer_macs(module: nn.Module, output: Tensor) -> int:
    """Return the MACs of one Conv2d or Linear call for a batch of one image."""
    if isinstance(module, nn.Conv2d):
        macs_per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * macs_per_output
    assert isinstance(module, nn.Linear)
    return output.numel() * module.in_features


def _macs_by_layer(model: nn.Module) -> dict[nn.Module, int]:
    """Run one 1x3x32x32 image through the model in eval mode and return the MACs of every Conv2d and Linear."""
    macs: dict[nn.Module, int] = {}

    def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        macs[module] = macs.get(module, 0) + _layer_macs(module, output)

    layers = [module for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    handles = [layer.register_forward_hook(record) for layer in layers]
    reference = next(model.parameters())
    image = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, device=reference.device, dtype=reference.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(image)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return macs


def count_macs(model: nn.Module) -> int:
    """Return the MACs of the full computation for one 32x32 image, gates included."""
    return sum(_macs_by_layer(model).values())


def _later_unit_macs(model: GatedResNet, stage: int, macs: dict[nn.Module, int]) -> int:
    later_units = model.stages[stage - 1][1:]
    return sum(macs.get(module, 0) for module in later_units.modules())


def gated_stage_macs(model: GatedResNet) -> int:
    """Return the MACs of the gated stage's units after the first: what a hard skip saves per skipped image."""
    if model.gated_stage is None:
        raise ValueError(
            f"gated_stage_macs needs a block-level gate (model1, model1_2, model2 or model3); "
            f"this network has gate kind {model.spec.gate.kind!r}"
        )
    return _later_unit_macs(model, model.gated_stage, _macs_by_layer(model))


def _macs_of_call(module: nn.Module, call: Callable[[], object]) -> int:
    """Return the MACs of the Conv2d and Linear layers inside `module` while `call` runs."""
    total = 0

    def record(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal total
        total += _layer_macs(layer, output)

    layers = [layer for layer in module.modules() if isinstance(layer, (nn.Conv2d, nn.Linear))]
    handles = [layer.register_forward_hook(record) for layer in layers]
    try:
        with torch.no_grad():
            call()
    finally:
        for handle in handles:
            handle.remove()
    return total


def _unit_shapes(model: GatedResNet) -> dict[nn.Module, tuple[torch.Size, torch.Size]]:
    """Run one image and return every unit's input and output shape."""
    shapes: dict[nn.Module, tuple[torch.Size, torch.Size]] = {}

    def record(unit: nn.Module, inputs: tuple[Tensor, ...], output: tuple[Tensor, ...]) -> None:
        shapes[unit] = (inputs[0].shape, output[0].shape)

    units = [unit for stage in model.stages for unit in stage]
    handles = [unit.register_forward_hook(record) for unit in units]
    try:
        _macs_by_layer(model)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _gate_cost(
    plain: GatedResNet,
    shapes: dict[nn.Module, tuple[torch.Size, torch.Size]],
    gate: GateSpec,
    stage: int,
    num_classes: int,
) -> tuple[int, int]:
    """Return the parameters and MACs that a gate adds to the ungated network `plain`.

    Each gate module is built alone, where GatedResNet would place it, and run on zeros
    of the shapes that it receives there. That avoids building and initialising one full network
    per gate kind, which took most of the time of this listing.
    """
    params = 0
    macs = 0
    if gate.is_layer_level:
        for stage_units in plain.stages:
            for unit in stage_units:
                input_shape, output_shape = shapes[unit]
                layer_gate = make_layer_gate(gate, unit.in_channels, unit.out_channels, unit.stride)
                params += count_parameters(layer_gate)
                zeros_in, zeros_out = torch.zeros(input_shape), torch.zeros(output_shape)
                macs += _macs_of_call(layer_gate, lambda: layer_gate(zeros_in, zeros_out, zeros_out))
    elif gate.is_block_level:
        _, first_shape = shapes[plain.stages[stage - 1][0]]
        # On the meta device the large hidden layer is not filled with random values.
        with torch.device("meta"):
            stage_gate = make_stage_gate(gate, math.prod(first_shape[1:]), num_classes)
        stage_gate = stage_gate.to_empty(device="cpu")
        params = count_parameters(stage_gate)
        first_output = torch.zeros(first_shape)
        macs = _macs_of_call(stage_gate, lambda: stage_gate.decide(first_output))
    return params, macs


def _describe_architecture(arch: str, block: str, depth: int, num_classes: int) -> list[dict[str, Any]]:
    plain_spec = ModelSpec(arch=arch, block=block, depth=depth)
    plain = GatedResNet(plain_spec, num_classes)
    plain_macs = _macs_by_layer(plain)
    plain_params = count_parameters(plain)
    shapes = _unit_shapes(plain)
    stage = plain_spec.gated_stage
    unit_count = sum(plain_spec.units_per_stage)

    rows = []
    for gate_kind in GATE_KINDS:
        gate = GateSpec(kind=gate_kind)
        spec = plain_spec.model_copy(update={"gate": gate})
        gate_params, gate_macs = _gate_cost(plain, shapes, gate, stage, num_classes)
        gate_count = 0
        if gate.is_layer_level:
            gate_count = unit_count
        elif gate.is_block_level:
            gate_count = 1
        rows.append(
            {
                "name": spec.display_name,
                "arch": arch,
                "block": block,
                "depth": spec.effective_depth,
                "shortcut": spec.effective_shortcut,
                "gate": gate_kind,
                "gated_stage": stage if gate.is_block_level else None,
                "gate_count": gate_count,
                "num_classes": num_classes,
                "params": plain_params + gate_params,
                "gate_params": gate_params,
                "macs": sum(plain_macs.values()) + gate_macs,
                "gated_stage_macs": _later_unit_macs(plain, stage, plain_macs) if gate.is_block_level else None,
            }
        )
    return rows


@functools.cache
def _describe_all(num_classes: int) -> tuple[dict[str, Any], ...]:
    rows = []
    for arch, block, depth in STUDY_ARCHITECTURES:
        rows.extend(_describe_architecture(arch, block, depth, num_classes))
    return tuple(rows)


def describe_architectures(num_classes: int = 10) -> list[dict[str, Any]]:
    """List every study architecture with every gate kind, with parameter and MAC counts.

    Each row has name, arch, block, depth, shortcut, gate, gated_stage (None unless
    the gate is block-level), gate_count, num_classes, params, gate_params, macs and
    gated_stage_macs (None unless the gate is block-level). Block-level gates cover
    the default stage. Results are cached per num_classes.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2; received {num_classes!r}")
    return [dict(row) for row in _describe_all(num_classes)]
