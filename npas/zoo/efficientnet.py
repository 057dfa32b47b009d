"""EfficientNet-B0 (Tan and Le 2019): MBConv blocks with SiLU and sigmoid-gated SE."""

from __future__ import annotations

from torch import nn

from npas.zoo.layers import (
    ConvBNAct,
    InvertedResidual,
    PooledClassifier,
    SqueezeExcite,
    check_input_size,
)

# (expansion, kernel, first stride, output channels, repeats), from the paper's Table 1.
_B0 = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


class EfficientNet(PooledClassifier):
    def __init__(self, num_classes: int = 1000) -> None:
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2, act=nn.SiLU)]
        cin = 32
        for expansion, kernel, stride, cout, repeats in _B0:
            for i in range(repeats):
                expanded = cin * expansion
                # EfficientNet squeezes to a quarter of the block's *input* width (not expanded).
                se = SqueezeExcite(expanded, max(1, cin // 4), nn.SiLU, nn.Sigmoid)
                layers.append(
                    InvertedResidual(
                        cin, expanded, cout, kernel, stride if i == 0 else 1, nn.SiLU, se
                    )
                )
                cin = cout
        layers.append(ConvBNAct(cin, 1280, 1, act=nn.SiLU))
        # Dropout (and stochastic depth) are training-only; eval export drops them.
        super().__init__(layers, nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes)))


def efficientnet_b0(input_size: tuple[int, int] = (224, 224)) -> EfficientNet:
    """EfficientNet-B0: SiLU (Sigmoid*x) and SE, 0.39 GMACs at 224x224."""
    check_input_size("efficientnet_b0", input_size, 32)
    return EfficientNet()
