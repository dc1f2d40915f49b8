"""Saving and restoring the training state, so that a stopped run resumes where it left off."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from gating_core.train.callbacks import Callback, EpochMetrics
from gating_core.train.trainer import TrainState

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: Path, state: TrainState) -> None:
    """Write the state to `path` atomically: readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "epoch": state.epoch,
        "iteration": state.iteration,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
        "history": [metrics.as_dict() for metrics in state.history],
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def restore_checkpoint(path: Path, state: TrainState) -> bool:
    """Load a checkpoint into `state` when `path` exists; return whether it did."""
    if not path.exists():
        return False
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path} has format {payload.get('format')!r}; this version reads format {CHECKPOINT_FORMAT}"
        )
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    state.generator.set_state(payload["generator"])
    state.epoch = int(payload["epoch"])
    state.iteration = int(payload["iteration"])
    state.history = [EpochMetrics(**metrics) for metrics in payload["history"]]
    return True


def load_model_weights(path: Path) -> dict[str, torch.Tensor]:
    """Return the model tensors of a checkpoint file written by `save_checkpoint`."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if "model" not in payload:
        raise ValueError(f"{path} is not a GateLab checkpoint: it has no 'model' entry")
    return payload["model"]


class CheckpointCallback(Callback):
    """Saves the training state after every epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, state: TrainState, metrics: EpochMetrics) -> None:
        save_checkpoint(self.path, state)
