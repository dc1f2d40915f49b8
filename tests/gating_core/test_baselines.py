"""Baseline import in the library: options, reading checkpoints, matching tensors, float32 evaluation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gating_core.baselines import (
    BaselineError,
    arch_name,
    describe_normalization,
    model_spec_for_arch,
    parse_normalization,
)
from gating_core.baselines.checkpoints import (
    evaluate_baseline,
    match_checkpoint,
    read_checkpoint,
    strict_float32,
    translate_names,
)
from gating_core.data import ImageSet
from gating_core.models import build_model
from gating_core.spec import ModelSpec


def plain_state_dict(depth: int = 8, classes: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_model(ModelSpec(depth=depth), classes).state_dict()


def save(tmp_path: Path, contents: object, name: str = "checkpoint.th") -> Path:
    path = tmp_path / name
    torch.save(contents, path)
    return path


def random_images(count: int, classes: int = 10, seed: int = 0) -> ImageSet:
    generator = np.random.default_rng(seed)
    images = generator.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
    labels = generator.integers(0, classes, size=count).astype(np.int64)
    return ImageSet(images, labels, [str(label) for label in range(classes)], "npz:random.npz", "test", "generated")


@pytest.mark.parametrize("arch, depth", [("resnet20", 20), ("resnet56", 56), ("ResNet110", 110), (" resnet8 ", 8)])
def test_arch_maps_to_option_a_resnet(arch: str, depth: int) -> None:
    spec = model_spec_for_arch(arch)

    assert (spec.arch, spec.block, spec.depth, spec.shortcut) == ("resnet", "basic", depth, "A")
    assert arch_name(spec) == f"resnet{depth}"


@pytest.mark.parametrize("arch", ["resnet21", "resnet2", "resnet1208", "vgg16", "resnet", "", "resnet-56", "resnet\u0665\u0666"])
def test_arch_rejects_unknown_names(arch: str) -> None:
    with pytest.raises(BaselineError) as caught:
        model_spec_for_arch(arch)

    assert caught.value.field == "arch"
    assert "resnet56" in caught.value.message
    assert repr(arch) in caught.value.message


def test_normalization_presets_and_explicit_values() -> None:
    imagenet = parse_normalization("imagenet", "cifar10")
    cifar = parse_normalization(" CIFAR ", "cifar10")
    explicit = parse_normalization("0.5,0.5,0.5/0.25,0.25,0.25", "cifar10")

    assert imagenet.mean == (0.485, 0.456, 0.406)
    assert imagenet.std == (0.229, 0.224, 0.225)
    assert cifar.mean == (0.4914, 0.4822, 0.4465)
    assert explicit.mean == (0.5, 0.5, 0.5)
    assert explicit.std == (0.25, 0.25, 0.25)
    assert describe_normalization(imagenet, "cifar10") == "imagenet"
    assert describe_normalization(cifar, "cifar10") == "cifar"
    assert describe_normalization(explicit, "cifar10") == "0.5,0.5,0.5/0.25,0.25,0.25"
    assert parse_normalization(describe_normalization(explicit, "cifar10"), "cifar10") == explicit


@pytest.mark.parametrize(
    "text",
    ["", "ImageNet-21k", "0.5,0.5/0.25,0.25,0.25", "0.5,0.5,0.5", "0.5,0.5,0.5/0,0.25,0.25", "a,b,c/d,e,f",
     "0.5,0.5,0.5/0.2,0.2,0.2/0.1", "nan,0.5,0.5/0.2,0.2,0.2", "0.5,0.5,0.5/inf,0.2,0.2"],
)
def test_normalization_rejects_malformed_text(text: str) -> None:
    with pytest.raises(BaselineError) as caught:
        parse_normalization(text, "cifar10")

    assert caught.value.field == "normalization"
    assert "imagenet, cifar, or MEAN/STD" in caught.value.message
    assert repr(text) in caught.value.message


def test_read_unwraps_state_dict_container(tmp_path: Path) -> None:
    tensors = plain_state_dict()
    wrapped = save(tmp_path, {"state_dict": tensors, "best_prec1": 91.5})
    plain = save(tmp_path, tensors, "plain.pt")
    model_key = save(tmp_path, {"model": tensors, "epoch": 3}, "model.pt")

    for path in (wrapped, plain, model_key):
        read = read_checkpoint(path)
        assert set(read) == set(tensors)
        assert torch.equal(read["linear.weight"], tensors["linear.weight"])


class NotAllowed:
    """A class that torch.load(weights_only=True) must reject."""


@pytest.mark.parametrize(
    "contents, expected",
    [
        (b"", "EOFError"),
        (b"not a checkpoint at all, just text\n", "Unsupported operand"),
        (pickle.dumps({"weights": 1.0}), "torch.load(weights_only=True)"),
        ("torch.save", "Unsupported global: GLOBAL tests.gating_core.test_baselines.NotAllowed"),
    ],
    ids=["empty", "text", "plain-pickle", "disallowed-class"],
)
def test_read_rejects_files_that_are_not_checkpoints(tmp_path: Path, contents: bytes | str, expected: str) -> None:
    path = tmp_path / "upload.th"
    if contents == "torch.save":
        torch.save({"weights": NotAllowed()}, path)
    else:
        path.write_bytes(contents)

    with pytest.raises(BaselineError) as caught:
        read_checkpoint(path)

    assert caught.value.field == "file"
    assert "not a PyTorch checkpoint" in caught.value.message
    assert expected in caught.value.message


def test_read_rejects_checkpoint_without_tensors(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="contains no tensors; its top-level entries are epoch, lr"):
        read_checkpoint(save(tmp_path, {"epoch": 3, "lr": 0.1}))
    with pytest.raises(BaselineError, match="received a list"):
        read_checkpoint(save(tmp_path, [torch.zeros(2)], "list.pt"))


def test_translate_strips_prefixes_and_renames_torchvision_names() -> None:
    tensors = {"module.conv1.weight": torch.zeros(1), "module.fc.weight": torch.ones(1), "layer2.0.downsample.0.weight": torch.zeros(2)}

    translated, renamed = translate_names(tensors)

    assert sorted(translated) == ["conv1.weight", "layer2.0.shortcut.0.weight", "linear.weight"]
    assert renamed == 2
    assert torch.equal(translated["linear.weight"], torch.ones(1))


def test_translate_rejects_two_tensors_with_one_name() -> None:
    with pytest.raises(BaselineError, match="'fc.weight' both translate to 'linear.weight'"):
        translate_names({"linear.weight": torch.zeros(1), "fc.weight": torch.zeros(1)})


def test_match_loads_every_tensor_and_reports_left_over() -> None:
    tensors = {f"module.{name}": tensor for name, tensor in plain_state_dict(seed=3).items()}
    tensors["module.extra.weight"] = torch.zeros(4)

    matched = match_checkpoint(tensors, model_spec_for_arch("resnet8"), "cifar10")

    report = matched.as_dict()
    assert report["missing"] == []
    assert report["mismatched"] == {}
    assert report["left_over"] == ["extra.weight"]
    assert report["tensors_in_file"] == len(tensors)
    assert report["loaded"] == len(tensors) - 1
    assert torch.equal(matched.model.conv1.weight, tensors["module.conv1.weight"])


def test_match_accepts_missing_batch_counters() -> None:
    tensors = {name: tensor for name, tensor in plain_state_dict().items() if not name.endswith("num_batches_tracked")}

    matched = match_checkpoint(tensors, model_spec_for_arch("resnet8"), "cifar10")

    assert matched.report.missing == []


def test_match_rejects_missing_tensor_by_name() -> None:
    tensors = plain_state_dict()
    del tensors["layer2.0.bn1.running_var"]

    with pytest.raises(BaselineError) as caught:
        match_checkpoint(tensors, model_spec_for_arch("resnet8"), "cifar10")

    assert caught.value.field == "file"
    assert "1 tensors are missing: layer2.0.bn1.running_var" in caught.value.message


def test_match_rejects_shallower_checkpoint() -> None:
    with pytest.raises(BaselineError) as caught:
        match_checkpoint(plain_state_dict(depth=14), model_spec_for_arch("resnet20"), "cifar10")

    assert "do not fit ResNet-20" in caught.value.message
    assert "tensors are missing: layer1.2.conv1.weight" in caught.value.message
    assert "Check that arch names the network" in caught.value.message


def test_match_rejects_deeper_checkpoint() -> None:
    with pytest.raises(BaselineError) as caught:
        match_checkpoint(plain_state_dict(depth=20), model_spec_for_arch("resnet14"), "cifar10")

    assert "do not fit ResNet-14" in caught.value.message
    assert "36 tensors belong to residual units the network lacks: layer1.2.conv1.weight" in caught.value.message


def test_match_names_class_count_of_other_data_set() -> None:
    with pytest.raises(BaselineError) as caught:
        match_checkpoint(plain_state_dict(classes=100), model_spec_for_arch("resnet8"), "cifar10")

    assert "linear.weight (network [10, 64], file [100, 64])" in caught.value.message
    assert "classifier has 100 outputs" in caught.value.message


def test_match_rejects_unknown_dataset() -> None:
    with pytest.raises(BaselineError) as caught:
        match_checkpoint(plain_state_dict(), model_spec_for_arch("resnet8"), "svhn")

    assert caught.value.field == "dataset"
    assert "cifar10, cifar100" in caught.value.message


def test_evaluate_counts_plain_forward_predictions() -> None:
    matched = match_checkpoint(plain_state_dict(seed=5), model_spec_for_arch("resnet8"), "cifar10")
    images = random_images(64)
    normalization = parse_normalization("imagenet", "cifar10")

    result = evaluate_baseline(matched.model, images, normalization, torch.device("cpu"))

    mean = torch.tensor(normalization.mean).view(1, 3, 1, 1)
    std = torch.tensor(normalization.std).view(1, 3, 1, 1)
    x = (torch.from_numpy(images.images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        expected = int((matched.model.eval()(x).logits.argmax(1).numpy() == images.labels).sum())
    assert result.count == 64
    assert result.correct == expected
    assert result.dataset == "npz:random.npz"
    assert result.device == "cpu"


def test_evaluate_rejects_labels_beyond_classes() -> None:
    matched = match_checkpoint(plain_state_dict(), model_spec_for_arch("resnet8"), "cifar10")

    with pytest.raises(BaselineError) as caught:
        evaluate_baseline(matched.model, random_images(8, classes=100, seed=1), parse_normalization("cifar", "cifar10"), torch.device("cpu"))

    assert caught.value.field == "test_dataset"
    assert "10 classes" in caught.value.message


def test_strict_float32_restores_tf32_flags() -> None:
    torch.backends.cudnn.allow_tf32 = True
    with strict_float32():
        assert not torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32
    assert torch.backends.cudnn.allow_tf32
