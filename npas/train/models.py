"""A small residual CNN in the zoo's style for the digits task: 3x3 and 1x1 convs, BN, ReLU,
residual adds, a projection shortcut, global pooling and a linear classifier. Big enough that
every pruning scheme has layers to act on (3x3 convs for pattern, 1x1 convs and the classifier
for block), small enough to train in seconds on a laptop CPU."""

from __future__ import annotations

import torch
from torch import nn

from npas.zoo.layers import ConvBNAct


class _Block(nn.Module):
    """relu(conv3x3-bn-relu-conv3x3-bn(x) + shortcut(x)), a 1x1 projection where the shape
    changes (the zoo's ResNet BasicBlock)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(cin, cout, 3, stride), ConvBNAct(cout, cout, 3, act=None)
        )
        self.shortcut: nn.Module = (
            nn.Identity()
            if stride == 1 and cin == cout
            else ConvBNAct(cin, cout, 1, stride, act=None)
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class DigitsResNet(nn.Module):
    """stem 3x3 -> block(w) -> block(2w, stride 2, 1x1 shortcut) -> block(2w) -> 1x1 expand to
    4w -> global average pool -> linear. Input [N, in_channels, H, W] (16x16 for digits)."""

    def __init__(self, width: int = 32, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        w = width
        self.stem = ConvBNAct(in_channels, w, 3)
        self.layer1 = _Block(w, w, 1)
        self.layer2 = _Block(w, 2 * w, 2)
        self.layer3 = _Block(2 * w, 2 * w, 1)
        self.expand = ConvBNAct(2 * w, 4 * w, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))
