"""The zoo's one table: model name -> (constructor, default input shape, description).

Constructors are named as "module:function" strings and resolved on use, so that listing and
describing models never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    constructor: str  # "npas.zoo.<module>:<function>", called with input_size=(H, W)
    input_shape: tuple[int, int, int, int]  # default NCHW; N is exported as the symbol "N"
    description: str

    def build(self, input_size: tuple[int, int]) -> Any:
        """The untrained torch module for this input size (imports torch)."""
        module, function = self.constructor.split(":")
        factory: Callable[..., Any] = getattr(importlib.import_module(module), function)
        return factory(input_size=input_size)


MODELS: dict[str, ModelSpec] = {
    "resnet18": ModelSpec(
        "npas.zoo.resnet:resnet18",
        (1, 3, 224, 224),
        "ResNet-18: basic residual blocks, BN, ReLU; 1.8 GMACs, 11.7M params",
    ),
    "resnet50": ModelSpec(
        "npas.zoo.resnet:resnet50",
        (1, 3, 224, 224),
        "ResNet-50 (v1.5): bottleneck residual blocks, BN, ReLU; 4.1 GMACs, 25.6M params",
    ),
    "mobilenet_v2": ModelSpec(
        "npas.zoo.mobilenet:mobilenet_v2",
        (1, 3, 224, 224),
        "MobileNetV2 1.0: inverted residuals, depthwise 3x3, ReLU6; 0.30 GMACs, 3.5M params",
    ),
    "mobilenet_v3_large": ModelSpec(
        "npas.zoo.mobilenet:mobilenet_v3_large",
        (1, 3, 224, 224),
        "MobileNetV3-Large: depthwise 3x3/5x5, hard-swish, SE with hard-sigmoid; "
        "0.22 GMACs, 5.5M params",
    ),
    "mobilenet_v3_small": ModelSpec(
        "npas.zoo.mobilenet:mobilenet_v3_small",
        (1, 3, 224, 224),
        "MobileNetV3-Small: depthwise 3x3/5x5, hard-swish, SE with hard-sigmoid; "
        "0.06 GMACs, 2.5M params",
    ),
    "efficientnet_b0": ModelSpec(
        "npas.zoo.efficientnet:efficientnet_b0",
        (1, 3, 224, 224),
        "EfficientNet-B0: MBConv, depthwise 3x3/5x5, SiLU (Sigmoid*Mul), SE with sigmoid; "
        "0.39 GMACs, 5.3M params",
    ),
    "vgg16": ModelSpec(
        "npas.zoo.vgg:vgg16",
        (1, 3, 224, 224),
        "VGG-16 (configuration D, no BN): 13 conv3x3+ReLU, 5 max-pools, 3 FC; "
        "15.5 GMACs, 138M params (553 MB of weights)",
    ),
    "squeezenet": ModelSpec(
        "npas.zoo.squeezenet:squeezenet",
        (1, 3, 224, 224),
        "SqueezeNet 1.1: Fire modules (1x1 squeeze, 1x1/3x3 expand, Concat), ceil-mode "
        "max-pools, conv classifier; 0.35 GMACs, 1.2M params",
    ),
    "encdec": ModelSpec(
        "npas.zoo.encdec:encdec",
        (1, 3, 128, 128),
        "Encoder-decoder (U-Net-like): 3 stride-2 stages, ConvTranspose, bilinear and nearest "
        "Resize, skip Concats, 8-class per-pixel output; 0.44 GMACs, 0.49M params",
    ),
}
