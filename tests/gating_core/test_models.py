"""Tests of the gated networks: every architecture with every gate, identities, hard skip, names and errors.

The device comes from GATELAB_TEST_DEVICE (default cpu).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gating_core.models import GatedResNet, ModelOutput, build_model, load_matching_weights
from gating_core.models.blocks import ZeroPadShortcut
from gating_core.models.complexity import gated_stage_macs
from gating_core.spec import BLOCK_GATES, GATE_KINDS, LAYER_GATES, GateSpec, ModelSpec
from tests.support.services import skip_or_fail

DEVICE = torch.device(os.environ.get("GATELAB_TEST_DEVICE", "cpu"))

# (arch, block, depth, batch): the smallest depths that give every stage at least one
# unit, with two units per stage for basic units so that block gates have later units.
SMALL_ARCHITECTURES = [
    ("resnet", "basic", 14, 4),
    ("resnet", "bottleneck", 11, 4),
    ("preact_resnet", "basic", 14, 4),
    ("preact_resnet", "bottleneck", 11, 4),
    ("resnet34", "basic", 34, 2),
]


def make_model(
    arch: str = "resnet",
    block: str = "basic",
    depth: int = 14,
    gate: str = "none",
    shortcut: str | None = None,
    **gate_options: object,
) -> GatedResNet:
    gate_spec = GateSpec(kind=gate, **gate_options)
    spec = ModelSpec(arch=arch, block=block, depth=depth, shortcut=shortcut, gate=gate_spec)
    return build_model(spec, num_classes=10).to(DEVICE)


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BN layer non-trivial statistics and affine values, so eval-mode checks test them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                size = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(size, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
                module.weight.copy_(0.5 + torch.rand(size, generator=generator))
                module.bias.copy_(0.1 * torch.randn(size, generator=generator))


def images(batch: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 32, 32, generator=generator, dtype=dtype).to(DEVICE)


def ungated_copy(model: GatedResNet) -> GatedResNet:
    """Build the same backbone without a gate and load the gated model's backbone weights."""
    spec = model.spec.model_copy(update={"gate": GateSpec()})
    plain = build_model(spec, model.num_classes).to(device=DEVICE, dtype=next(model.parameters()).dtype)
    report = load_matching_weights(plain, model.state_dict())
    assert report.missing == []
    assert report.mismatched == {}
    return plain


def forward_without_shortcuts(model: GatedResNet, x: Tensor) -> Tensor:
    """Compute the logits of the same network without shortcuts.

    Every unit outputs F(x), followed by a ReLU in post-activation units.
    """
    out = model.conv1(x)
    if not model.preact:
        out = F.relu(model.bn1(out))
    for stage in model.stages:
        for unit in stage:
            _, out = unit.branches(out)
            if not unit.preact:
                out = F.relu(out)
    if model.preact:
        out = F.relu(model.bn_final(out))
    out = F.adaptive_avg_pool2d(out, 1).flatten(1)
    return model.linear(out)


@pytest.mark.parametrize("gate", GATE_KINDS)
@pytest.mark.parametrize(("arch", "block", "depth", "batch"), SMALL_ARCHITECTURES)
def test_every_variant_trains(arch: str, block: str, depth: int, batch: int, gate: str) -> None:
    torch.manual_seed(0)
    model = make_model(arch, block, depth, gate)
    x = images(batch)
    labels = torch.arange(batch, device=DEVICE) % 10

    output = model(x)

    assert isinstance(output, ModelOutput)
    assert output.logits.shape == (batch, 10)
    assert output.gates.shape == (batch, model.gate_count)
    assert output.gates.is_floating_point()
    assert output.gate_loss.shape == ()
    assert torch.isfinite(output.logits).all()
    assert torch.isfinite(output.gate_loss)
    assert (output.gates >= 0).all()
    assert (output.gates <= 1).all()
    assert len(model.gate_names) == model.gate_count

    loss = F.cross_entropy(output.logits, labels) + output.gate_loss
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"


GATE_OPTIONS = [
    *((gate, {}) for gate in GATE_KINDS),
    ("two_way", {"two_way_kernel": 3}),
    ("model2", {"entropy_sigmoid": False}),
    ("model3", {"model3_loss": "bce"}),
]


@pytest.mark.parametrize(("gate", "options"), GATE_OPTIONS)
def test_bf16_autocast_channels_last_trains(gate: str, options: dict) -> None:
    torch.manual_seed(0)
    model = make_model(depth=8, gate=gate, **options).to(memory_format=torch.channels_last)
    x = images(2).to(memory_format=torch.channels_last)
    labels = torch.arange(2, device=DEVICE)

    with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
        output = model(x)
        loss = F.cross_entropy(output.logits.float(), labels) + output.gate_loss.float()
    loss.backward()

    assert output.gates.dtype == torch.float32
    assert output.gate_loss.dtype == torch.float32
    assert torch.isfinite(loss)
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"


@pytest.mark.parametrize(
    ("arch", "block", "depth", "units"), [("resnet", "basic", 14, 6), ("resnet34", "basic", 34, 16)]
)
def test_gate_count_and_names(arch: str, block: str, depth: int, units: int) -> None:
    none = make_model(arch, block, depth, "none")
    layer = make_model(arch, block, depth, "exclusive")
    stage = make_model(arch, block, depth, "model1")

    assert none.gate_count == 0
    assert none.gate_names == []
    assert layer.gate_count == units
    assert layer.gate_names[0] == "stage1.unit1"
    assert layer.gate_names[-1] == f"stage{layer.spec.stage_count}.unit{layer.spec.units_per_stage[-1]}"
    assert stage.gate_count == 1
    assert stage.gate_names == ["stage3"]
    assert stage.gated_stage == 3


def test_block_gate_covers_requested_stage() -> None:
    model = make_model(gate="model3", stage=2)

    output = model(images(2))

    assert model.gate_names == ["stage2"]
    assert model.stage_gate.hidden.in_features == 32 * 16 * 16
    assert output.gates.shape == (2, 1)


def test_backbone_names_match_published_checkpoints() -> None:
    names = set(make_model(depth=20, shortcut="B").state_dict())

    for expected in ("conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer1.0.bn2.bias",
                     "layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.running_var", "linear.weight"):
        assert expected in names


@pytest.mark.parametrize("gate", [kind for kind in GATE_KINDS if kind != "none"])
def test_gate_tensors_named_gate(gate: str) -> None:
    model = make_model(gate=gate)
    plain_names = set(make_model().state_dict())

    gate_names = [name for name in model.state_dict() if name not in plain_names]

    assert gate_names
    assert all("gate" in name for name in gate_names)
    assert not any("gate" in name for name in plain_names)


def test_zero_pad_shortcut_matches_option_a() -> None:
    x = torch.randn(2, 16, 8, 8)

    out = ZeroPadShortcut(16, 32, stride=2)(x)

    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, :8]) == 0
    assert torch.count_nonzero(out[:, 24:]) == 0


def test_zero_pad_shortcut_rejects_narrowing() -> None:
    with pytest.raises(ValueError, match="shortcut 'A'"):
        ZeroPadShortcut(32, 16, stride=1)


def test_bottleneck_with_option_a_has_no_shortcut_weights() -> None:
    model = make_model(block="bottleneck", depth=11, shortcut="A")

    output = model(images(2))

    assert not any("shortcut" in name for name in model.state_dict())
    assert output.logits.shape == (2, 10)


@pytest.mark.parametrize(("arch", "block", "depth"), [("resnet", "basic", 14), ("preact_resnet", "bottleneck", 11)])
@pytest.mark.parametrize("gate", ["exclusive", "two_way"])
def test_use_one_equals_network_without_shortcuts(arch: str, block: str, depth: int, gate: str) -> None:
    model = make_model(arch, block, depth, gate).double().eval()
    randomize_batchnorm(model)
    x = images(3, torch.float64)

    with torch.no_grad(), model.force_gate(1.0):
        gated = model(x).logits
        expected = forward_without_shortcuts(model, x)

    torch.testing.assert_close(gated, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("arch", "block", "depth"), [("resnet", "basic", 14), ("preact_resnet", "bottleneck", 11)])
def test_shortcut_only_zero_equals_ungated(arch: str, block: str, depth: int) -> None:
    model = make_model(arch, block, depth, "shortcut_only").double().eval()
    randomize_batchnorm(model)
    plain = ungated_copy(model).eval()
    x = images(3, torch.float64)

    with torch.no_grad(), model.force_gate(0.0):
        gated = model(x)
    expected = plain(x).logits.detach()

    torch.testing.assert_close(gated.logits, expected, rtol=1e-10, atol=1e-10)
    assert torch.equal(gated.gates, torch.zeros_like(gated.gates))


@pytest.mark.parametrize(
    ("arch", "block", "depth", "gate"),
    [*(("resnet", "basic", 14, gate) for gate in BLOCK_GATES), ("resnet34", "basic", 34, "model3")],
)
def test_block_gate_use_one_equals_ungated(arch: str, block: str, depth: int, gate: str) -> None:
    model = make_model(arch, block, depth, gate).double().eval()
    randomize_batchnorm(model)
    plain = ungated_copy(model).eval()
    x = images(2, torch.float64)

    with torch.no_grad(), model.force_gate(1.0):
        gated = model(x)
    expected = plain(x).logits.detach()

    torch.testing.assert_close(gated.logits, expected, rtol=1e-10, atol=1e-10)
    assert torch.equal(gated.gates, torch.ones_like(gated.gates))


def test_force_gate_restores_learned_gates() -> None:
    model = make_model(gate="model3").eval()
    x = images(2)
    learned = model(x).gates

    with model.force_gate(0.25):
        forced = model(x).gates
    restored = model(x).gates

    assert torch.equal(forced, torch.full_like(forced, 0.25))
    assert torch.equal(restored, learned)
    assert model.forced_gate is None


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), True, "1"])
def test_force_gate_rejects_invalid_value(value: object) -> None:
    model = make_model(gate="exclusive")

    with pytest.raises(ValueError, match="forced gate value"):
        model.forced_gate = value


def test_force_gate_rejects_ungated_network() -> None:
    with pytest.raises(ValueError, match="'none'"):
        make_model().forced_gate = 0.5


@pytest.mark.parametrize("num_classes", [1, 0, -3, True, 2.5])
def test_build_rejects_invalid_num_classes(num_classes: object) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        build_model(ModelSpec(), num_classes)


def test_build_accepts_hundred_classes() -> None:
    model = build_model(ModelSpec(gate=GateSpec(kind="model2")), 100).to(DEVICE)

    output = model(images(2))

    assert output.logits.shape == (2, 100)
    assert model.stage_gate.head.out_features == 100


@pytest.mark.parametrize("gate", ["none", *LAYER_GATES])
def test_hard_skip_rejects_non_block_gates(gate: str) -> None:
    model = make_model(gate=gate).eval()

    with pytest.raises(ValueError, match="block-level gate"):
        model.forward_hard_skip(images(2), threshold=0.5)


def test_hard_skip_rejects_nan_threshold() -> None:
    model = make_model(gate="model1").eval()

    with pytest.raises(ValueError, match="threshold"):
        model.forward_hard_skip(images(2), threshold=float("nan"))


@pytest.mark.parametrize("gate", BLOCK_GATES)
def test_hard_skip_threshold_zero_matches_soft(gate: str) -> None:
    model = make_model(gate=gate).eval()
    randomize_batchnorm(model)
    x = images(4)

    with torch.no_grad(), model.force_gate(0.9):
        soft = model(x)
        hard, skipped = model.forward_hard_skip(x, threshold=0.0)

    assert not skipped.any()
    torch.testing.assert_close(hard.logits, soft.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hard.gates, soft.gates)
    torch.testing.assert_close(hard.gate_loss, soft.gate_loss, rtol=1e-5, atol=1e-5)


class BatchCounter:
    """Forward pre-hooks that count the images each hooked unit receives."""

    def __init__(self, units: nn.ModuleList) -> None:
        self.images = 0
        self.handles = [unit.register_forward_pre_hook(self._count) for unit in units]

    def _count(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        self.images += inputs[0].shape[0]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def spread_stage_gate(model: GatedResNet) -> None:
    """Scale the gate's head so that the use weights of different images differ clearly."""
    with torch.no_grad():
        model.stage_gate.head.weight.mul_(50.0)


@pytest.mark.parametrize("gate", ["model1", "model3"])
def test_hard_skip_drops_skipped_computation(gate: str) -> None:
    torch.manual_seed(1)
    model = make_model(gate=gate).eval()
    randomize_batchnorm(model)
    spread_stage_gate(model)
    x = images(8, seed=3)
    later_units = model.stages[model.gated_stage - 1][1:]

    with torch.no_grad():
        soft = model(x)
        use = soft.gates[:, 0]
        threshold = use.median().item()
        counter = BatchCounter(later_units)
        hard, skipped = model.forward_hard_skip(x, threshold=threshold)
        counter.remove()
        with model.force_gate(0.0):
            first_unit_only = model(x)

    skipped_count = int(skipped.sum())
    assert 0 < skipped_count < 8
    assert torch.equal(skipped, use < threshold)
    assert counter.images == len(later_units) * (8 - skipped_count)
    torch.testing.assert_close(hard.logits[~skipped], soft.logits[~skipped], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hard.logits[skipped], first_unit_only.logits[skipped], rtol=1e-5, atol=1e-5)


def test_hard_skip_saves_gated_stage_macs() -> None:
    torch.manual_seed(1)
    model = make_model(gate="model1").eval()
    spread_stage_gate(model)
    x = images(8, seed=3)
    macs = 0

    def count(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        nonlocal macs
        macs += output.numel() * module.in_channels * math.prod(module.kernel_size)

    convs = [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    handles = [conv.register_forward_hook(count) for conv in convs]
    with torch.no_grad():
        use = model(x).gates[:, 0]
        full_macs = macs
        macs = 0
        _, skipped = model.forward_hard_skip(x, threshold=use.median().item())
        hard_macs = macs
    for handle in handles:
        handle.remove()

    # The linear layers are not hooked here, and gated_stage_macs counts only convs
    # inside the later units, so the saving is exactly per skipped image.
    assert int(skipped.sum()) > 0
    assert full_macs - hard_macs == int(skipped.sum()) * gated_stage_macs(model)


def test_hard_skip_above_one_skips_all() -> None:
    model = make_model(gate="model2").eval()
    x = images(4)
    counter = BatchCounter(model.stages[2][1:])

    with torch.no_grad(), model.force_gate(1.0):
        hard, skipped = model.forward_hard_skip(x, threshold=1.1)
    counter.remove()
    with torch.no_grad(), model.force_gate(0.0):
        first_unit_only = model(x)

    assert skipped.all()
    assert counter.images == 0
    torch.testing.assert_close(hard.logits, first_unit_only.logits)


@pytest.mark.skipif(DEVICE.type != "cuda", reason="host-device synchronisation is only observable on CUDA")
@pytest.mark.parametrize("gate", GATE_KINDS)
def test_forward_backward_never_synchronises(gate: str) -> None:
    model = make_model(gate=gate)
    x = images(4)
    labels = torch.arange(4, device=DEVICE)
    model(x)  # the first call may synchronise while kernels are chosen

    torch.cuda.set_sync_debug_mode("error")
    try:
        output = model(x)
        loss = F.cross_entropy(output.logits, labels) + output.gate_loss
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def read_checkpoint(data_dir: Path, depth: int) -> dict[str, Tensor]:
    folder = data_dir / "pretrained" / "cifar-resnets"
    matches = sorted(folder.glob(f"resnet{depth}-*.th"))
    if not matches:
        skip_or_fail(f"no resnet{depth}-*.th checkpoint in {folder}")
    return torch.load(matches[0], map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_published_checkpoint_loads_completely(data_dir: Path, depth: int) -> None:
    state_dict = read_checkpoint(data_dir, depth)
    model = make_model(depth=depth, shortcut="A")

    report = load_matching_weights(model, state_dict)

    assert report.missing == []
    assert report.unexpected == []
    assert report.mismatched == {}
    assert len(report.loaded) == len(state_dict)
    assert torch.equal(model.linear.weight.cpu(), state_dict["module.linear.weight"])


# Correct predictions of these checkpoints on the first 1000 exact CIFAR-10 test
# images with ImageNet normalisation, measured with the authors' own model code
# (documented beside the checkpoints in the data directory).
PUBLISHED_CORRECT = {20: 915, 56: 926}


@pytest.mark.parametrize("depth", sorted(PUBLISHED_CORRECT))
def test_published_checkpoint_reproduces_accuracy(data_dir: Path, depth: int) -> None:
    state_dict = read_checkpoint(data_dir, depth)
    exact_images = data_dir / "cifar10-exact" / "test-first-1000.npz"
    if not exact_images.is_file():
        skip_or_fail(f"{exact_images} is missing")
    arrays = np.load(exact_images)
    model = make_model(depth=depth, shortcut="A").eval()
    load_matching_weights(model, state_dict)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.from_numpy(arrays["x"]).permute(0, 3, 1, 2).float() / 255
    x = ((x - mean) / std).to(DEVICE)
    labels = torch.from_numpy(arrays["y"]).long().to(DEVICE)

    with torch.no_grad():
        predictions = model(x).logits.argmax(dim=1)
    correct = int((predictions == labels).sum())

    # A prediction on the decision boundary may flip with the device's arithmetic.
    assert abs(correct - PUBLISHED_CORRECT[depth]) <= 2


def test_load_keeps_fresh_gate_weights() -> None:
    trained = make_model(gate="exclusive")
    with torch.no_grad():
        for name, parameter in trained.named_parameters():
            parameter.add_(1.0)
    fresh = make_model(gate="exclusive")
    fresh_gate = {name: tensor.clone() for name, tensor in fresh.state_dict().items() if "gate" in name}

    report = load_matching_weights(fresh, trained.state_dict())

    assert report.complete
    assert sorted(report.gate_fresh) == sorted(fresh_gate)
    for name, tensor in fresh.state_dict().items():
        if name in fresh_gate:
            assert torch.equal(tensor, fresh_gate[name]), name
        else:
            assert torch.equal(tensor, trained.state_dict()[name]), name


def test_load_reports_mismatch_missing_and_unexpected() -> None:
    source = build_model(ModelSpec(depth=14), num_classes=100).state_dict()
    source = {f"module.{name}": tensor for name, tensor in source.items() if name != "bn1.bias"}
    source["module.extra.weight"] = torch.zeros(3)
    model = make_model(depth=14)
    linear_before = model.linear.weight.detach().clone()

    report = load_matching_weights(model, {"state_dict": source})

    assert report.mismatched == {"linear.weight": ((10, 64), (100, 64)), "linear.bias": ((10,), (100,))}
    assert report.missing == ["bn1.bias"]
    assert report.unexpected == ["extra.weight"]
    assert not report.complete
    assert "conv1.weight" in report.loaded
    assert torch.equal(model.linear.weight, linear_before)


def test_load_rejects_non_tensor_entry() -> None:
    with pytest.raises(ValueError, match="'conv1.weight' must be a tensor"):
        load_matching_weights(make_model(), {"conv1.weight": [1.0, 2.0]})
