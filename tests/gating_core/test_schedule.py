"""Learning rate per iteration: warm-up, step milestones and the constant schedule."""

from __future__ import annotations

import pytest

from gating_core.presets import training_scheme
from gating_core.spec import TrainSpec
from gating_core.train.schedule import learning_rate

# 50,000 images in batches of 128, the last batch partial.
ITERATIONS_PER_EPOCH = 391


def scheme(name: str = "scheme1", depth: int = 110) -> TrainSpec:
    return TrainSpec(**training_scheme(name, depth))


def at_epoch_start(epoch: int) -> int:
    """Return the first iteration of a 1-based epoch."""
    return (epoch - 1) * ITERATIONS_PER_EPOCH


def test_warmup_ends_after_390_iterations():
    spec = scheme()

    assert learning_rate(spec, 0, ITERATIONS_PER_EPOCH) == 0.01
    assert learning_rate(spec, 389, ITERATIONS_PER_EPOCH) == 0.01
    assert learning_rate(spec, 390, ITERATIONS_PER_EPOCH) == 0.1


def test_no_warmup_below_depth_110():
    spec = scheme(depth=56)

    assert learning_rate(spec, 0, ITERATIONS_PER_EPOCH) == 0.1


def test_first_milestone_after_epoch_82():
    spec = scheme()

    assert learning_rate(spec, at_epoch_start(83) - 1, ITERATIONS_PER_EPOCH) == pytest.approx(0.1)
    assert learning_rate(spec, at_epoch_start(83), ITERATIONS_PER_EPOCH) == pytest.approx(0.01)


def test_second_milestone_after_epoch_123():
    spec = scheme()

    assert learning_rate(spec, at_epoch_start(124) - 1, ITERATIONS_PER_EPOCH) == pytest.approx(0.01)
    assert learning_rate(spec, at_epoch_start(124), ITERATIONS_PER_EPOCH) == pytest.approx(0.001)
    assert learning_rate(spec, at_epoch_start(250), ITERATIONS_PER_EPOCH) == pytest.approx(0.001)


def test_164_epoch_scheme_keeps_milestones():
    spec = scheme("164-epoch")

    assert spec.epochs == 164
    assert learning_rate(spec, at_epoch_start(83), ITERATIONS_PER_EPOCH) == pytest.approx(0.01)
    assert learning_rate(spec, at_epoch_start(164), ITERATIONS_PER_EPOCH) == pytest.approx(0.001)


def test_constant_schedule_ignores_milestones():
    spec = scheme("constant")

    assert learning_rate(spec, 389, ITERATIONS_PER_EPOCH) == 0.01
    for epoch in (1, 83, 124, 250):
        iteration = max(at_epoch_start(epoch), 390)
        assert learning_rate(spec, iteration, ITERATIONS_PER_EPOCH) == 0.1


def test_warmup_longer_than_an_epoch_wins():
    spec = TrainSpec(lr=0.5, warmup_iterations=1000, warmup_lr=0.02, lr_milestones=[1])

    assert learning_rate(spec, 150, 100) == 0.02
    assert learning_rate(spec, 999, 100) == 0.02
    assert learning_rate(spec, 1000, 100) == pytest.approx(0.05)


def test_milestone_counts_completed_epochs():
    spec = TrainSpec(lr=1.0, lr_milestones=[1, 2, 3])

    assert learning_rate(spec, 9, 10) == 1.0
    assert learning_rate(spec, 10, 10) == pytest.approx(0.1)
    assert learning_rate(spec, 20, 10) == pytest.approx(0.01)
    assert learning_rate(spec, 30, 10) == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("iteration", "iterations_per_epoch", "message"),
    [(-1, 10, "iteration must be 0 or more; received -1"), (0, 0, "iterations_per_epoch must be 1 or more; received 0")],
)
def test_bad_arguments_rejected(iteration, iterations_per_epoch, message):
    with pytest.raises(ValueError, match=message):
        learning_rate(TrainSpec(), iteration, iterations_per_epoch)
