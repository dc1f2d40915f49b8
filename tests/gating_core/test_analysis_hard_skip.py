"""Hard skip at inference: agreement with the soft gate, and compute that really drops for skipped images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gating_core.analysis.hard_skip import count_executed_macs, hard_skip_curve
from gating_core.data.pipeline import DeviceImages, eval_batches
from gating_core.models import build_model
from gating_core.models.complexity import count_macs, gated_stage_macs
from gating_core.spec import GateSpec, ModelSpec

MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


def make_model(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    # Depth 14 has two units per stage, so the gated stage has one unit that a skip saves.
    spec = ModelSpec(depth=14, gate=GateSpec(kind="model1", hidden_units=16))
    return build_model(spec, num_classes=10).eval()


def make_images(count: int = 24, seed: int = 0) -> DeviceImages:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (count, 32, 32, 3), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return DeviceImages(pixels, labels, np.arange(count))


def normalised(data: DeviceImages) -> torch.Tensor:
    """Return the images exactly as the curve feeds them to the model."""
    images, _ = next(eval_batches(data, len(data), MEAN, STD))
    return images


def set_gate_bias(model, bias: float) -> None:  # type: ignore[no-untyped-def]
    """Push g = sigmoid(head) towards 1 (large bias) or 0 (very negative bias) for every image."""
    with torch.no_grad():
        model.stage_gate.head.weight.zero_()
        model.stage_gate.head.bias.fill_(bias)


def test_threshold_zero_reproduces_soft_predictions():
    model = make_model()
    set_gate_bias(model, 12.0)  # g = sigmoid(12) = 1 - 6e-6
    images = normalised(make_images())

    with torch.no_grad():
        soft = model(images)
        hard, skipped = model.forward_hard_skip(images, 0.0)

    assert not skipped.any()
    assert soft.gates.min() > 0.9999
    assert torch.equal(hard.logits.argmax(1), soft.logits.argmax(1))
    assert torch.allclose(hard.logits, soft.logits, atol=1e-5)


def test_skipping_near_zero_gate_matches_soft_output():
    model = make_model()
    set_gate_bias(model, -12.0)  # g = 6e-6: the soft output is o1 up to g * (o2 - o1)
    images = normalised(make_images())

    with torch.no_grad():
        soft = model(images)
        hard, skipped = model.forward_hard_skip(images, 0.5)

    assert skipped.all()
    assert torch.equal(hard.logits.argmax(1), soft.logits.argmax(1))
    assert torch.allclose(hard.logits, soft.logits, atol=1e-3)


def test_curve_threshold_zero_matches_soft_accuracy():
    model = make_model()
    with model.force_gate(1.0):
        curve = hard_skip_curve(model, make_images(), MEAN, STD, thresholds=[0.0, 0.5], batch_size=10)

    assert curve.points[0].skipped_fraction == 0.0
    assert curve.points[0].accuracy == curve.soft_accuracy
    assert curve.points[1].skipped_fraction == 0.0
    assert curve.images == 24


def test_curve_macs_follow_skipped_fraction():
    model = make_model()
    data = make_images(24)
    with torch.no_grad():
        gates = model(normalised(data)).gates[:, 0]
    middle = float(gates.median())

    curve = hard_skip_curve(model, data, MEAN, STD, thresholds=[0.0, middle, 1.0], batch_size=12)

    full = count_macs(model)
    stage = gated_stage_macs(model)
    assert curve.full_macs == full
    assert curve.gated_stage_macs == stage > 0
    fractions = [point.skipped_fraction for point in curve.points]
    assert fractions[0] == 0.0
    assert fractions[1] == pytest.approx(float((gates < middle).float().mean()))
    assert fractions == sorted(fractions)
    for point in curve.points:
        assert point.macs_per_image == pytest.approx(full - point.skipped_fraction * stage)
        assert point.seconds_per_image > 0


def test_skipped_image_runs_fewer_macs():
    model = make_model()
    images = normalised(make_images(8))
    stage = gated_stage_macs(model)

    with model.force_gate(1.0):
        all_used = count_executed_macs(model, images, 0.5)
    with model.force_gate(0.0):
        all_skipped = count_executed_macs(model, images, 0.5)

    assert all_used - all_skipped == 8 * stage


def test_executed_macs_match_formula_for_mixed_batch():
    model = make_model()
    images = normalised(make_images(16))
    with torch.no_grad():
        gates = model(images).gates[:, 0]
    threshold = float(gates.median())
    skipped = int((gates < threshold).sum())
    assert 0 < skipped < 16

    executed = count_executed_macs(model, images, threshold)

    assert executed == 16 * count_macs(model) - skipped * gated_stage_macs(model)


def test_curve_rejects_bad_thresholds():
    model = make_model()
    with pytest.raises(ValueError, match="every threshold must be a finite number; received nan"):
        hard_skip_curve(model, make_images(4), MEAN, STD, thresholds=[float("nan")])
    with pytest.raises(ValueError, match="thresholds must list at least one value"):
        hard_skip_curve(model, make_images(4), MEAN, STD, thresholds=[])


def test_curve_rejects_layer_gate():
    spec = ModelSpec(depth=8, gate=GateSpec(kind="exclusive"))
    model = build_model(spec, num_classes=10)
    with pytest.raises(ValueError, match="block-level gate"):
        hard_skip_curve(model, make_images(4), MEAN, STD, thresholds=[0.5])
