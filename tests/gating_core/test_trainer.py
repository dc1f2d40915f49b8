"""Tests of the trainer: epochs and events, divergence, the fused optimiser and device reads per step."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from gating_core.data import DeviceImages, ImageSet
from gating_core.models import build_model
from gating_core.spec import GATE_KINDS, RunSpec
from gating_core.train.callbacks import Callback, DivergenceError, EpochMetrics
from gating_core.train.precision import PrecisionPlan, plan_precision
from gating_core.train.trainer import Trainer, TrainingData, TrainState, iterations_per_epoch, make_optimizer

MEAN = (0.49, 0.48, 0.45)
STD = (0.25, 0.24, 0.26)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run these tiny networks on one thread: on a busy machine two OpenMP threads wait for each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def random_images(count: int, seed: int = 0) -> DeviceImages:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.int64)
    image_set = ImageSet(images, labels, [str(i) for i in range(10)], "random", "train", "test")
    return DeviceImages.from_image_set(image_set)


def make_trainer(spec: RunSpec, train_count: int = 32, device: str = "cpu",
                 callbacks: list[Callback] | None = None) -> Trainer:
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, 10).to(device=device, memory_format=torch.channels_last)
    state = TrainState(
        spec=spec,
        model=model,
        optimizer=make_optimizer(model, spec),
        generator=torch.Generator().manual_seed(spec.seed),
        iterations_per_epoch=iterations_per_epoch(train_count, spec.train.batch_size),
    )
    data = TrainingData(random_images(train_count), random_images(20, seed=1), None, 10, list("0123456789"), MEAN, STD)
    return Trainer(state, data, PrecisionPlan(None, torch.device(device)), callbacks)


def small_spec(**train: object) -> RunSpec:
    return RunSpec.model_validate(
        {"model": {"depth": 8}, "train": {"epochs": 2, "batch_size": 16, "precision": "float32", **train}}
    )


class EventLog(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_train_start(self, state: TrainState) -> None:
        self.events.append("train_start")

    def on_epoch_start(self, state: TrainState) -> None:
        self.events.append(f"epoch_start {state.epoch}")

    def on_step(self, state: TrainState) -> None:
        self.events.append("step")

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        self.events.append(f"epoch_end {state.epoch}")

    def on_train_end(self, state: TrainState) -> None:
        self.events.append("train_end")


def test_fit_runs_every_epoch_and_event() -> None:
    log = EventLog()
    trainer = make_trainer(small_spec(batch_size=8), train_count=20, callbacks=[log])

    state = trainer.fit()

    steps = ["step"] * 3
    assert log.events == ["train_start", "epoch_start 0", *steps, "epoch_end 1", "epoch_start 1", *steps,
                          "epoch_end 2", "train_end"]
    assert state.epoch == 2
    assert state.iteration == 6
    assert [metrics.epoch for metrics in state.history] == [1, 2]


def test_epoch_metrics_are_finite_means() -> None:
    trainer = make_trainer(small_spec(epochs=1))

    metrics = trainer.run_epoch()

    assert math.isfinite(metrics.train_loss)
    assert metrics.train_loss > 0
    assert 0.0 <= metrics.train_error <= 1.0
    assert 0.0 <= metrics.test_accuracy <= 1.0
    assert metrics.mean_gate is None
    assert metrics.images_per_second > 0
    assert metrics.lr == pytest.approx(0.1)


def test_gated_epoch_reports_mean_gate() -> None:
    spec = RunSpec.model_validate(
        {"model": {"depth": 8, "gate": {"kind": "exclusive"}}, "gate_loss_weight": 0.1,
         "train": {"epochs": 1, "batch_size": 16, "precision": "float32"}}
    )
    metrics = make_trainer(spec).run_epoch()

    assert metrics.mean_gate is not None
    assert 0.0 < metrics.mean_gate < 1.0
    assert metrics.gate_loss > 0


def test_nonfinite_loss_raises_divergence() -> None:
    trainer = make_trainer(small_spec())
    with torch.no_grad():
        trainer.state.model.linear.weight.fill_(float("nan"))

    with pytest.raises(DivergenceError) as caught:
        trainer.fit()

    assert caught.value.epoch == 1
    assert caught.value.iteration == 1
    assert trainer.state.history == []


@pytest.mark.parametrize("kind", GATE_KINDS)
def test_train_step_reads_nothing_from_device(kind: str) -> None:
    # A meta tensor has no data, so .item(), nonzero() or a tensor in an `if`
    # raise on it: a step that completes there never waits for the device.
    weight = 0.0 if kind in ("none", "model2") else 0.1
    spec = RunSpec.model_validate(
        {"model": {"depth": 8, "gate": {"kind": kind}}, "gate_loss_weight": weight,
         "train": {"batch_size": 4, "precision": "float32"}}
    )
    trainer = make_trainer(spec, device="meta")
    images = torch.empty(4, 3, 32, 32, device="meta").contiguous(memory_format=torch.channels_last)
    labels = torch.empty(4, dtype=torch.long, device="meta")

    for _ in range(2):
        sums = trainer.train_step(images, labels)

    assert sums.device.type == "meta"
    assert sums.shape == (5,)


def test_meta_device_catches_device_reads() -> None:
    spec = RunSpec.model_validate({"model": {"depth": 8, "gate": {"kind": "model1"}}})
    model = build_model(spec.model, 10).to("meta")
    images = torch.empty(4, 3, 32, 32, device="meta")

    # The hard-skip path selects images with nonzero(), which must read the gate values.
    with pytest.raises((NotImplementedError, RuntimeError)):
        model.forward_hard_skip(images, 0.5)


def test_optimizer_is_fused_on_cpu_only() -> None:
    spec = small_spec()
    cpu_model = build_model(spec.model, 10)
    meta_model = build_model(spec.model, 10).to("meta")

    assert make_optimizer(cpu_model, spec).param_groups[0]["fused"] is True
    assert not make_optimizer(meta_model, spec).param_groups[0]["fused"]


def test_fused_optimizer_matches_unfused_steps() -> None:
    spec = small_spec()
    torch.manual_seed(0)
    fused_model = build_model(spec.model, 10)
    plain_model = build_model(spec.model, 10)
    plain_model.load_state_dict(fused_model.state_dict())
    fused = make_optimizer(fused_model, spec)
    plain = torch.optim.SGD(plain_model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, foreach=False)
    images = torch.randn(4, 3, 32, 32)
    labels = torch.randint(0, 10, (4,))

    for _ in range(3):
        for model, optimizer in ((fused_model, fused), (plain_model, plain)):
            loss = torch.nn.functional.cross_entropy(model(images).logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    for (name, fused_value), plain_value in zip(fused_model.state_dict().items(), plain_model.state_dict().values()):
        torch.testing.assert_close(fused_value, plain_value, rtol=1e-4, atol=1e-5, msg=f"parameter {name} differs")


def test_precision_float32_turns_autocast_off() -> None:
    plan = plan_precision("float32", torch.device("cpu"))

    assert plan.autocast_dtype is None
    assert plan.name == "float32"


def test_precision_auto_follows_cpu_support() -> None:
    supported = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())

    plan = plan_precision("auto", torch.device("cpu"))

    assert plan.name == ("bf16" if supported else "float32")
