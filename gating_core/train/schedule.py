"""Learning rate per iteration: optional warm-up, then a constant or step schedule."""

from __future__ import annotations

from gating_core.spec import TrainSpec


def learning_rate(spec: TrainSpec, iteration: int, iterations_per_epoch: int) -> float:
    """Return the learning rate for a 0-based global iteration.

    The first `warmup_iterations` iterations use `warmup_lr`. After that a step
    schedule divides `lr` by 10 once for every milestone that the current epoch
    has reached: with milestones [82, 123], epochs 1-82 train at lr, epochs
    83-123 at lr/10 and later epochs at lr/100 (epochs counted from 1).
    """
    if iteration < 0:
        raise ValueError(f"iteration must be 0 or more; received {iteration}")
    if iterations_per_epoch < 1:
        raise ValueError(f"iterations_per_epoch must be 1 or more; received {iterations_per_epoch}")

    if iteration < spec.warmup_iterations:
        return spec.warmup_lr
    if spec.schedule == "constant":
        return spec.lr

    completed_epochs = iteration // iterations_per_epoch
    decays = sum(1 for milestone in spec.lr_milestones if completed_epochs >= milestone)
    return spec.lr * (0.1**decays)
