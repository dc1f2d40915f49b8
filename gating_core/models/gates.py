"""Gates: layer-level gates on one residual unit and block-level gates over one stage.

Every gate reports a per-sample "use" weight, the weight of the gated computation, so
a low value means "skip". Gate computations call no `.item()`, copy nothing to the
host and branch on no tensor value, so that a training step does not wait for the
device. Gate values and losses are computed in at least float32 and the losses are unweighted.

Every gate has a `forced_value`: when it is set, the gate outputs that constant use
weight instead of its learned one, which identity checks and evaluations rely on.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gating_core.spec import GateSpec


def _widen(tensor: Tensor) -> Tensor:
    """Return the tensor in float32, or unchanged when it is already float32 or float64."""
    if tensor.dtype in (torch.float32, torch.float64):
        return tensor
    return tensor.float()


def _common_dtype(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Return the tensors in the dtype that arithmetic on them would promote to.

    Fused kernels such as lerp and addcmul need one dtype, while autocast can hand
    a unit a bfloat16 branch and a float32 shortcut.
    """
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return tuple(tensor.to(dtype) for tensor in tensors)


def _neg_log(probability: Tensor) -> Tensor:
    """Return -log(p), with p clamped to the smallest normal float so that p = 0 stays finite."""
    tiny = torch.finfo(probability.dtype).tiny
    return -torch.log(probability.clamp_min(tiny))


class LayerGateOutput(NamedTuple):
    """A gated unit's combined output (before any final ReLU) and its gate's record."""

    out: Tensor
    use: Tensor  # (B,) float32 or float64
    loss: Tensor  # 0-dim, this unit's share of the gate loss


class LayerGate(nn.Module):
    """Base of the gates that combine a unit's shortcut x and its residual branch F(x)."""

    def __init__(self) -> None:
        super().__init__()
        self.forced_value: float | None = None

    def init_weights(self) -> None:
        raise NotImplementedError

    def forward(self, unit_input: Tensor, shortcut: Tensor, residual: Tensor) -> LayerGateOutput:
        raise NotImplementedError


class SigmoidLayerGate(LayerGate):
    """Gate map g = sigmoid(conv1x1(x_in) + b) of F(x)'s shape, read from the unit's input.

    The convolution weight starts at zero and the bias at `bias_init`, so every unit
    starts with the same g = sigmoid(bias_init), about 0.0025 for the default -6.
    Gate loss of the unit: the L2 norm of g over C, H and W, averaged over the batch.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, bias_init: float) -> None:
        super().__init__()
        self.bias_init = bias_init
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.conv.weight)
        nn.init.constant_(self.conv.bias, self.bias_init)

    def combine(self, gate: Tensor, shortcut: Tensor, residual: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, unit_input: Tensor, shortcut: Tensor, residual: Tensor) -> LayerGateOutput:
        if self.forced_value is None:
            gate = torch.sigmoid(self.conv(unit_input))  # (B, C, H, W) of F(x)
        else:
            gate = torch.full_like(residual, self.forced_value)

        out = self.combine(gate, shortcut, residual)

        wide_gate = _widen(gate)
        use = wide_gate.mean(dim=(1, 2, 3))  # (B,)
        loss = wide_gate.flatten(1).norm(dim=1).mean()
        return LayerGateOutput(out, use, loss)


class ExclusiveGate(SigmoidLayerGate):
    """Exclusive gating: out = (1 - g) * x + g * F(x).

    From He et al. 2016, "Identity Mappings in Deep Residual Networks".
    """

    def combine(self, gate: Tensor, shortcut: Tensor, residual: Tensor) -> Tensor:
        # lerp computes x + g * (F(x) - x) in one kernel, where the plain formula takes four.
        gate, shortcut, residual = _common_dtype(gate, shortcut, residual)
        return torch.lerp(shortcut, residual, gate)


class ShortcutOnlyGate(SigmoidLayerGate):
    """Shortcut-only gating: out = (1 - g) * x + F(x).

    From He et al. 2016, "Identity Mappings in Deep Residual Networks".
    """

    def combine(self, gate: Tensor, shortcut: Tensor, residual: Tensor) -> Tensor:
        # (x + F(x)) - g * x in two kernels, where the plain formula takes four.
        gate, shortcut, residual = _common_dtype(gate, shortcut, residual)
        return torch.addcmul(shortcut + residual, gate, shortcut, value=-1)


class TwoWayGate(LayerGate):
    """Two maps from one convolution, softmax across the pair: out = g1 * F(x) + g2 * x.

    Channel 0 is g1 ("use", the weight of F(x)) and channel 1 is g2 ("skip"). Weight
    and bias start at zero, so g1 = g2 = 1/2 at first. Gate loss of the unit: the
    cross-entropy of every position against the skip class, mean(-log g2) over the
    batch and the positions.
    """

    USE = 0
    SKIP = 1

    def __init__(self, in_channels: int, stride: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size not in (1, 3):
            raise ValueError(f"two_way_kernel must be 1 or 3; received {kernel_size!r}")
        self.conv = nn.Conv2d(
            in_channels, 2, kernel_size=kernel_size, stride=stride, padding=kernel_size // 2, bias=True
        )
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, unit_input: Tensor, shortcut: Tensor, residual: Tensor) -> LayerGateOutput:
        if self.forced_value is None:
            logits = _widen(self.conv(unit_input))  # (B, 2, H, W)
            log_probs = F.log_softmax(logits, dim=1)
            use = log_probs[:, self.USE : self.USE + 1].exp()  # (B, 1, H, W)
            skip = log_probs[:, self.SKIP : self.SKIP + 1].exp()
            loss = -log_probs[:, self.SKIP].mean()
        else:
            use = _widen(torch.full_like(residual[:, :1], self.forced_value))
            skip = 1 - use
            loss = _neg_log(skip).mean()

        out = use * residual + skip * shortcut

        record = use.mean(dim=(1, 2, 3))  # (B,)
        return LayerGateOutput(out, record, loss)


def make_layer_gate(gate: GateSpec, in_channels: int, out_channels: int, stride: int) -> LayerGate:
    """Build the layer-level gate of one unit with the given input and output shape."""
    if gate.kind == "exclusive":
        return ExclusiveGate(in_channels, out_channels, stride, gate.bias_init)
    if gate.kind == "shortcut_only":
        return ShortcutOnlyGate(in_channels, out_channels, stride, gate.bias_init)
    if gate.kind == "two_way":
        return TwoWayGate(in_channels, stride, gate.two_way_kernel)
    raise ValueError(f"gate.kind must be exclusive, shortcut_only or two_way for a layer gate; received {gate.kind!r}")


class StageDecision(NamedTuple):
    """Per-sample weights of a block-level gate: o2 gets `use`, o1 gets `skip`."""

    use: Tensor  # (B,) float32 or float64
    skip: Tensor  # (B,)
    logits: Tensor | None  # (B, 2) skip and use logits of a SoftmaxStageGate, else None


class StageGate(nn.Module):
    """Base of block-level gates: FC = flatten o1, Linear(hidden_units), ReLU, then a head.

    o1 is the output of the gated stage's first unit and o2 the stage's output. The
    stage then outputs skip * o1 + use * o2.
    """

    def __init__(self, in_features: int, hidden_units: int, head_outputs: int) -> None:
        super().__init__()
        self.forced_value: float | None = None
        self.hidden = nn.Linear(in_features, hidden_units)
        self.head = nn.Linear(hidden_units, head_outputs)

    def init_weights(self) -> None:
        """Reset both linear layers to PyTorch's default (Kaiming-uniform) initialisation."""
        self.hidden.reset_parameters()
        self.head.reset_parameters()

    def decide(self, first_output: Tensor) -> StageDecision:
        """Compute the per-sample use and skip weights from o1, or the forced ones."""
        if self.forced_value is not None:
            use = _widen(first_output.new_full((first_output.shape[0],), self.forced_value))
            return StageDecision(use, 1 - use, None)

        features = F.relu(self.hidden(first_output.flatten(1)))  # (B, hidden_units)
        head_output = _widen(self.head(features))  # (B, head_outputs)
        return self.decide_from_head(head_output)

    def decide_from_head(self, head_output: Tensor) -> StageDecision:
        raise NotImplementedError

    def combine(self, decision: StageDecision, first_output: Tensor, stage_output: Tensor) -> Tensor:
        """Return skip * o1 + use * o2, sample by sample."""
        skip = decision.skip.view(-1, 1, 1, 1)
        use = decision.use.view(-1, 1, 1, 1)
        return skip * first_output + use * stage_output

    def loss(self, decision: StageDecision, first_output: Tensor, combined: Tensor) -> Tensor:
        """Return the unweighted gate loss, a 0-dim tensor."""
        raise NotImplementedError


class SigmoidStageGate(StageGate):
    """Gate "model1": g = sigmoid(Linear(1)(FC(o1))), stage output g * o2 + (1 - g) * o1.

    Gate loss: mean(g^2) over the batch.
    """

    def __init__(self, in_features: int, hidden_units: int) -> None:
        super().__init__(in_features, hidden_units, head_outputs=1)

    def decide_from_head(self, head_output: Tensor) -> StageDecision:
        use = torch.sigmoid(head_output.squeeze(1))  # (B,)
        return StageDecision(use, 1 - use, None)

    def loss(self, decision: StageDecision, first_output: Tensor, combined: Tensor) -> Tensor:
        return decision.use.pow(2).mean()


class DistanceStageGate(SigmoidStageGate):
    """Gate "model1_2": the model1 gate, with a loss on how far the stage moves o1.

    Gate loss: for each sample, the squared L2 norm over C, H and W of
    o1 - stage output (which is g * (o1 - o2) for the soft output), then the mean over
    the batch. Gradients flow through g, o1 and o2.
    """

    def loss(self, decision: StageDecision, first_output: Tensor, combined: Tensor) -> Tensor:
        difference = _widen(first_output - combined).flatten(1)  # (B, C*H*W)
        return difference.pow(2).sum(dim=1).mean()


class EntropyStageGate(StageGate):
    """Gate "model2": g from the entropy H of a K-class softmax head on FC(o1).

    g = sigmoid(s * (H / log K - 1/2)) when `entropy_sigmoid`, else g = H / log K, so
    uncertain images (high entropy) use the stage. The head has no loss of its own:
    it learns only through g, and the gate loss is zero.
    """

    def __init__(
        self, in_features: int, hidden_units: int, num_classes: int, entropy_sigmoid: bool, entropy_scale: float
    ) -> None:
        super().__init__(in_features, hidden_units, head_outputs=num_classes)
        self.log_num_classes = math.log(num_classes)
        self.entropy_sigmoid = entropy_sigmoid
        self.entropy_scale = entropy_scale

    def decide_from_head(self, head_output: Tensor) -> StageDecision:
        log_probs = F.log_softmax(head_output, dim=1)  # (B, K)
        entropy = -(log_probs.exp() * log_probs).sum(dim=1)  # (B,)
        normalized = entropy / self.log_num_classes
        if self.entropy_sigmoid:
            use = torch.sigmoid(self.entropy_scale * (normalized - 0.5))
        else:
            use = normalized
        return StageDecision(use, 1 - use, None)

    def loss(self, decision: StageDecision, first_output: Tensor, combined: Tensor) -> Tensor:
        return decision.use.new_zeros(())


class SoftmaxStageGate(StageGate):
    """Gate "model3": Linear(2) on FC(o1), softmax gives g1 ("skip") and g2 ("use").

    Stage output g1 * o1 + g2 * o2. The gate loss pushes every sample towards skip:
    "ce" is the cross-entropy of the pair against the skip class, mean(-log g1).
    "bce" is the binary cross-entropy of g1 against target 1, computed from g1's logit
    z_skip - z_use (g1 = sigmoid(z_skip - z_use)) for numerical stability.
    NOTE: for a two-way softmax both losses equal mean(-log g1), so "ce" and "bce"
    train identically; both exist because studies report them under both names.
    """

    SKIP = 0
    USE = 1

    def __init__(self, in_features: int, hidden_units: int, loss_kind: str) -> None:
        super().__init__(in_features, hidden_units, head_outputs=2)
        if loss_kind not in ("ce", "bce"):
            raise ValueError(f"model3_loss must be 'ce' or 'bce'; received {loss_kind!r}")
        self.loss_kind = loss_kind

    def decide_from_head(self, head_output: Tensor) -> StageDecision:
        probs = F.softmax(head_output, dim=1)  # (B, 2)
        return StageDecision(probs[:, self.USE], probs[:, self.SKIP], head_output)

    def loss(self, decision: StageDecision, first_output: Tensor, combined: Tensor) -> Tensor:
        if decision.logits is None:
            # A forced gate has no logits, so the loss charges the forced skip weight directly.
            return _neg_log(decision.skip).mean()

        if self.loss_kind == "ce":
            skip_class = torch.full_like(decision.logits[:, 0], self.SKIP, dtype=torch.long)
            return F.cross_entropy(decision.logits, skip_class)

        skip_logit = decision.logits[:, self.SKIP] - decision.logits[:, self.USE]  # (B,)
        target = torch.ones_like(skip_logit)
        return F.binary_cross_entropy_with_logits(skip_logit, target)


def make_stage_gate(gate: GateSpec, in_features: int, num_classes: int) -> StageGate:
    """Build the block-level gate for a stage whose first unit outputs `in_features` values."""
    if gate.kind == "model1":
        return SigmoidStageGate(in_features, gate.hidden_units)
    if gate.kind == "model1_2":
        return DistanceStageGate(in_features, gate.hidden_units)
    if gate.kind == "model2":
        return EntropyStageGate(
            in_features, gate.hidden_units, num_classes, gate.entropy_sigmoid, gate.entropy_scale
        )
    if gate.kind == "model3":
        return SoftmaxStageGate(in_features, gate.hidden_units, gate.model3_loss)
    raise ValueError(f"gate.kind must be model1, model1_2, model2 or model3 for a block gate; received {gate.kind!r}")
