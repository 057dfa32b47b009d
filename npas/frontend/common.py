"""Helpers shared by the converters: axes, spatial attributes, auto_pad, 1-D lifting."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from npas.ir import Op, ReshapeAttrs
from npas.ir.attrs import Pads4, Pair, WindowAttrs

from .context import Context, Node


def norm_axis(node: Node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise node.error(f"axis {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def norm_axes(node: Node, axes: Sequence[int], rank: int) -> list[int]:
    out = [norm_axis(node, int(a), rank) for a in axes]
    if len(set(out)) != len(out):
        raise node.error(f"axes {list(axes)} repeat an axis")
    return out


def ints(arr: np.ndarray | Sequence[int] | None) -> list[int]:
    return [] if arr is None else [int(v) for v in np.asarray(arr).reshape(-1)]


def axes_attr(cx: Context, node: Node) -> list[int] | None:
    """The `axes` attribute (opsets before axes became an input), or None."""
    axes = node.attr("axes")
    return None if axes is None else ints(axes)


def axes_input(cx: Context, node: Node) -> list[int] | None:
    """The optional constant `axes` input (input 1), or None."""
    axes = cx.require_const(node, 1, "axes")
    return None if axes is None else ints(axes)


def auto_pads(
    node: Node,
    sizes: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> list[int]:
    """Explicit pads (begin..., end...) for a conv/pool node from `pads` or `auto_pad`."""
    n = len(sizes)
    mode = node.attr("auto_pad", "NOTSET")
    if mode == "NOTSET":
        pads = ints(node.attr("pads")) or [0] * (2 * n)
        if len(pads) != 2 * n:
            raise node.error(f"pads {pads} must have {2 * n} entries")
        return pads
    if mode == "VALID":
        return [0] * (2 * n)
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.unsupported(f"auto_pad={mode!r}")
    begin, end = [], []
    for size, k, s, d in zip(sizes, kernel, stride, dilation, strict=False):
        out = math.ceil(size / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        # SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return begin + end


def spatial_attrs(
    node: Node, sizes: Sequence[int], kernel: Sequence[int]
) -> tuple[list[int], list[int], list[int]]:
    """(strides, dilations, pads) of a conv/pool node with ONNX defaults filled in."""
    n = len(sizes)
    stride = ints(node.attr("strides")) or [1] * n
    dilation = ints(node.attr("dilations")) or [1] * n
    if len(stride) != n or len(dilation) != n:
        raise node.error(f"strides {stride} / dilations {dilation} must have {n} entries")
    return stride, dilation, auto_pads(node, sizes, kernel, stride, dilation)


def check_spatial_rank(node: Node, rank: int) -> None:
    """Conv and pooling nodes compile in 1-D (lifted to 2-D) and 2-D only."""
    if rank == 5:
        raise node.unsupported(
            "3-D (volumetric, input rank 5) convolution/pooling is not supported; npas compiles "
            "1-D and 2-D CNNs"
        )
    if rank not in (3, 4):
        raise node.unsupported(f"input rank {rank}; expected N, C, [H,] W")


def lift_pair(vals: Sequence[int], fill: int) -> tuple[int, int]:
    """A 1-D spatial attribute as the 2-D one of an H=1 image."""
    return (fill, vals[0]) if len(vals) == 1 else (vals[0], vals[1])


def lift_pads(pads: Sequence[int]) -> Pads4:
    """ONNX pads (begin..., end...) as IR (top, left, bottom, right)."""
    if len(pads) == 2:
        return (0, pads[0], 0, pads[1])
    return (pads[0], pads[1], pads[2], pads[3])


def lift_window(
    kernel: Sequence[int], stride: Sequence[int], pads: Sequence[int], dilation: Sequence[int]
) -> tuple[Pair, Pair, Pads4, Pair]:
    """A 1-D or 2-D node's window as the leading fields of the IR's WindowAttrs (kernel,
    stride, pads, dilation), ready to pass positionally to a WindowAttrs subclass."""
    return lift_pair(kernel, 1), lift_pair(stride, 1), lift_pads(pads), lift_pair(dilation, 1)


def emit_lifted(
    cx: Context, node: Node, op: Op, x: str, params: Sequence[str], attrs: WindowAttrs
) -> None:
    """Emit the 2-D conv/pool layer `op` on IR value `x` and weight/bias `params`. A 1-D
    (N, C, W) input runs as an H=1 image between two reshapes (params already lifted)."""
    xs = cx.graph.shape(x)
    if len(xs) != 3:
        cx.emit(node, op, [x, *params], node.outputs[:1], attrs)
        return
    x4 = reshape(cx, node, x, (xs[0], xs[1], 1, xs[2]), "to2d")
    (y,) = cx.emit(node, op, [x4, *params], None, attrs)
    ys = cx.graph.shape(y)
    reshape(cx, node, y, (ys[0], ys[1], ys[3]), "to1d", node.outputs[0])


def reshape(cx: Context, node: Node, x: str, shape: Sequence[int], suffix: str,
            output: str | None = None) -> str:  # fmt: skip
    """RESHAPE helper layer; returns the new value (or `x` when the shape already matches)."""
    shape = tuple(int(d) for d in shape)
    if cx.graph.shape(x) == shape and output is None:
        return x
    outs = None if output is None else [output]
    return cx.emit(node, Op.RESHAPE, [x], outs, ReshapeAttrs(shape), suffix=suffix)[0]
