"""A small U-Net-like encoder-decoder: the zoo's dense-prediction model (ConvTranspose, Resize,
skip Concats)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from npas.zoo.layers import ConvBNAct, check_input_size


class EncDec(nn.Module):
    """Three stride-2 encoder stages; the decoder upsamples once with a learned ConvTranspose,
    once with bilinear and once with nearest Resize, each followed by a skip Concat and a conv."""

    def __init__(self, num_classes: int = 8) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, 16, 3)  # full resolution
        self.down1 = ConvBNAct(16, 32, 3, 2)  # 1/2
        self.down2 = ConvBNAct(32, 64, 3, 2)  # 1/4
        self.down3 = ConvBNAct(64, 128, 3, 2)  # 1/8
        self.bottleneck = ConvBNAct(128, 128, 3)
        self.up1 = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()
        )
        self.fuse1 = ConvBNAct(64 + 64, 64, 3)
        self.fuse2 = ConvBNAct(64 + 32, 32, 3)
        self.fuse3 = ConvBNAct(32 + 16, 16, 3)
        self.head = nn.Conv2d(16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = self.stem(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        y = self.bottleneck(self.down3(s2))
        y = self.fuse1(torch.cat([self.up1(y), s2], 1))
        y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
        y = self.fuse2(torch.cat([y, s1], 1))
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        y = self.fuse3(torch.cat([y, s0], 1))
        return self.head(y)


def encdec(input_size: tuple[int, int] = (128, 128)) -> EncDec:
    """Encoder-decoder for 8-class segmentation; output has the input's height and width."""
    check_input_size("encdec", input_size, 8)
    return EncDec()
