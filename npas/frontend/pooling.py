"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool (1-D pools lifted to 2-D)."""

from __future__ import annotations

from npas.ir import NoAttrs, Op, PoolAttrs

from .common import check_spatial_rank, emit_lifted, ints, lift_window, spatial_attrs
from .context import Context, Converter, Node


def _pool(cx: Context, node: Node, op: Op, count_include_pad: bool) -> None:
    x = node.inputs[0]
    xs = cx.shape(x)
    check_spatial_rank(node, len(xs))
    kernel = ints(node.attr("kernel_shape"))
    if len(kernel) != len(xs) - 2:
        raise node.error(f"kernel_shape {kernel} does not match the input rank {len(xs)}")
    stride, dilation, pads = spatial_attrs(node, xs[2:], kernel)
    attrs = PoolAttrs(
        *lift_window(kernel, stride, pads, dilation),
        ceil_mode=bool(node.attr("ceil_mode", 0)),
        count_include_pad=count_include_pad,
    )
    emit_lifted(cx, node, op, cx.act(x), [], attrs)


def max_pool(cx: Context, node: Node) -> None:
    if len(node.outputs) > 1 and node.outputs[1] and node.outputs[1] in cx.used:
        raise node.unsupported("the Indices output of MaxPool is not supported")
    _pool(cx, node, Op.MAXPOOL, False)


def average_pool(cx: Context, node: Node) -> None:
    _pool(cx, node, Op.AVGPOOL, bool(node.attr("count_include_pad", 0)))


def _global(op: Op) -> Converter:
    def convert(cx: Context, node: Node) -> None:
        xs = cx.shape(node.inputs[0])
        if len(xs) < 3:
            raise node.error(f"input must be N, C, spatial...; got {list(xs)}")
        cx.emit(node, op, [cx.act(node.inputs[0])], node.outputs, NoAttrs())

    convert.__name__ = f"convert_{op.value}"
    return convert


global_average_pool = _global(Op.GLOBAL_AVGPOOL)
global_max_pool = _global(Op.GLOBAL_MAXPOOL)
