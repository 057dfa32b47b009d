"""Building blocks shared by the zoo's model families."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from npas.errors import NpasError

Act = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never dropping more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_input_size(model: str, input_size: tuple[int, int], multiple: int) -> None:
    """Reject input sizes the architecture's strides (or fixed FC sizes) cannot take."""
    h, w = input_size
    if h < multiple or w < multiple or h % multiple or w % multiple:
        raise NpasError(
            f"zoo model {model!r} needs an input height and width that are multiples of "
            f"{multiple} (and at least {multiple}); got {h}x{w}. Pass e.g. input_size=224."
        )


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm2d -> optional activation, 'same' padding for odd kernels."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: Act | None = nn.ReLU,
        bn_eps: float = 1e-5,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=bn_eps),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite: global pool, 1x1 reduce, activation, 1x1 expand, gate, scale."""

    def __init__(self, channels: int, squeeze: int, act: Act, gate: Act) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.act = act()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * s


class PooledClassifier(nn.Module):
    """features -> global average pool -> flatten -> classifier, the MobileNet/EfficientNet
    layout; subclasses build the two parts."""

    def __init__(self, features: Sequence[nn.Module], classifier: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class InvertedResidual(nn.Module):
    """1x1 expand -> kxk depthwise -> [squeeze-excite] -> 1x1 linear project (+ residual)."""

    def __init__(
        self,
        cin: int,
        expanded: int,
        cout: int,
        kernel: int,
        stride: int,
        act: Act,
        se: nn.Module | None = None,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=act, bn_eps=bn_eps))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, expanded, act, bn_eps))
        if se is not None:
            layers.append(se)
        layers.append(ConvBNAct(expanded, cout, 1, act=None, bn_eps=bn_eps))
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y
