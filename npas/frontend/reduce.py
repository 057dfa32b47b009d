"""Softmax (opset 11's 2-D coercion vs 13's single axis) and ReduceMean/Max/Sum (axes as an
attribute, or as an input from opset 13 for ReduceSum and 18 for the others)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from npas.ir import AxisAttrs, Op, ReduceAttrs

from .common import axes_attr, axes_input, norm_axes, norm_axis, reshape
from .context import Context, Converter, Folder, Node


def softmax11(cx: Context, node: Node) -> None:
    """Opset 1-12: the input is viewed as 2-D [prod(dims < axis), prod(dims >= axis)] and
    softmax runs over the second dim, i.e. over all of the trailing dims at once."""
    xs = cx.shape(node.inputs[0])
    axis = norm_axis(node, int(node.attr("axis", 1)), len(xs))
    x = cx.act(node.inputs[0])
    if axis == len(xs) - 1:
        cx.emit(node, Op.SOFTMAX, [x], node.outputs, AxisAttrs(axis))
        return
    x2 = reshape(cx, node, x, (math.prod(xs[:axis]), math.prod(xs[axis:])), "to2d")
    (y,) = cx.emit(node, Op.SOFTMAX, [x2], None, AxisAttrs(1))
    reshape(cx, node, y, xs, "from2d", node.outputs[0])


def softmax13(cx: Context, node: Node) -> None:
    xs = cx.shape(node.inputs[0])
    axis = norm_axis(node, int(node.attr("axis", -1)), len(xs))
    cx.emit(node, Op.SOFTMAX, [cx.act(node.inputs[0])], node.outputs, AxisAttrs(axis))


AxesGetter = Callable[[Context, Node], list[int] | None]


def _reduce_axes(cx: Context, node: Node, get: AxesGetter) -> list[int] | None:
    """Sorted reduced axes; None means "no reduction" (noop_with_empty_axes)."""
    rank = len(cx.shape(node.inputs[0]))
    axes = get(cx, node)
    if not axes:
        if int(node.attr("noop_with_empty_axes", 0)):
            return None
        return list(range(rank))
    return sorted(norm_axes(node, axes, rank))


def _reduce(op: Op, get: AxesGetter) -> Converter:
    def convert(cx: Context, node: Node) -> None:
        axes = _reduce_axes(cx, node, get)
        x = cx.act(node.inputs[0])
        if axes is None:
            cx.bind(node.outputs[0], x)
            return
        keep = bool(node.attr("keepdims", 1))
        cx.emit(node, op, [x], node.outputs, ReduceAttrs(tuple(axes), keep))

    convert.__name__ = f"convert_{op.value}"
    return convert


def _fold_reduce(fn: Callable[..., np.ndarray], get: AxesGetter) -> Folder:
    def fold(cx: Context, node: Node) -> list[np.ndarray]:
        x = cx.const(node.inputs[0])
        axes = _reduce_axes(cx, node, get)
        if axes is None:
            return [x]
        keep = bool(node.attr("keepdims", 1))
        return [np.asarray(fn(x, axis=tuple(axes), keepdims=keep)).astype(x.dtype)]

    return fold


reduce_mean11 = _reduce(Op.REDUCE_MEAN, axes_attr)
reduce_mean18 = _reduce(Op.REDUCE_MEAN, axes_input)
reduce_max11 = _reduce(Op.REDUCE_MAX, axes_attr)
reduce_max18 = _reduce(Op.REDUCE_MAX, axes_input)
reduce_sum11 = _reduce(Op.REDUCE_SUM, axes_attr)
reduce_sum13 = _reduce(Op.REDUCE_SUM, axes_input)

fold_reduce_mean11 = _fold_reduce(np.mean, axes_attr)
fold_reduce_mean18 = _fold_reduce(np.mean, axes_input)
fold_reduce_max11 = _fold_reduce(np.max, axes_attr)
fold_reduce_max18 = _fold_reduce(np.max, axes_input)
fold_reduce_min11 = _fold_reduce(np.min, axes_attr)
fold_reduce_min18 = _fold_reduce(np.min, axes_input)
fold_reduce_sum11 = _fold_reduce(np.sum, axes_attr)
fold_reduce_sum13 = _fold_reduce(np.sum, axes_input)
fold_reduce_prod11 = _fold_reduce(np.prod, axes_attr)
fold_reduce_prod18 = _fold_reduce(np.prod, axes_input)
