"""Sweep presets: every preset expands into valid runs, launch options change only what they name,
and a from-baseline run loads every backbone tensor of the baseline."""

from __future__ import annotations

import math

import pytest
import torch

from backend.services.grid import expand_grid
from gating_core.experiment import run_experiment
from gating_core.models import build_model, load_matching_weights
from gating_core.presets import (
    LAMBDAS,
    Preset,
    PresetError,
    UnknownPresetError,
    check_baseline_run,
    get_preset,
    list_presets,
    training_scheme,
)
from gating_core.spec import GateSpec, RunSpec

PRESETS = list_presets()
NINE_LAMBDAS = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]

# Every published figure that a preset may carry, with its source. A figure that
# is not in this table has no source and must not appear.
SOURCED_FIGURES = {
    ("ResNet-20", 8.75): "He et al. 2015",
    ("ResNet-32", 7.51): "He et al. 2015",
    ("ResNet-44", 7.17): "He et al. 2015",
    ("ResNet-56", 6.97): "He et al. 2015",
    ("ResNet-110", 6.43): "He et al. 2015",
    ("ResNet-110", 6.61): "He et al. 2015",
    ("PreResNet-164", 5.46): "He et al. 2016",
    ("PreResNet-1001", 4.92): "He et al. 2016",
    ("ResNet-164", 5.93): "He et al. 2016",
}


def launch_body(preset: Preset, **options) -> dict:
    """Return the sweep body with a placeholder baseline run where the preset needs one."""
    if preset.requires_baseline_run:
        options.setdefault("baseline_run_id", 1)
    return preset.sweep_body(**options)


def expand(body: dict) -> list[RunSpec]:
    return expand_grid(RunSpec.model_validate(body["base"]), body["grid"], 10_000, body["name"])


@pytest.mark.parametrize("preset", PRESETS, ids=[preset.name for preset in PRESETS])
def test_preset_expands_to_valid_runs(preset):
    specs = expand(launch_body(preset))

    assert len(specs) == preset.run_count
    assert len({spec.name for spec in specs}) == len(specs)
    for spec in specs:
        assert spec.data.dataset == preset.dataset
        assert RunSpec.model_validate(spec.model_dump(mode="json")) == spec


def test_catalogue_has_every_study_family():
    names = {preset.name for preset in PRESETS}
    expected = {
        "cifar10-resnet110-model1",
        "cifar10-resnet110-model1-from-baseline",
        "cifar10-resnet110-model1_2",
        "cifar10-resnet110-model2-sigmoid",
        "cifar10-resnet110-model2-entropy",
        "cifar10-resnet110-model3-ce",
        "cifar10-resnet110-model3-bce",
        "cifar10-resnet34-model1-stage3",
        "cifar100-resnet110-model1",
        "cifar100-resnet110-model3-bce",
        "cifar100-resnet110-baseline",
    }
    for network in ("resnet110", "preresnet110", "preresnet164"):
        for family in ("exclusive", "shortcut_only", "shortcut_only-no-loss", "two_way-1x1", "two_way-3x3"):
            expected.add(f"cifar10-{network}-{family}")
    for network in ("resnet110", "resnet164", "preresnet110", "preresnet164", "resnet34"):
        expected.add(f"cifar10-{network}-baseline")

    assert expected <= names
    assert len(names) == len(PRESETS)


def test_lambda_presets_sweep_nine_lambdas():
    preset = get_preset("cifar10-resnet110-model3-bce")

    assert list(LAMBDAS) == NINE_LAMBDAS
    assert preset.grid["gate_loss_weight"] == NINE_LAMBDAS
    assert preset.run_count == 9 * len(preset.grid["seed"])
    assert preset.base["model"]["gate"]["model3_loss"] == "bce"
    runs = expand(launch_body(preset))
    assert sorted({spec.gate_loss_weight for spec in runs}) == NINE_LAMBDAS


@pytest.mark.parametrize(
    "name",
    ["cifar10-resnet110-model2-sigmoid", "cifar10-resnet110-model2-entropy", "cifar10-preresnet164-exclusive-no-loss"],
)
def test_presets_without_gate_loss_vary_seeds(name):
    preset = get_preset(name)

    assert list(preset.grid) == ["seed"]
    assert preset.run_count == 5
    assert preset.base["gate_loss_weight"] == 0


@pytest.mark.parametrize(
    ("network", "arch", "block", "depth"),
    [
        ("resnet110", "resnet", "basic", 110),
        ("resnet164", "resnet", "bottleneck", 164),
        ("preresnet110", "preact_resnet", "basic", 110),
        ("preresnet164", "preact_resnet", "bottleneck", 164),
        ("resnet34", "resnet34", "basic", 34),
    ],
)
def test_baseline_presets_are_ungated_five_seeds(network, arch, block, depth):
    preset = get_preset(f"cifar10-{network}-baseline")
    model = preset.base["model"]

    assert (model["arch"], model["block"], model["depth"]) == (arch, block, depth)
    assert model["gate"]["kind"] == "none"
    assert preset.grid == {"seed": [0, 1, 2, 3, 4]}


def test_model2_families_differ_in_sigmoid():
    sigmoid = get_preset("cifar10-resnet110-model2-sigmoid").base["model"]["gate"]
    entropy = get_preset("cifar10-resnet110-model2-entropy").base["model"]["gate"]

    assert sigmoid["entropy_sigmoid"] is True
    assert entropy["entropy_sigmoid"] is False


def test_two_way_presets_set_kernel():
    assert get_preset("cifar10-preresnet110-two_way-1x1").base["model"]["gate"]["two_way_kernel"] == 1
    assert get_preset("cifar10-preresnet110-two_way-3x3").base["model"]["gate"]["two_way_kernel"] == 3


def test_resnet34_preset_gates_third_stage():
    gate = get_preset("cifar10-resnet34-model1-stage3").base["model"]["gate"]

    assert gate["kind"] == "model1"
    assert gate["stage"] == 3


def test_cifar100_presets_train_on_cifar100():
    cifar100 = [preset for preset in PRESETS if preset.name.startswith("cifar100-")]

    assert len(cifar100) >= 10
    assert all(preset.base["data"]["dataset"] == "cifar100" for preset in cifar100)


def test_presets_use_scheme_one():
    train = get_preset("cifar10-resnet110-model1").base["train"]

    assert train["epochs"] == 250
    assert train["lr"] == 0.1
    assert train["momentum"] == 0.9
    assert train["weight_decay"] == 1e-4
    assert train["batch_size"] == 128
    assert train["lr_milestones"] == [82, 123]
    assert train["warmup_iterations"] == 390
    assert train["warmup_lr"] == 0.01
    assert get_preset("cifar10-resnet34-baseline").base["train"]["warmup_iterations"] == 0


def test_training_schemes_differ_as_named():
    scheme1 = training_scheme("scheme1", 110)
    short = training_scheme("164-epoch", 110)
    constant = training_scheme("constant", 110)

    assert short == {**scheme1, "epochs": 164}
    assert constant == {**scheme1, "schedule": "constant"}
    assert training_scheme("scheme1", 56)["warmup_iterations"] == 0
    with pytest.raises(ValueError, match="scheme1, 164-epoch, constant; received 'cosine'"):
        training_scheme("cosine", 110)


def test_published_figures_are_sourced():
    with_figures = [preset for preset in PRESETS if preset.published]

    assert {preset.name for preset in with_figures} == {
        "cifar10-resnet110-baseline",
        "cifar10-resnet164-baseline",
        "cifar10-preresnet164-baseline",
    }
    for preset in with_figures:
        for result in preset.published["results"]:
            key = (result["model"], result["test_error_percent"])
            assert key in SOURCED_FIGURES, f"{preset.name}: unsourced figure {key}"
            assert result["source"].startswith(SOURCED_FIGURES[key])
            assert result["statistic"]


def test_published_figures_match_network():
    resnet110 = get_preset("cifar10-resnet110-baseline").published["results"]

    assert [(r["test_error_percent"], r["statistic"]) for r in resnet110] == [
        (6.43, "best of 5 runs"),
        (6.61, "mean of 5 runs"),
    ]
    assert resnet110[1]["std"] == 0.16
    assert get_preset("cifar100-resnet110-baseline").published == {}
    assert get_preset("cifar10-resnet110-model1").published == {}


def test_baseline_preset_needs_run_id():
    preset = get_preset("cifar10-resnet110-model1-from-baseline")

    assert preset.requires_baseline_run
    assert preset.base["init"] == {"source": "run", "id": None}
    with pytest.raises(PresetError, match="baseline_run_id is required") as raised:
        preset.sweep_body()
    assert raised.value.field == "baseline_run_id"


def test_baseline_run_id_sets_init():
    preset = get_preset("cifar10-resnet110-model1-from-baseline")

    body = preset.sweep_body(baseline_run_id=42)

    assert body["base"]["init"] == {"source": "run", "id": 42}
    assert body["baseline_run_id"] == 42
    assert body["preset"] == preset.name
    assert all(spec.init.id == 42 for spec in expand(body))
    assert preset.base["init"]["id"] is None


def test_scratch_preset_keeps_scratch_init_with_run_id():
    body = get_preset("cifar10-resnet110-model1").sweep_body(baseline_run_id=42)

    assert body["base"]["init"] == {"source": "scratch", "id": None}
    assert body["baseline_run_id"] == 42


def test_launch_options_replace_grid_and_fields():
    preset = get_preset("cifar10-resnet110-model1")

    body = preset.sweep_body(
        seeds=[7],
        lambdas=[0.5, 2.0],
        scheme="164-epoch",
        overrides={"train.epochs": 1, "data.train_subset": 256},
        name="quick try",
    )

    assert body["grid"] == {"gate_loss_weight": [0.5, 2.0], "seed": [7]}
    assert body["name"] == "quick try"
    assert body["base"]["train"]["epochs"] == 1
    assert body["base"]["train"]["lr_milestones"] == [82, 123]
    assert body["base"]["data"]["train_subset"] == 256
    assert len(expand(body)) == 2
    assert preset.grid["seed"] == [0, 1, 2]
    assert preset.base["train"]["epochs"] == 250


@pytest.mark.parametrize(
    ("options", "field", "fragment"),
    [
        ({"overrides": {"train.epochs": 0}}, "overrides.train.epochs", "greater than or equal to 1"),
        ({"overrides": {"model.depth": 111}}, "overrides.model.depth", "6n+2"),
        ({"overrides": {"train.colour": 1}}, "overrides.train.colour", "Extra inputs"),
        ({"overrides": {"colour.hue": 1}}, "overrides.colour.hue", "'colour' is not a section"),
        ({"overrides": {"seed": 3}}, "overrides.seed", "use seeds or lambdas"),
        ({"lambdas": []}, "lambdas", "at least one value"),
        ({"scheme": "cosine"}, "scheme", "scheme1, 164-epoch, constant"),
    ],
    ids=["zero-epochs", "bad-depth", "unknown-field", "unknown-section", "grid-axis", "no-lambdas", "bad-scheme"],
)
def test_bad_launch_option_names_field(options, field, fragment):
    with pytest.raises(PresetError) as raised:
        get_preset("cifar10-resnet110-model1").sweep_body(**options)

    assert raised.value.field == field
    assert fragment in raised.value.message


def test_lambdas_rejected_without_gate_loss():
    with pytest.raises(PresetError, match="does not vary gate_loss_weight") as raised:
        get_preset("cifar10-resnet110-model2-sigmoid").sweep_body(lambdas=[0.1])

    assert raised.value.field == "lambdas"


def test_unknown_preset_suggests_close_names():
    with pytest.raises(UnknownPresetError, match="cifar10-resnet110-model1") as raised:
        get_preset("cifar10-resnet110-modl1")

    assert raised.value.received == "cifar10-resnet110-modl1"


def test_baseline_run_must_match_backbone():
    body = get_preset("cifar10-resnet110-model1-from-baseline").sweep_body(baseline_run_id=5)
    baseline = get_preset("cifar10-resnet110-baseline").base
    other_depth = get_preset("cifar10-resnet164-baseline").base
    other_data = get_preset("cifar100-resnet110-baseline").base
    gated = get_preset("cifar10-resnet110-model1").base

    check_baseline_run(body, baseline, 5)
    with pytest.raises(PresetError, match="depth 164"):
        check_baseline_run(body, other_depth, 5)
    with pytest.raises(PresetError, match="on cifar100"):
        check_baseline_run(body, other_data, 5)
    with pytest.raises(PresetError, match="gate kind 'none'"):
        check_baseline_run(body, gated, 5)


def test_run_count_is_grid_product():
    for preset in PRESETS:
        assert preset.run_count == math.prod(len(values) for values in preset.grid.values())
        assert preset.as_dict()["run_count"] == preset.run_count


def tiny_from_baseline_spec() -> RunSpec:
    """Return the first run of the Model 1 from-baseline preset, shrunk to depth 8 and one short epoch."""
    overrides = {
        "model.depth": 8,
        "model.gate.hidden_units": 32,
        "data.train_subset": 128,
        "data.test_subset": 64,
        "train.epochs": 1,
        "train.batch_size": 64,
        "train.warmup_iterations": 0,
        # A tiny lr keeps the trained weights within 1e-3 of the loaded ones.
        "train.lr": 1e-6,
    }
    preset = get_preset("cifar10-resnet110-model1-from-baseline")
    body = preset.sweep_body(baseline_run_id=1, seeds=[0], lambdas=[0.1], overrides=overrides)
    return expand(body)[0]


def ungated_weights(spec: RunSpec) -> dict[str, torch.Tensor]:
    torch.manual_seed(1234)
    plain = build_model(spec.model.model_copy(update={"gate": GateSpec()}), 10)
    return {name: tensor.clone() for name, tensor in plain.state_dict().items()}


@pytest.mark.slow
def test_from_baseline_run_loads_backbone(data_dir, cache_dir):
    spec = tiny_from_baseline_spec()
    weights = ungated_weights(spec)

    result = run_experiment(spec, data_dir=data_dir, cache_dir=cache_dir, device="cpu", init_weights=weights)

    report = result.load_report
    model = result.state.model
    gate_names = [name for name in model.state_dict() if name.startswith("stage_gate.")]
    assert sorted(report.loaded) == sorted(weights)
    assert report.missing == []
    assert report.unexpected == []
    assert report.mismatched == {}
    assert gate_names
    assert sorted(report.gate_fresh) == sorted(gate_names)
    assert report.complete
    assert report.as_dict()["loaded"] == len(weights)
    trained = model.state_dict()
    assert torch.allclose(trained["conv1.weight"].cpu(), weights["conv1.weight"], atol=1e-3)
    assert torch.allclose(trained["linear.weight"].cpu(), weights["linear.weight"], atol=1e-3)


def test_mismatched_tensor_is_reported():
    spec = tiny_from_baseline_spec()
    weights = ungated_weights(spec)
    weights["linear.weight"] = torch.zeros(5, weights["linear.weight"].shape[1])
    model = build_model(spec.model, 10)
    before = model.linear.weight.detach().clone()

    report = load_matching_weights(model, weights)

    assert report.mismatched == {"linear.weight": ((10, 64), (5, 64))}
    assert "linear.weight" not in report.loaded
    assert len(report.loaded) == len(weights) - 1
    assert report.missing == []
    assert not report.complete
    assert report.as_dict()["mismatched"] == {"linear.weight": [[10, 64], [5, 64]]}
    assert torch.equal(model.linear.weight, before)
    assert torch.equal(model.conv1.weight, weights["conv1.weight"])


@pytest.mark.parametrize("name", ["cifar100-resnet110-model2-sigmoid", "cifar100-resnet110-two_way-3x3"])
def test_cifar100_preset_builds_100_class_head(name):
    body = get_preset(name).sweep_body(overrides={"model.depth": 8, "model.gate.hidden_units": 16})
    spec = expand(body)[0]
    model = build_model(spec.model, 100)

    output = model(torch.randn(2, 3, 32, 32))

    assert spec.data.dataset == "cifar100"
    assert output.logits.shape == (2, 100)
    assert output.gates.shape[0] == 2
    assert torch.isfinite(output.logits).all()
