"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (1-D pools lifted to 2-D)."""

from __future__ import annotations

from npas.ir import NoAttrs, Op, PoolAttrs

from .common import check_spatial_rank, ints, lift_pads, lift_pair, reshape, spatial_attrs
from .context import Context, Node


def _pool(cx: Context, node: Node, op: Op, count_include_pad: bool) -> None:
    x = node.inputs[0]
    xs = cx.shape(x)
    check_spatial_rank(node, len(xs))
    kernel = ints(node.attr("kernel_shape"))
    if len(kernel) != len(xs) - 2:
        raise node.error(f"kernel_shape {kernel} does not match the input rank {len(xs)}")
    stride, dilation, pads = spatial_attrs(node, xs[2:], kernel)
    attrs = PoolAttrs(
        kernel=lift_pair(kernel, 1),
        stride=lift_pair(stride, 1),
        pads=lift_pads(pads),
        dilation=lift_pair(dilation, 1),
        ceil_mode=bool(node.attr("ceil_mode", 0)),
        count_include_pad=count_include_pad,
    )
    xin = cx.act(x)
    if len(xs) == 3:
        x4 = reshape(cx, node, xin, (xs[0], xs[1], 1, xs[2]), "to2d")
        (y,) = cx.emit(node, op, [x4], None, attrs)
        ys = cx.graph.shape(y)
        reshape(cx, node, y, (ys[0], ys[1], ys[3]), "to1d", node.outputs[0])
        return
    cx.emit(node, op, [xin], node.outputs[:1], attrs)


def max_pool(cx: Context, node: Node) -> None:
    if len(node.outputs) > 1 and node.outputs[1] and node.outputs[1] in cx.used:
        raise node.unsupported("the Indices output of MaxPool is not supported")
    _pool(cx, node, Op.MAXPOOL, False)


def average_pool(cx: Context, node: Node) -> None:
    _pool(cx, node, Op.AVGPOOL, bool(node.attr("count_include_pad", 0)))


def _global(op: Op):  # type: ignore[no-untyped-def]
    def convert(cx: Context, node: Node) -> None:
        xs = cx.shape(node.inputs[0])
        if len(xs) < 3:
            raise node.error(f"input must be N, C, spatial...; got {list(xs)}")
        cx.emit(node, op, [cx.act(node.inputs[0])], node.outputs, NoAttrs())

    convert.__name__ = f"convert_{op.value}"
    return convert


global_average_pool = _global(Op.GLOBAL_AVGPOOL)
global_max_pool = _global(Op.GLOBAL_MAXPOOL)
