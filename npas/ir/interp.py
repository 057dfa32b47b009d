"""A numpy reference interpreter of the IR: the oracle for frontend, pass and kernel tests.

Written for clarity and exactness, not speed: convolutions and matrix products accumulate in
float64 and round once to float32, so the result is closer to the exact value than any float32
kernel and differences against ONNX Runtime stay well inside the test tolerances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

import numpy as np

from npas.errors import ShapeError

from .attrs import (
    Activation,
    AxisAttrs,
    Conv2dAttrs,
    ConvTranspose2dAttrs,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    SliceAttrs,
    SplitAttrs,
    TransposeAttrs,
    UnaryAttrs,
)
from .graph import Graph, Layer
from .ops import CONV_LIKE, UNARY, Op
from .shapes import (
    conv_out_dim,
    conv_transpose_out_dim,
    pool_out_dim,
    resize_out_shape,
    slice_out_shape,
)

F32 = np.float32
Arrays = list[np.ndarray]


# ---- elementwise ----


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive argument never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def apply_unary(op: Op, x: np.ndarray, alpha: float = 0.0, beta: float = 0.0) -> np.ndarray:
    """One unary op (or fused activation) with its alpha/beta, float32 in and out."""
    x = np.asarray(x, dtype=F32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if op is Op.IDENTITY:
            y = x
        elif op is Op.RELU:
            y = np.maximum(x, F32(0))
        elif op is Op.CLIP:
            y = np.minimum(np.maximum(x, F32(alpha)), F32(beta))
        elif op is Op.LEAKY_RELU:
            y = np.where(x >= 0, x, x * F32(alpha))
        elif op is Op.ELU:
            y = np.where(x > 0, x, F32(alpha) * np.expm1(x))
        elif op is Op.HARDSWISH:
            y = x * np.clip(x / F32(6) + F32(0.5), 0, 1)
        elif op is Op.HARDSIGMOID:
            y = np.clip(F32(alpha) * x + F32(beta), 0, 1)
        elif op is Op.SIGMOID:
            y = _sigmoid(x)
        elif op is Op.TANH:
            y = np.tanh(x)
        elif op is Op.SILU:
            y = x * _sigmoid(x)
        elif op is Op.EXP:
            y = np.exp(x)
        elif op is Op.LOG:
            y = np.log(x)
        elif op is Op.SQRT:
            y = np.sqrt(x)
        elif op is Op.NEG:
            y = -x
        elif op is Op.ABS:
            y = np.abs(x)
        elif op is Op.RECIPROCAL:
            y = F32(1) / x
        else:
            raise ValueError(f"{op} is not a unary op")
    return np.asarray(y, dtype=F32)


def apply_activation(act: Activation | None, x: np.ndarray) -> np.ndarray:
    return x if act is None else apply_unary(act.op, x, act.alpha, act.beta)


_BINARY: dict[Op, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    Op.ADD: np.add,
    Op.SUB: np.subtract,
    Op.MUL: np.multiply,
    Op.DIV: np.divide,
    Op.MAX: np.maximum,
    Op.MIN: np.minimum,
    Op.POW: np.power,
    Op.PRELU: lambda x, s: np.where(x >= 0, x, x * s),
}


# ---- convolution ----


def _windows(
    xp: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dil: tuple[int, int],
    out: tuple[int, int],
) -> np.ndarray:
    """[N, C, kh, kw, OH, OW] view-copies of a padded NCHW tensor, one per kernel tap."""
    n, c = xp.shape[:2]
    cols = np.empty((n, c, kernel[0], kernel[1], out[0], out[1]), dtype=xp.dtype)
    for i in range(kernel[0]):
        r0 = i * dil[0]
        for j in range(kernel[1]):
            c0 = j * dil[1]
            cols[:, :, i, j] = xp[
                :, :,
                r0 : r0 + stride[0] * (out[0] - 1) + 1 : stride[0],
                c0 : c0 + stride[1] * (out[1] - 1) + 1 : stride[1],
            ]  # fmt: skip
    return cols


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: Conv2dAttrs) -> np.ndarray:
    n, _c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    g = a.groups
    pt, pl, pb, pr = a.pads
    oh = conv_out_dim(h, kh, a.stride[0], pt + pb, a.dilation[0])
    ow = conv_out_dim(wd, kw, a.stride[1], pl + pr, a.dilation[1])
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cols = _windows(xp, (kh, kw), a.stride, a.dilation, (oh, ow))
    # group-major im2col: [N, g, Cg*kh*kw, OH*OW] times W as [g, Fg, Cg*kh*kw]
    cols = cols.reshape(n, g, cg * kh * kw, oh * ow)
    wm = w.astype(np.float64).reshape(g, f // g, cg * kh * kw)
    y = np.matmul(wm[None], cols).reshape(n, f, oh, ow)
    if b is not None:
        y += b.astype(np.float64).reshape(1, f, 1, 1)
    return y.astype(F32)


def conv_transpose2d(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, a: ConvTranspose2dAttrs
) -> np.ndarray:
    n, c, h, wd = x.shape
    _, fg, kh, kw = w.shape
    g = a.groups
    cg = c // g
    sh, sw = a.stride
    dh, dw = a.dilation
    # every input pixel scatters a kh x kw patch: compute all patches with one matmul, then
    # add each tap into a full-size buffer and crop the pads off
    xm = x.astype(np.float64).reshape(n, g, cg, h * wd)
    wm = w.astype(np.float64).reshape(g, cg, fg * kh * kw).transpose(0, 2, 1)
    taps = np.matmul(wm[None], xm).reshape(n, g * fg, kh, kw, h, wd)
    full_h = conv_transpose_out_dim(h, kh, sh, dh, a.output_padding[0])
    full_w = conv_transpose_out_dim(wd, kw, sw, dw, a.output_padding[1])
    full = np.zeros((n, g * fg, full_h, full_w))
    for i in range(kh):
        for j in range(kw):
            full[
                :, :,
                i * dh : i * dh + sh * (h - 1) + 1 : sh,
                j * dw : j * dw + sw * (wd - 1) + 1 : sw,
            ] += taps[:, :, i, j]  # fmt: skip
    pt, pl, pb, pr = a.pads
    y = full[:, :, pt : full_h - pb, pl : full_w - pr]
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, 1, 1)
    return y.astype(F32)


def dense(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    y = x.astype(np.float64) @ w.astype(np.float64).T
    if b is not None:
        y += b.astype(np.float64)
    return y.astype(F32)


# ---- pooling ----


def _pool_padding(x: np.ndarray, a: PoolAttrs) -> tuple[int, int, tuple[tuple[int, int], ...]]:
    """Output size and the (begin, end) padding per spatial axis, the end padding extended so
    the last ceil_mode window fits."""
    out, pads = [], []
    for i in range(2):
        size, k, s, d = x.shape[2 + i], a.kernel[i], a.stride[i], a.dilation[i]
        o = pool_out_dim(size, k, s, a.pads[i], a.pads[i + 2], d, a.ceil_mode)
        need = (o - 1) * s + (k - 1) * d + 1
        pads.append((a.pads[i], max(a.pads[i + 2], need - size - a.pads[i])))
        out.append(o)
    return out[0], out[1], tuple(pads)


def _window_reduce(
    xp: np.ndarray, a: PoolAttrs, oh: int, ow: int, reduce: Callable[..., np.ndarray]
) -> np.ndarray:
    cols = _windows(xp, a.kernel, a.stride, a.dilation, (oh, ow))
    return reduce(cols, axis=(2, 3))


def maxpool(x: np.ndarray, a: PoolAttrs) -> np.ndarray:
    oh, ow, (ph, pw) = _pool_padding(x, a)
    xp = np.pad(x, ((0, 0), (0, 0), ph, pw), constant_values=-np.inf)
    return _window_reduce(xp, a, oh, ow, np.max).astype(F32)


def avgpool(x: np.ndarray, a: PoolAttrs) -> np.ndarray:
    oh, ow, (ph, pw) = _pool_padding(x, a)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), ph, pw))
    sums = _window_reduce(xp, a, oh, ow, np.sum)
    # the divisor counts the taps that land on real input, or with count_include_pad also on
    # the declared pads, but never on the extra end padding that ceil_mode adds
    ones = np.ones((1, 1, *x.shape[2:]))
    if a.count_include_pad:
        (t, l_, b, r) = a.pads
        ones = np.pad(ones, ((0, 0), (0, 0), (t, b), (l_, r)), constant_values=1.0)
        extra = ((0, ph[1] - b), (0, pw[1] - r))
    else:
        extra = (ph, pw)
    mask = np.pad(ones, ((0, 0), (0, 0), *extra))
    counts = _window_reduce(mask, a, oh, ow, np.sum)
    return (sums / counts).astype(F32)


# ---- data movement ----


def slice_array(x: np.ndarray, a: SliceAttrs, out_shape: tuple[int, ...]) -> np.ndarray:
    index = []
    for s, t, n in zip(a.starts, a.steps, out_shape, strict=False):
        stop = s + n * t
        index.append(slice(s, None if stop < 0 else stop, t))
    return x[tuple(index)]


def pad_array(x: np.ndarray, a: PadAttrs) -> np.ndarray:
    r = x.ndim
    begin, end = a.pads[:r], a.pads[r:]
    # numpy cannot pad by a negative amount: pad the positive part, then crop the negative part
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begin, end, strict=False)]
    if a.mode == "constant":
        y = np.pad(x, widths, mode="constant", constant_values=F32(a.value))
    else:
        y = np.pad(x, widths, mode=cast(Any, a.mode))  # reflect | edge | wrap, numpy's names
    crop = tuple(
        slice(max(-b, 0), y.shape[i] - max(-e, 0))
        for i, (b, e) in enumerate(zip(begin, end, strict=False))
    )
    return y[crop]


def _source_coords(out_len: int, in_len: int, scale: float, mode: str) -> np.ndarray:
    """x_original for every output index, in float32 the way ONNX Runtime computes it, so
    nearest-neighbour ties round the same way."""
    x = np.arange(out_len, dtype=F32)
    s = F32(scale)
    half = F32(0.5)
    if mode == "half_pixel":
        return (x + half) / s - half
    if mode == "pytorch_half_pixel":
        return (x + half) / s - half if out_len > 1 else np.zeros(out_len, F32)
    if mode == "align_corners":
        if out_len == 1:
            return np.zeros(out_len, F32)
        return x * F32(in_len - 1) / F32(out_len - 1)
    if mode == "asymmetric":
        return x / s
    if mode == "tf_half_pixel_for_nearest":
        return (x + half) / s
    if mode == "half_pixel_symmetric":
        adjustment = F32(out_len) / (s * F32(in_len))
        center = F32(in_len) / F32(2)
        offset = center * (F32(1) - adjustment)
        return offset + (x + half) / s - half
    raise ValueError(f"unknown coordinate_transformation_mode {mode!r}")


def _nearest_index(xo: np.ndarray, mode: str, in_len: int) -> np.ndarray:
    if mode == "round_prefer_floor":
        idx = np.where(xo == np.floor(xo) + F32(0.5), np.floor(xo), np.round(xo))
    elif mode == "round_prefer_ceil":
        idx = np.where(xo == np.floor(xo) + F32(0.5), np.ceil(xo), np.round(xo))
    elif mode == "floor":
        idx = np.floor(xo)
    elif mode == "ceil":
        idx = np.ceil(xo)
    else:
        raise ValueError(f"unknown nearest_mode {mode!r}")
    return np.clip(idx.astype(np.int64), 0, in_len - 1)


def resize(x: np.ndarray, a: ResizeAttrs, out_shape: tuple[int, ...]) -> np.ndarray:
    y = x.astype(np.float64) if a.mode == "linear" else x
    # separable: resample H, then W
    for i, axis in enumerate((2, 3)):
        in_len, out_len = x.shape[axis], out_shape[axis]
        xo = _source_coords(out_len, in_len, a.scales[i], a.coordinate_mode)
        if a.mode == "nearest":
            y = np.take(y, _nearest_index(xo, a.nearest_mode, in_len), axis=axis)
            continue
        xc = np.clip(xo, F32(0), F32(in_len - 1))
        lo = np.minimum(np.floor(xc).astype(np.int64), in_len - 1)
        hi = np.minimum(lo + 1, in_len - 1)
        frac = (xc - lo).astype(np.float64)
        shape = [1] * y.ndim
        shape[axis] = out_len
        frac = frac.reshape(shape)
        y = np.take(y, lo, axis=axis) * (1 - frac) + np.take(y, hi, axis=axis) * frac
    return y.astype(F32)


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x.astype(np.float64)
    z = np.exp(z - z.max(axis=axis, keepdims=True))
    return (z / z.sum(axis=axis, keepdims=True)).astype(F32)


# ---- layers and graphs ----

_REDUCERS = {Op.REDUCE_MEAN: np.mean, Op.REDUCE_MAX: np.max, Op.REDUCE_SUM: np.sum}


def run_layer(
    layer: Layer, args: Arrays, out_shapes: list[tuple[int, ...]] | None = None
) -> Arrays:
    """Evaluate one layer on its input arrays (in `layer.inputs` order), epilogue included.
    `out_shapes` is only needed for a SLICE without ends (its shape is not in the attrs)."""
    op, a = layer.op, layer.attrs
    x = args[0]
    if op in CONV_LIKE:
        w, b = args[1], args[2]
        if layer.sparsity is not None and layer.sparsity.mask is not None:
            if layer.sparsity.mask.shape == w.shape:
                w = w * layer.sparsity.mask
        if op is Op.CONV2D:
            y = conv2d(x, w, b, a)
        elif op is Op.CONV_TRANSPOSE2D:
            y = conv_transpose2d(x, w, b, a)
        else:
            y = dense(x, w, b)
        if layer.epilogue.residual:
            y = (y + args[-1]).astype(F32)
        return [apply_activation(layer.epilogue.act, y)]
    if op in _BINARY:
        y = np.asarray(_BINARY[op](x.astype(F32), args[1].astype(F32)), dtype=F32)
        return [apply_activation(layer.epilogue.act, y)]
    if op in UNARY:
        alpha = a.alpha if isinstance(a, UnaryAttrs) else 0.0
        beta = a.beta if isinstance(a, UnaryAttrs) else 0.0
        return [apply_unary(op, x, alpha, beta)]
    if op is Op.MATMUL:
        return [np.matmul(x.astype(np.float64), args[1].astype(np.float64)).astype(F32)]
    if op is Op.MAXPOOL:
        return [maxpool(x, a)]
    if op is Op.AVGPOOL:
        return [avgpool(x, a)]
    if op is Op.GLOBAL_AVGPOOL:
        axes = tuple(range(2, x.ndim))
        return [x.astype(np.float64).mean(axis=axes, keepdims=True).astype(F32)]
    if op is Op.GLOBAL_MAXPOOL:
        return [x.max(axis=tuple(range(2, x.ndim)), keepdims=True)]
    if op is Op.CHANNEL_AFFINE:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return [(x * args[1].reshape(shape) + args[2].reshape(shape)).astype(F32)]
    if op is Op.CONCAT:
        assert isinstance(a, AxisAttrs)
        return [np.concatenate(args, axis=a.axis)]
    if op is Op.SPLIT:
        assert isinstance(a, SplitAttrs)
        cuts = np.cumsum(a.sizes)[:-1]
        return list(np.split(x, cuts, axis=a.axis))
    if op is Op.SLICE:
        assert isinstance(a, SliceAttrs)
        if a.ends:
            shape = slice_out_shape(a)
        elif out_shapes is not None:
            shape = out_shapes[0]
        else:
            raise ShapeError(f"layer {layer.name!r}: slice without ends needs its output shape")
        return [slice_array(x, a, shape)]
    if op is Op.RESHAPE:
        assert isinstance(a, ReshapeAttrs)
        return [x.reshape(a.shape)]
    if op is Op.TRANSPOSE:
        assert isinstance(a, TransposeAttrs)
        return [np.array(x.transpose(a.perm), order="C")]
    if op is Op.PAD:
        return [pad_array(x, a)]
    if op is Op.RESIZE:
        assert isinstance(a, ResizeAttrs)
        return [resize(x, a, resize_out_shape(x.shape, a))]
    if op is Op.SOFTMAX:
        return [softmax(x, a.axis)]
    if op in (Op.REDUCE_MEAN, Op.REDUCE_MAX, Op.REDUCE_SUM):
        assert isinstance(a, ReduceAttrs)
        fn = cast(Callable[..., Any], _REDUCERS[op])
        return [np.asarray(fn(x.astype(np.float64), axis=a.axes, keepdims=a.keepdims), F32)]
    raise NotImplementedError(f"interp: no rule for {op}")


def run_graph(
    graph: Graph, feeds: Mapping[str, np.ndarray], keep_all: bool = False
) -> dict[str, np.ndarray]:
    """Run `graph` on `feeds` (graph input name -> array). Returns the graph outputs, or every
    value computed (inputs and constants included) with keep_all."""
    env: dict[str, np.ndarray] = {}
    for name in graph.inputs:
        if name not in feeds:
            raise ShapeError(f"missing input {name!r}; the graph takes {graph.inputs}")
        arr = np.asarray(feeds[name], dtype=F32)
        if arr.shape != graph.shape(name):
            raise ShapeError(
                f"input {name!r} has shape {list(arr.shape)}, the graph expects "
                f"{list(graph.shape(name))}"
            )
        env[name] = arr
    for layer in graph.layers:
        args = []
        for name in layer.inputs:
            if name in env:
                args.append(env[name])
            else:
                data = graph.values[name].data
                if data is None:
                    raise ValueError(f"layer {layer.name!r}: input {name!r} not computed yet")
                args.append(np.asarray(data, dtype=F32))
        shapes = [graph.shape(o) for o in layer.outputs if o in graph.values]
        outs = run_layer(layer, args, shapes or None)
        for name, arr in zip(layer.outputs, outs, strict=False):
            env[name] = arr
    if keep_all:
        for name, v in graph.values.items():
            if v.data is not None and name not in env:
                env[name] = np.asarray(v.data, dtype=F32)
        return env
    result = {}
    for name in graph.outputs:
        if name in env:
            result[name] = env[name]
        else:
            data = graph.values[name].data
            assert data is not None, f"output {name!r} is never computed"
            result[name] = np.asarray(data, dtype=F32)
    return result
