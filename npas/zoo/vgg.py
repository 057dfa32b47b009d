"""VGG-16 as in Simonyan and Zisserman 2015 (configuration D): no BN, three FC layers."""

from __future__ import annotations

import torch
from torch import nn

from npas.zoo.layers import check_input_size

# Output channels of each 3x3 conv; "M" is a 2x2 max-pool.
_VGG16: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


class VGG(nn.Module):
    def __init__(self, input_size: tuple[int, int], num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in _VGG16:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                assert isinstance(item, int)
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU()]
                cin = item
        self.features = nn.Sequential(*layers)
        # The paper flattens the 7x7x512 map of a 224 input; other sizes change fc1's width
        # instead of adding an adaptive pool, which has no ONNX form for arbitrary sizes.
        flat = cin * (input_size[0] // 32) * (input_size[1] // 32)
        self.classifier = nn.Sequential(
            nn.Linear(flat, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg16(input_size: tuple[int, int] = (224, 224)) -> VGG:
    """VGG-16 (configuration D, no BN): 15.5 GMACs and 138M parameters at 224x224."""
    check_input_size("vgg16", input_size, 32)
    return VGG(input_size)
