"""ResNet-18 and ResNet-50 (He et al. 2016; stride on the 3x3 conv of bottlenecks, "v1.5")."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from npas.zoo.layers import ConvBNAct, check_input_size


class _ResidualBlock(nn.Module):
    """relu(body(x) + shortcut(x)); the subclasses give the body and the width expansion."""

    expansion = 1

    def __init__(self, body: Sequence[nn.Module], cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        self.shortcut = _shortcut(cin, cout, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class BasicBlock(_ResidualBlock):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        cout = width * self.expansion
        body = [ConvBNAct(cin, width, 3, stride), ConvBNAct(width, cout, 3, act=None)]
        super().__init__(body, cin, cout, stride)


class Bottleneck(_ResidualBlock):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        cout = width * self.expansion
        body = [
            ConvBNAct(cin, width, 1),
            ConvBNAct(width, width, 3, stride),
            ConvBNAct(width, cout, 1, act=None),
        ]
        super().__init__(body, cin, cout, stride)


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    # Projection only where the shape changes; elsewhere the identity residual the compiler fuses.
    if stride == 1 and cin == cout:
        return nn.Identity()
    return ConvBNAct(cin, cout, 1, stride, act=None)


class ResNet(nn.Module):
    def __init__(
        self, block: type[BasicBlock | Bottleneck], depths: list[int], num_classes: int = 1000
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(ConvBNAct(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        stages: list[nn.Module] = []
        cin = 64
        for i, depth in enumerate(depths):
            width = 64 * 2**i
            for j in range(depth):
                stages.append(block(cin, width, 2 if i > 0 and j == 0 else 1))
                cin = width * block.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def resnet18(input_size: tuple[int, int] = (224, 224)) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2], 1.8 GMACs at 224x224."""
    check_input_size("resnet18", input_size, 32)
    return ResNet(BasicBlock, [2, 2, 2, 2])


def resnet50(input_size: tuple[int, int] = (224, 224)) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3], 4.1 GMACs at 224x224."""
    check_input_size("resnet50", input_size, 32)
    return ResNet(Bottleneck, [3, 4, 6, 3])
