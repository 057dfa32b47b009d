"""MobileNetV2 (Sandler et al. 2018) and MobileNetV3 large/small (Howard et al. 2019)."""

from __future__ import annotations

from torch import nn

from npas.zoo.layers import (
    ConvBNAct,
    InvertedResidual,
    PooledClassifier,
    SqueezeExcite,
    check_input_size,
    make_divisible,
)

# (expansion t, output channels c, repeats n, first stride s), from the V2 paper's Table 2.
_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(PooledClassifier):
    def __init__(self, num_classes: int = 1000) -> None:
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, 2, act=nn.ReLU6)]
        cin = 32
        for t, c, n, s in _V2:
            for i in range(n):
                layers.append(InvertedResidual(cin, cin * t, c, 3, s if i == 0 else 1, nn.ReLU6))
                cin = c
        layers.append(ConvBNAct(cin, 1280, 1, act=nn.ReLU6))
        # Dropout is a no-op in eval mode and is not exported; kept for architectural fidelity.
        super().__init__(layers, nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes)))


# (kernel, expanded, out, squeeze-excite, hard-swish, stride), from the V3 paper's Tables 1, 2.
_V3_LARGE = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
_V3_SMALL = (
    (3, 16, 16, True, False, 2),
    (3, 72, 24, False, False, 2),
    (3, 88, 24, False, False, 1),
    (5, 96, 40, True, True, 2),
    (5, 240, 40, True, True, 1),
    (5, 240, 40, True, True, 1),
    (5, 120, 48, True, True, 1),
    (5, 144, 48, True, True, 1),
    (5, 288, 96, True, True, 2),
    (5, 576, 96, True, True, 1),
    (5, 576, 96, True, True, 1),
)


class MobileNetV3(PooledClassifier):
    def __init__(
        self,
        settings: tuple[tuple[int, int, int, bool, bool, int], ...],
        last_conv: int,
        hidden: int,
        num_classes: int = 1000,
    ) -> None:
        eps = 1e-3  # the reference implementation's BN epsilon
        layers: list[nn.Module] = [ConvBNAct(3, 16, 3, 2, act=nn.Hardswish, bn_eps=eps)]
        cin = 16
        for kernel, expanded, cout, se, hs, stride in settings:
            act = nn.Hardswish if hs else nn.ReLU
            # V3 squeezes to a quarter of the expanded width and gates with hard-sigmoid.
            excite = (
                SqueezeExcite(expanded, make_divisible(expanded / 4), nn.ReLU, nn.Hardsigmoid)
                if se
                else None
            )
            layers.append(InvertedResidual(cin, expanded, cout, kernel, stride, act, excite, eps))
            cin = cout
        layers.append(ConvBNAct(cin, last_conv, 1, act=nn.Hardswish, bn_eps=eps))
        classifier = nn.Sequential(
            nn.Linear(last_conv, hidden),
            nn.Hardswish(),
            nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )
        super().__init__(layers, classifier)


def mobilenet_v2(input_size: tuple[int, int] = (224, 224)) -> MobileNetV2:
    """MobileNetV2 1.0: inverted residuals with ReLU6, 0.30 GMACs at 224x224."""
    check_input_size("mobilenet_v2", input_size, 32)
    return MobileNetV2()


def mobilenet_v3_large(input_size: tuple[int, int] = (224, 224)) -> MobileNetV3:
    """MobileNetV3-Large 1.0: hard-swish, SE with hard-sigmoid, 0.22 GMACs at 224x224."""
    check_input_size("mobilenet_v3_large", input_size, 32)
    return MobileNetV3(_V3_LARGE, 960, 1280)


def mobilenet_v3_small(input_size: tuple[int, int] = (224, 224)) -> MobileNetV3:
    """MobileNetV3-Small 1.0: hard-swish, SE with hard-sigmoid, 0.06 GMACs at 224x224."""
    check_input_size("mobilenet_v3_small", input_size, 32)
    return MobileNetV3(_V3_SMALL, 576, 1024)
