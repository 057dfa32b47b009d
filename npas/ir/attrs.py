"""Typed attributes, one frozen dataclass per op family. ONNX attribute dicts never reach here."""

from __future__ import annotations

from dataclasses import dataclass

from .ops import Op

Pair = tuple[int, int]
Pads4 = tuple[int, int, int, int]  # top, left, bottom, right


@dataclass(frozen=True)
class NoAttrs:
    pass


@dataclass(frozen=True)
class WindowAttrs:
    """The sliding-window geometry that convolutions and pools share. Each op has its own
    subclass (never this one), so that a layer's attrs still name its op."""

    kernel: Pair
    stride: Pair = (1, 1)
    pads: Pads4 = (0, 0, 0, 0)
    dilation: Pair = (1, 1)


@dataclass(frozen=True)
class Conv2dAttrs(WindowAttrs):
    groups: int = 1


@dataclass(frozen=True)
class ConvTranspose2dAttrs(WindowAttrs):
    groups: int = 1
    output_padding: Pair = (0, 0)


@dataclass(frozen=True)
class PoolAttrs(WindowAttrs):
    ceil_mode: bool = False
    count_include_pad: bool = False


@dataclass(frozen=True)
class UnaryAttrs:
    """alpha/beta as the op defines them (clip: min/max; leaky/elu: alpha; hardsigmoid: a, b)."""

    alpha: float = 0.0
    beta: float = 0.0


@dataclass(frozen=True)
class AxisAttrs:
    """Concat, Softmax: one (non-negative) axis."""

    axis: int


@dataclass(frozen=True)
class SplitAttrs:
    axis: int
    sizes: tuple[int, ...]


@dataclass(frozen=True)
class SliceAttrs:
    """Per-dimension starts/steps, already clamped and normalised to the input's rank.

    `ends` (exclusive, clamped; -1 means "through index 0" for a negative step) makes the
    output shape derivable from the attrs alone; () means "take it from the output Value"."""

    starts: tuple[int, ...]
    steps: tuple[int, ...]
    ends: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReshapeAttrs:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class TransposeAttrs:
    perm: tuple[int, ...]


@dataclass(frozen=True)
class PadAttrs:
    """pads: per-dim (begin..., end...) as ONNX orders them; mode constant|reflect|edge."""

    pads: tuple[int, ...]
    mode: str = "constant"
    value: float = 0.0


@dataclass(frozen=True)
class ResizeAttrs:
    """NCHW resize of the two spatial dims; scales are output/input per spatial dim."""

    mode: str  # "nearest" | "linear"
    coordinate_mode: str = "half_pixel"  # ONNX coordinate_transformation_mode
    nearest_mode: str = "round_prefer_floor"
    scales: tuple[float, float] = (1.0, 1.0)
    cubic_coeff_a: float = -0.75


@dataclass(frozen=True)
class ReduceAttrs:
    axes: tuple[int, ...]
    keepdims: bool = True


@dataclass(frozen=True)
class Activation:
    """A fused activation: one of ops.ACTIVATIONS with its parameters."""

    op: Op
    alpha: float = 0.0
    beta: float = 0.0


@dataclass(frozen=True)
class Epilogue:
    """What a conv/dense/binary layer applies after its main computation, in this order:
    bias (a weight input of the layer), then residual add (the layer's last input), then act."""

    residual: bool = False
    act: Activation | None = None

    @property
    def empty(self) -> bool:
        return not self.residual and self.act is None
