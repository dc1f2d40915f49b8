"""Residual units of CIFAR ResNets: basic and bottleneck, post- and pre-activation.

Every unit splits its computation into the shortcut x and the residual branch F(x),
which have the same shape, so that a layer-level gate can decide how to combine them.
Module names follow the published CIFAR ResNet checkpoints and torchvision
(`conv1`, `bn1`, ..., `shortcut.0`, `shortcut.1`), so saved weights load by name.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from gating_core.models.gates import LayerGate
from gating_core.spec import ShortcutType


class UnitOutput(NamedTuple):
    """A residual unit's output and, when the unit is gated, its gate's record."""

    out: Tensor
    use: Tensor | None  # (B,) weight of the residual branch, None without a gate
    gate_loss: Tensor | None  # 0-dim, None without a gate


class ZeroPadShortcut(nn.Module):
    """Parameter-free shortcut ("option A" of He et al. 2015, "Deep Residual Learning").

    It subsamples with the stride (x[:, :, ::2, ::2] for stride 2) and zero-pads the
    channels to the output width, half of the new channels on each side. For basic
    units that is planes // 4 on each side, as in the original CIFAR ResNet. The same
    rule serves bottleneck units, whose channel count also only grows.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"shortcut 'A' can only widen the channels by zero padding, but this unit maps "
                f"{in_channels} channels to {out_channels}; use shortcut 'B'"
            )
        self.stride = stride
        self.pad_before = (out_channels - in_channels) // 2
        self.pad_after = out_channels - in_channels - self.pad_before

    def forward(self, x: Tensor) -> Tensor:
        subsampled = x[:, :, :: self.stride, :: self.stride]
        # F.pad lists (last dim, ..., first padded dim): W, H, then C.
        return F.pad(subsampled, (0, 0, 0, 0, self.pad_before, self.pad_after))


def make_shortcut(in_channels: int, out_channels: int, stride: int, shortcut: ShortcutType) -> nn.Module:
    """Build the shortcut: the identity where the shape is kept, else option A or B."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if shortcut == "A":
        return ZeroPadShortcut(in_channels, out_channels, stride)
    if shortcut == "B":
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
    raise ValueError(f"shortcut must be 'A' or 'B'; received {shortcut!r}")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)


class ResidualUnit(nn.Module):
    """Base of all units. It combines the shortcut and F(x), through the gate when there is one.

    Subclasses set `expansion` (output channels per plane) and `preact`, and implement
    `branches`. Post-activation units apply the final ReLU after the combination.
    """

    expansion: int = 1
    preact: bool = False

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = planes * self.expansion
        self.stride = stride
        self.gate: LayerGate | None = None

    @property
    def changes_shape(self) -> bool:
        return self.stride != 1 or self.in_channels != self.out_channels

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return the shortcut and the residual branch F(x), both of the output's shape."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> UnitOutput:
        shortcut, residual = self.branches(x)

        if self.gate is None:
            out = shortcut + residual
            use = None
            gate_loss = None
        else:
            out, use, gate_loss = self.gate(x, shortcut, residual)

        if not self.preact:
            out = F.relu(out)
        return UnitOutput(out, use, gate_loss)


class BasicUnit(ResidualUnit):
    """Two 3x3 convolutions, each followed by BN (He et al. 2015)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int, shortcut: ShortcutType) -> None:
        super().__init__(in_channels, planes, stride)
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = make_shortcut(in_channels, self.out_channels, stride, shortcut)

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        residual = F.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        return self.shortcut(x), residual


class BottleneckUnit(ResidualUnit):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand by 4, each followed by BN."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int, shortcut: ShortcutType) -> None:
        super().__init__(in_channels, planes, stride)
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, self.out_channels)
        self.bn3 = nn.BatchNorm2d(self.out_channels)
        self.shortcut = make_shortcut(in_channels, self.out_channels, stride, shortcut)

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        residual = F.relu(self.bn1(self.conv1(x)))
        residual = F.relu(self.bn2(self.conv2(residual)))
        residual = self.bn3(self.conv3(residual))
        return self.shortcut(x), residual


class PreActBasicUnit(ResidualUnit):
    """BN-ReLU-conv twice (He et al. 2016, "Identity Mappings in Deep Residual Networks").

    Where the shape changes, the shortcut takes the pre-activated input, so BN-ReLU
    runs before the split. Elsewhere the shortcut is the raw input.
    """

    expansion = 1
    preact = True

    def __init__(self, in_channels: int, planes: int, stride: int, shortcut: ShortcutType) -> None:
        super().__init__(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.shortcut = make_shortcut(in_channels, self.out_channels, stride, shortcut)

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        activated = F.relu(self.bn1(x))
        shortcut = self.shortcut(activated) if self.changes_shape else x
        residual = self.conv1(activated)
        residual = self.conv2(F.relu(self.bn2(residual)))
        return shortcut, residual


class PreActBottleneckUnit(ResidualUnit):
    """BN-ReLU-conv with 1x1 reduce, 3x3 (with the stride) and 1x1 expand by 4."""

    expansion = 4
    preact = True

    def __init__(self, in_channels: int, planes: int, stride: int, shortcut: ShortcutType) -> None:
        super().__init__(in_channels, planes, stride)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, self.out_channels)
        self.shortcut = make_shortcut(in_channels, self.out_channels, stride, shortcut)

    def branches(self, x: Tensor) -> tuple[Tensor, Tensor]:
        activated = F.relu(self.bn1(x))
        shortcut = self.shortcut(activated) if self.changes_shape else x
        residual = self.conv1(activated)
        residual = self.conv2(F.relu(self.bn2(residual)))
        residual = self.conv3(F.relu(self.bn3(residual)))
        return shortcut, residual


def unit_class(arch: str, block: str) -> type[ResidualUnit]:
    """Return the unit class for an architecture and block type."""
    if arch == "resnet34":
        return BasicUnit
    classes = {
        ("resnet", "basic"): BasicUnit,
        ("resnet", "bottleneck"): BottleneckUnit,
        ("preact_resnet", "basic"): PreActBasicUnit,
        ("preact_resnet", "bottleneck"): PreActBottleneckUnit,
    }
    if (arch, block) not in classes:
        raise ValueError(
            f"arch must be resnet, preact_resnet or resnet34 and block basic or bottleneck; "
            f"received arch={arch!r}, block={block!r}"
        )
    return classes[(arch, block)]


__all__ = [
    "BasicUnit",
    "BottleneckUnit",
    "PreActBasicUnit",
    "PreActBottleneckUnit",
    "ResidualUnit",
    "UnitOutput",
    "ZeroPadShortcut",
    "make_shortcut",
    "unit_class",
]
