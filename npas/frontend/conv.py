"""Conv, ConvTranspose, Gemm, MatMul and BatchNormalization: the layers with weights."""

from __future__ import annotations

import numpy as np

from npas.ir import Conv2dAttrs, ConvTranspose2dAttrs, Op, TransposeAttrs
from npas.ir.shapes import conv_transpose_out_dim

from .common import (
    check_spatial_rank,
    emit_lifted,
    ints,
    lift_pair,
    lift_window,
    reshape,
    spatial_attrs,
)
from .context import Context, Node

F32 = np.float32


def _weight(cx: Context, node: Node, w: np.ndarray, lift: bool) -> str:
    """IR constant for the weight (input 1): the initializer itself for a 2-D node (keeps its
    ONNX name); for a 1-D node a new constant, named after the node, with an H=1 kernel."""
    if not lift:
        return cx.act(node.inputs[1])
    return cx.add_const(f"{node.name}/weight", w.reshape(*w.shape[:2], 1, w.shape[2]))


def _bias(cx: Context, node: Node, i: int, n: int) -> str:
    if node.input(i) is None:
        return cx.add_const(f"{node.name}/bias", np.zeros(n, F32))
    b = cx.require_const(node, i, "bias")
    assert b is not None
    if b.shape != (n,):
        raise node.error(f"bias has shape {list(b.shape)}, expected [{n}]")
    return cx.act(node.inputs[i])


def _input_and_weight(cx: Context, node: Node) -> tuple[str, tuple[int, ...], np.ndarray]:
    """A conv node's input (name and shape, rank checked) and its constant weight."""
    x = node.inputs[0]
    xs = cx.shape(x)
    check_spatial_rank(node, len(xs))
    w = cx.require_const(node, 1, "weight")
    assert w is not None
    return x, xs, w


def conv(cx: Context, node: Node) -> None:
    x, xs, w = _input_and_weight(cx, node)
    if w.ndim != len(xs):
        raise node.error(f"weight {list(w.shape)} does not match the input rank {len(xs)}")
    kernel = ints(node.attr("kernel_shape")) or list(w.shape[2:])
    if kernel != list(w.shape[2:]):
        raise node.error(f"kernel_shape {kernel} != weight kernel {list(w.shape[2:])}")
    stride, dilation, pads = spatial_attrs(node, xs[2:], kernel)
    attrs = Conv2dAttrs(
        *lift_window(kernel, stride, pads, dilation), groups=int(node.attr("group", 1))
    )
    bias = _bias(cx, node, 2, w.shape[0])
    xin = cx.act(x)
    wid = _weight(cx, node, w, lift=len(xs) == 3)
    emit_lifted(cx, node, Op.CONV2D, xin, [wid, bias], attrs)


def conv_transpose(cx: Context, node: Node) -> None:
    x, xs, w = _input_and_weight(cx, node)
    n = len(xs) - 2
    group = int(node.attr("group", 1))
    kernel = ints(node.attr("kernel_shape")) or list(w.shape[2:])
    stride = ints(node.attr("strides")) or [1] * n
    dilation = ints(node.attr("dilations")) or [1] * n
    out_pad = ints(node.attr("output_padding")) or [0] * n
    out_shape = ints(node.attr("output_shape"))
    auto_pad = node.attr("auto_pad", "NOTSET")
    full = [
        conv_transpose_out_dim(xs[2 + i], kernel[i], stride[i], dilation[i], out_pad[i])
        for i in range(n)
    ]
    if len(out_shape) == n + 2:  # some exporters give the whole NCHW shape
        out_shape = out_shape[2:]
    if not out_shape and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out_shape = [xs[2 + i] * stride[i] for i in range(n)]
    if out_shape:
        begin, end = [], []
        for i in range(n):
            total = full[i] - out_shape[i]
            if total < 0:  # a larger output than the full scatter: the tail is bias only
                out_pad[i] -= total
                total = 0
            # as the operator text says: the odd pixel goes to the end for SAME_UPPER, to the
            # beginning otherwise
            small, big = total // 2, total - total // 2
            begin.append(small if auto_pad == "SAME_UPPER" else big)
            end.append(big if auto_pad == "SAME_UPPER" else small)
        pads = begin + end
    elif auto_pad == "VALID":
        pads = [0] * (2 * n)
    else:
        pads = ints(node.attr("pads")) or [0] * (2 * n)
    attrs = ConvTranspose2dAttrs(
        *lift_window(kernel, stride, pads, dilation),
        groups=group,
        output_padding=lift_pair(out_pad, 0),
    )
    bias = _bias(cx, node, 2, w.shape[1] * group)
    xin = cx.act(x)
    wid = _weight(cx, node, w, lift=n == 1)
    emit_lifted(cx, node, Op.CONV_TRANSPOSE2D, xin, [wid, bias], attrs)


def _add_scaled(cx: Context, node: Node, y: str, c: str, beta: float, out: str) -> None:
    """out = y + beta * c, c an activation or a constant."""
    if cx.is_const(c):
        cid = cx.add_const(f"{node.name}/C", beta * cx.const(c).astype(F32))
    else:
        cid = cx.act(c)
        if beta != 1.0:
            beta_id = cx.add_const(f"{node.name}/beta", np.array(beta, F32))
            (cid,) = cx.emit(node, Op.MUL, [cid, beta_id], None, suffix="beta")
    cx.emit(node, Op.ADD, [y, cid], [out], suffix="add_c")


def gemm(cx: Context, node: Node) -> None:
    a, b, c = node.inputs[0], node.inputs[1], node.input(2)
    alpha = float(node.attr("alpha", 1.0))
    beta = float(node.attr("beta", 1.0))
    trans_a, trans_b = int(node.attr("transA", 0)), int(node.attr("transB", 0))
    x = cx.act(a)
    if trans_a:
        (x,) = cx.emit(node, Op.TRANSPOSE, [x], None, TransposeAttrs((1, 0)), suffix="transA")
    if not cx.is_const(b):
        bid = cx.act(b)
        if trans_b:
            (bid,) = cx.emit(
                node, Op.TRANSPOSE, [bid], None, TransposeAttrs((1, 0)), suffix="transB"
            )
        last = c is None and alpha == 1.0
        (y,) = cx.emit(node, Op.MATMUL, [x, bid], node.outputs if last else None)
        if alpha != 1.0:
            alpha_id = cx.add_const(f"{node.name}/alpha", np.array(alpha, F32))
            (y,) = cx.emit(
                node, Op.MUL, [y, alpha_id], node.outputs if c is None else None, suffix="alpha"
            )
        if c is not None:
            _add_scaled(cx, node, y, c, beta, node.outputs[0])
        return
    bw = cx.const(b).astype(F32)
    w = (bw if trans_b else bw.T) * F32(alpha)  # DENSE wants W[F, C]
    f = w.shape[0]
    wid = cx.act(b) if trans_b and alpha == 1.0 else cx.add_const(f"{node.name}/W", w)
    bias, rest = np.zeros(f, F32), None
    if c is not None:
        cc = cx.const(c) if cx.is_const(c) else None
        row = cc is not None and cc.ndim <= 2 and cc.size in (1, f)
        if cc is not None and row and (cc.ndim < 2 or cc.shape[0] == 1):
            bias = np.broadcast_to(cc.reshape(-1).astype(F32) * F32(beta), (f,)).copy()
        else:  # a per-row or run-time C cannot become the bias vector
            rest = c
    bid = cx.add_const(f"{node.name}/bias", bias)
    (y,) = cx.emit(node, Op.DENSE, [x, wid, bid], node.outputs if rest is None else None)
    if rest is not None:
        _add_scaled(cx, node, y, rest, beta, node.outputs[0])


def matmul(cx: Context, node: Node) -> None:
    a, b = node.inputs[0], node.inputs[1]
    a_shape = cx.shape(a)
    if cx.is_const(b) and cx.const(b).ndim == 2 and len(a_shape) >= 2 and not cx.is_const(a):
        w = cx.const(b).astype(F32).T
        wid = cx.add_const(f"{node.name}/W", w)
        bid = cx.add_const(f"{node.name}/bias", np.zeros(w.shape[0], F32))
        x = cx.act(a)
        if len(a_shape) == 2:
            cx.emit(node, Op.DENSE, [x, wid, bid], node.outputs)
            return
        # batched x @ W: DENSE takes [M, C], so fold the leading dims into M and back
        m = int(np.prod(a_shape[:-1]))
        x2 = reshape(cx, node, x, (m, a_shape[-1]), "to2d")
        (y,) = cx.emit(node, Op.DENSE, [x2, wid, bid], None)
        reshape(cx, node, y, (*a_shape[:-1], w.shape[0]), "from2d", node.outputs[0])
        return
    cx.emit(node, Op.MATMUL, [cx.act(a), cx.act(b)], node.outputs)


def batch_norm(cx: Context, node: Node) -> None:
    if int(node.attr("training_mode", 0)):
        raise node.unsupported("training_mode=1; export the model in eval mode")
    for extra in node.outputs[1:]:
        if extra and extra in cx.used:
            raise node.unsupported("running mean/var outputs are only produced in training")
    params = []
    for i, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        p = cx.require_const(node, i, what)
        assert p is not None
        params.append(p.astype(np.float64).reshape(-1))
    scale, shift, mean, var = params
    eps = float(node.attr("epsilon", 1e-5))
    s = scale / np.sqrt(var + eps)
    t = shift - mean * s
    sid = cx.add_const(f"{node.name}/scale", s.astype(F32))
    tid = cx.add_const(f"{node.name}/shift", t.astype(F32))
    cx.emit(node, Op.CHANNEL_AFFINE, [cx.act(node.inputs[0]), sid, tid], node.outputs[:1])
