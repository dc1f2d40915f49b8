"""Load saved backbone weights into a gated network by name and shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gating_core.models.resnet import GatedResNet

# Prefixes that wrappers add to every key: nn.DataParallel ("module.") and
# torch.compile ("_orig_mod.").
WRAPPER_PREFIXES = ("module.", "_orig_mod.")

# BatchNorm's batch counter only matters with momentum=None, which these networks do
# not use, and the published CIFAR ResNet checkpoints do not store it.
IGNORED_MISSING_SUFFIX = "num_batches_tracked"


@dataclass
class LoadReport:
    """The tensor names that `load_matching_weights` loaded, skipped or could not match.

    `missing` lists backbone tensors of the model that the file lacks. Gate tensors
    are never loaded, and `gate_fresh` lists them instead. `mismatched` maps a name
    to its (model shape, file shape).
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    gate_fresh: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain JSON-ready values."""
        return {
            "loaded": len(self.loaded),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": {name: [list(a), list(b)] for name, (a, b) in self.mismatched.items()},
            "gate_fresh": list(self.gate_fresh),
            "complete": self.complete,
        }

    @property
    def complete(self) -> bool:
        """True when every backbone tensor was loaded and the file had nothing else."""
        return not (self.missing or self.unexpected or self.mismatched)


def strip_wrapper_prefixes(name: str) -> str:
    """Remove the DataParallel and torch.compile prefixes from a state-dict key."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                changed = True
    return name


def _gate_prefixes(model: GatedResNet) -> tuple[str, ...]:
    gate_types = tuple({type(gate) for gate in model.gate_modules()})
    if not gate_types:
        return ()
    return tuple(f"{name}." for name, module in model.named_modules() if isinstance(module, gate_types))


def load_matching_weights(model: GatedResNet, state_dict: Mapping[str, Tensor]) -> LoadReport:
    """Copy every tensor whose name and shape match the model's, and report the rest.

    Keys may carry "module." or "_orig_mod." prefixes. A checkpoint dict with a
    "state_dict" entry is unwrapped. Gate layers keep their current (fresh)
    weights even when the file has tensors of the same name. BatchNorm
    `num_batches_tracked` counters are loaded when present but never reported
    missing.
    """
    nested = state_dict.get("state_dict") if isinstance(state_dict, Mapping) else None
    if isinstance(nested, Mapping):
        state_dict = nested
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict must be a mapping of names to tensors; received {type(state_dict).__name__}")

    file_tensors: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise ValueError(f"state_dict entry {key!r} must be a tensor; received {type(value).__name__}")
        file_tensors[strip_wrapper_prefixes(key)] = value

    gate_prefixes = _gate_prefixes(model)
    report = LoadReport()
    model_tensors = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, target in model_tensors.items():
            if name.startswith(gate_prefixes):
                report.gate_fresh.append(name)
                continue
            source = file_tensors.get(name)
            if source is None:
                if not name.endswith(IGNORED_MISSING_SUFFIX):
                    report.missing.append(name)
                continue
            if tuple(source.shape) != tuple(target.shape):
                report.mismatched[name] = (tuple(target.shape), tuple(source.shape))
                continue
            target.copy_(source)
            report.loaded.append(name)

    report.unexpected = [name for name in file_tensors if name not in model_tensors]
    return report
