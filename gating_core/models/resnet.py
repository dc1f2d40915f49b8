"""The gated residual network: CIFAR ResNets and ResNet-34 for 32x32 RGB inputs.

- resnet, preact_resnet: a 3x3 stem with 16 channels and three stages of n units with
  16, 32 and 64 planes (He et al. 2015 and 2016). Basic units give depth 6n+2,
  bottleneck units (expansion 4) give 9n+2.
- resnet34: a 3x3 stride-1 stem with 64 channels, no max-pool, and four stages of
  3, 4, 6 and 3 basic units with 64, 128, 256 and 512 planes.
The first unit of every stage after the first has stride 2. A global average pool and
the linear classifier `linear` follow the last stage; pre-activation networks apply a
final BN-ReLU (`bn_final`) before the pool.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gating_core.models.blocks import ResidualUnit, conv3x3, unit_class
from gating_core.models.gates import LayerGate, StageGate, make_layer_gate, make_stage_gate
from gating_core.spec import ModelSpec

CIFAR_STEM_CHANNELS = 16
CIFAR_STAGE_PLANES = (16, 32, 64)
RESNET34_STEM_CHANNELS = 64
RESNET34_STAGE_PLANES = (64, 128, 256, 512)
INPUT_SIZE = 32


class ModelOutput(NamedTuple):
    """Output of a forward pass: logits, per-sample gate values and the gate loss."""

    logits: Tensor  # (B, K)
    gates: Tensor  # (B, U) per-sample use weight of each gate, U = gate_count
    gate_loss: Tensor  # 0-dim, unweighted, zero without a gate loss


class GatedResNet(nn.Module):
    """A residual network with the gate that `spec.gate` names, or none.

    Layer-level gates sit on every unit (`layerS.I.gate`). A block-level gate
    (`stage_gate`) covers the stage `spec.gated_stage`: o1 is the output of that
    stage's first unit and o2 the stage's output.
    """

    def __init__(self, spec: ModelSpec, num_classes: int) -> None:
        super().__init__()
        if not isinstance(spec, ModelSpec):
            raise ValueError(f"spec must be a ModelSpec; received {type(spec).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer of at least 2; received {num_classes!r}")
        self.spec = spec
        self.num_classes = num_classes
        self._forced_gate: float | None = None

        unit_type = unit_class(spec.arch, spec.block)
        self.preact = unit_type.preact
        is_resnet34 = spec.arch == "resnet34"
        stem_channels = RESNET34_STEM_CHANNELS if is_resnet34 else CIFAR_STEM_CHANNELS
        stage_planes = RESNET34_STAGE_PLANES if is_resnet34 else CIFAR_STAGE_PLANES

        self.conv1 = conv3x3(3, stem_channels)
        if not self.preact:
            self.bn1 = nn.BatchNorm2d(stem_channels)

        channels = stem_channels
        size = INPUT_SIZE
        stage_gate_features = 0
        self.gate_names: list[str] = []
        for stage, (planes, unit_count) in enumerate(zip(stage_planes, spec.units_per_stage), start=1):
            stride = 1 if stage == 1 else 2
            units = self._make_stage(unit_type, stage, channels, planes, unit_count, stride)
            self.add_module(f"layer{stage}", nn.ModuleList(units))
            channels = units[-1].out_channels
            size = math.ceil(size / stride)
            if spec.gate.is_block_level and stage == spec.gated_stage:
                stage_gate_features = units[0].out_channels * size * size

        if self.preact:
            self.bn_final = nn.BatchNorm2d(channels)
        self.linear = nn.Linear(channels, num_classes)

        self.stage_gate: StageGate | None = None
        if spec.gate.is_block_level:
            self.stage_gate = make_stage_gate(spec.gate, stage_gate_features, num_classes)
            self.gate_names.append(f"stage{spec.gated_stage}")

        self.init_weights()

    def _make_stage(
        self, unit_type: type[ResidualUnit], stage: int, in_channels: int, planes: int, unit_count: int, stride: int
    ) -> list[ResidualUnit]:
        units = []
        for position in range(unit_count):
            unit_stride = stride if position == 0 else 1
            unit = unit_type(in_channels, planes, unit_stride, self.spec.effective_shortcut)
            if self.spec.gate.is_layer_level:
                unit.gate = make_layer_gate(self.spec.gate, in_channels, unit.out_channels, unit_stride)
                self.gate_names.append(f"stage{stage}.unit{position + 1}")
            units.append(unit)
            in_channels = unit.out_channels
        return units

    def init_weights(self) -> None:
        """Initialise the backbone (Kaiming-normal convs, BN at 1 and 0), then every gate by its own rule."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                module.reset_parameters()
        for gate in self.gate_modules():
            gate.init_weights()

    @property
    def stages(self) -> list[nn.ModuleList]:
        return [getattr(self, f"layer{stage}") for stage in range(1, self.spec.stage_count + 1)]

    @property
    def gate_count(self) -> int:
        return len(self.gate_names)

    @property
    def gated_stage(self) -> int | None:
        """The 1-based stage under the block-level gate, or None without one."""
        return self.spec.gated_stage if self.stage_gate is not None else None

    def gate_modules(self) -> list[LayerGate | StageGate]:
        return [module for module in self.modules() if isinstance(module, (LayerGate, StageGate))]

    @property
    def forced_gate(self) -> float | None:
        """The constant use weight that every gate outputs, or None for the learned gates."""
        return self._forced_gate

    @forced_gate.setter
    def forced_gate(self, value: float | None) -> None:
        if value is not None:
            if self.gate_count == 0:
                raise ValueError("cannot force the gate of a network with gate kind 'none'")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"forced gate value must be a number from 0 to 1 or None; received {value!r}")
            value = float(value)
        self._forced_gate = value
        for gate in self.gate_modules():
            gate.forced_value = value

    @contextmanager
    def force_gate(self, value: float | None) -> Iterator[GatedResNet]:
        """Make every gate output the use weight `value` inside the block, then restore the previous setting.

        model3 then has g2 = value and g1 = 1 - value, two_way g1 = value, and the other
        gates g = value. None restores the learned gates.
        """
        previous = self._forced_gate
        self.forced_gate = value
        try:
            yield self
        finally:
            self.forced_gate = previous

    def forward(self, x: Tensor) -> ModelOutput:
        output, _ = self._forward(x, threshold=None)
        return output

    def forward_hard_skip(self, x: Tensor, threshold: float) -> tuple[ModelOutput, Tensor]:
        """Run the network and skip the gated stage's later units for images whose gate is below `threshold`.

        The gated stage's units after the first run only on the images with use
        weight g >= threshold. A skipped image's stage output is o1 itself. A kept
        image gets the soft combination, g * o2 + (1 - g) * o1 for model1 and
        g1 * o1 + g2 * o2 for model3. The gate loss is computed on these outputs.
        Returns the output and a (B,) bool mask of skipped images. Selecting the
        kept images waits for the device once, so this path is meant for inference.
        """
        if self.stage_gate is None:
            raise ValueError(
                f"hard skip needs a block-level gate (model1, model1_2, model2 or model3); "
                f"this network has gate kind {self.spec.gate.kind!r}"
            )
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
            raise ValueError(f"threshold must be a number; received {threshold!r}")
        output, skipped = self._forward(x, threshold=float(threshold))
        assert skipped is not None
        return output, skipped

    def _forward(self, x: Tensor, threshold: float | None) -> tuple[ModelOutput, Tensor | None]:
        uses: list[Tensor] = []
        losses: list[Tensor] = []
        skipped = None

        out = self.conv1(x)  # (B, C0, 32, 32)
        if not self.preact:
            out = F.relu(self.bn1(out))

        for stage, units in enumerate(self.stages, start=1):
            if self.stage_gate is not None and stage == self.spec.gated_stage:
                out, use, loss, skipped = self._run_gated_stage(units, out, threshold)
                uses.append(use)
                losses.append(loss)
            else:
                out = self._run_units(units, out, uses, losses)

        if self.preact:
            out = F.relu(self.bn_final(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)  # (B, C)
        logits = self.linear(out)  # (B, K)

        gates = self._stack_gates(uses, x)
        gate_loss = torch.stack(losses).mean() if losses else x.new_zeros((), dtype=torch.float32)
        return ModelOutput(logits, gates, gate_loss), skipped

    @staticmethod
    def _run_units(units: nn.ModuleList, x: Tensor, uses: list[Tensor], losses: list[Tensor]) -> Tensor:
        for unit in units:
            x, use, loss = unit(x)
            if use is not None:
                uses.append(use)
                losses.append(loss)
        return x

    def _run_gated_stage(
        self, units: nn.ModuleList, x: Tensor, threshold: float | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        assert self.stage_gate is not None
        first_output = units[0](x).out  # o1
        decision = self.stage_gate.decide(first_output)

        if threshold is None:
            stage_output = self._run_later_units(units, first_output)  # o2
            combined = self.stage_gate.combine(decision, first_output, stage_output)
            skipped = None
        else:
            skipped = decision.use < threshold  # (B,)
            kept_index = torch.nonzero(~skipped).squeeze(1)  # waits for the device
            stage_output = first_output
            if kept_index.numel() > 0:
                kept_output = self._run_later_units(units, first_output.index_select(0, kept_index))
                stage_output = first_output.index_copy(0, kept_index, kept_output.to(first_output.dtype))
            soft = self.stage_gate.combine(decision, first_output, stage_output)
            combined = torch.where(skipped.view(-1, 1, 1, 1), first_output, soft)

        loss = self.stage_gate.loss(decision, first_output, combined)
        return combined, decision.use, loss, skipped

    @staticmethod
    def _run_later_units(units: nn.ModuleList, x: Tensor) -> Tensor:
        for unit in units[1:]:
            x = unit(x).out
        return x

    @staticmethod
    def _stack_gates(uses: list[Tensor], x: Tensor) -> Tensor:
        if not uses:
            return x.new_zeros((x.shape[0], 0), dtype=torch.float32)
        return torch.stack(uses, dim=1)  # (B, U)
