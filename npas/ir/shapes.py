"""Output-shape inference for every Op, from input shapes and attrs.

The frontend uses it to give each new Value its shape; the verifier re-derives every shape with it
to catch a pass that rewrote a layer inconsistently. Errors are ShapeError naming the layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from npas.errors import ShapeError

from .attrs import (
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
)
from .graph import Graph, Layer
from .ops import BINARY, UNARY, Op

Shape = tuple[int, ...]


def _fail(layer: Layer, msg: str) -> ShapeError:
    return ShapeError(f"{layer.where}: {msg}")


def conv_out_dim(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution along one axis (pad = begin + end)."""
    return (size + pad - ((kernel - 1) * dilation + 1)) // stride + 1


def conv_transpose_out_dim(
    size: int, kernel: int, stride: int, dilation: int, output_padding: int
) -> int:
    """Length of a transposed convolution's full scatter along one axis, before the pads are
    cropped off."""
    return stride * (size - 1) + output_padding + (kernel - 1) * dilation + 1


def pool_out_dim(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int, ceil: bool
) -> int:
    """Output length of a pooling window along one axis, with ONNX's ceil_mode rule: with
    ceil_mode a window that would start inside the end padding is dropped."""
    span = size + pad_begin + pad_end - ((kernel - 1) * dilation + 1)
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def resize_out_dim(size: int, scale: float) -> int:
    """floor(size * scale), tolerant of the float error of a scale computed as out/in."""
    return math.floor(size * scale + 1e-5)


def slice_len(start: int, end: int, step: int) -> int:
    if step > 0:
        return max(0, -(-(end - start) // step))
    return max(0, -(-(start - end) // -step))


def slice_out_shape(a: SliceAttrs) -> Shape:
    """Output shape of a SLICE whose attrs carry its ends."""
    return tuple(slice_len(s, e, t) for s, e, t in zip(a.starts, a.ends, a.steps, strict=False))


def resize_out_shape(x: Sequence[int], a: ResizeAttrs) -> Shape:
    """Output shape of an NCHW RESIZE."""
    return (x[0], x[1], *(resize_out_dim(x[2 + i], a.scales[i]) for i in range(2)))


def broadcast(layer: Layer, *shapes: Shape) -> Shape:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*shapes))
    except ValueError:
        raise _fail(layer, f"shapes {list(shapes)} do not broadcast") from None


def _rank(layer: Layer, shape: Shape, rank: int, what: str = "input") -> None:
    if len(shape) != rank:
        raise _fail(layer, f"{what} must have rank {rank}, got shape {list(shape)}")


def _conv_operands(layer: Layer, ins: list[Shape]) -> tuple[Shape, Shape]:
    """The NCHW input and the 4-D weight of a convolution, ranks checked."""
    x, w = ins[0], ins[1]
    _rank(layer, x, 4)
    _rank(layer, w, 4, "weight")
    return x, w


# ---- per-op rules: (layer, input shapes, graph) -> output shapes ----


def _conv2d(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: Conv2dAttrs = layer.attrs
    x, w = _conv_operands(layer, ins)
    n, c, h, wd = x
    f, cg, kh, kw = w
    if (kh, kw) != tuple(a.kernel):
        raise _fail(layer, f"kernel attr {a.kernel} != weight kernel {(kh, kw)}")
    if cg * a.groups != c or f % a.groups:
        raise _fail(layer, f"weight {list(w)} with groups={a.groups} does not fit {c} channels")
    oh = conv_out_dim(h, kh, a.stride[0], a.pads[0] + a.pads[2], a.dilation[0])
    ow = conv_out_dim(wd, kw, a.stride[1], a.pads[1] + a.pads[3], a.dilation[1])
    if oh < 1 or ow < 1:
        raise _fail(layer, f"output would be empty for input {list(x)}")
    return [(n, f, oh, ow)]


def _conv_transpose2d(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: ConvTranspose2dAttrs = layer.attrs
    x, w = _conv_operands(layer, ins)
    n, c, h, wd = x
    cw, fg, kh, kw = w
    if cw != c or c % a.groups:
        raise _fail(layer, f"weight {list(w)} with groups={a.groups} does not fit {c} channels")
    dims = []
    for i, (size, k) in enumerate(((h, kh), (wd, kw))):
        full = conv_transpose_out_dim(size, k, a.stride[i], a.dilation[i], a.output_padding[i])
        dims.append(full - a.pads[i] - a.pads[i + 2])
    if min(dims) < 1:
        raise _fail(layer, f"output would be empty for input {list(x)}")
    return [(n, fg * a.groups, dims[0], dims[1])]


def _dense(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    x, w = ins[0], ins[1]
    _rank(layer, w, 2, "weight")
    if not x or x[-1] != w[1]:
        raise _fail(layer, f"input {list(x)} does not match weight [F, C] = {list(w)}")
    return [(*x[:-1], w[0])]


def _matmul(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a, b = ins[0], ins[1]
    if not a or not b:
        raise _fail(layer, "matmul operands must have rank >= 1")
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise _fail(layer, f"inner dims differ: {list(a)} @ {list(b)}")
    batch = broadcast(layer, a2[:-2], b2[:-2])
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return [out]


def _pool(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: PoolAttrs = layer.attrs
    x = ins[0]
    _rank(layer, x, 4)
    dims = [
        pool_out_dim(
            x[2 + i], a.kernel[i], a.stride[i], a.pads[i], a.pads[i + 2], a.dilation[i],
            a.ceil_mode,
        )
        for i in range(2)
    ]  # fmt: skip
    if min(dims) < 1:
        raise _fail(layer, f"output would be empty for input {list(x)}")
    return [(x[0], x[1], dims[0], dims[1])]


def _global_pool(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    x = ins[0]
    if len(x) < 3:
        raise _fail(layer, f"input must be N, C, spatial...; got {list(x)}")
    return [(x[0], x[1], *([1] * (len(x) - 2)))]


def _same(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    return [ins[0]]


def _binary(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    out = broadcast(layer, ins[0], ins[1])
    if layer.op is Op.PRELU and out != ins[0]:
        raise _fail(layer, f"slope {list(ins[1])} must broadcast to the input {list(ins[0])}")
    return [out]


def _channel_affine(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    x = ins[0]
    if len(x) < 2:
        raise _fail(layer, f"input must have a channel axis, got {list(x)}")
    for s in ins[1:]:
        if s != (x[1],):
            raise _fail(layer, f"scale/shift must have shape [{x[1]}], got {list(s)}")
    return [x]


def _concat(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    axis = layer.attrs.axis
    first = ins[0]
    if not 0 <= axis < len(first):
        raise _fail(layer, f"axis {axis} out of range for {list(first)}")
    for s in ins[1:]:
        if len(s) != len(first) or any(
            d != e for i, (d, e) in enumerate(zip(s, first, strict=False)) if i != axis
        ):
            raise _fail(layer, f"inputs {[list(s) for s in ins]} differ outside axis {axis}")
    out = list(first)
    out[axis] = sum(s[axis] for s in ins)
    return [tuple(out)]


def _split(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: SplitAttrs = layer.attrs
    x = ins[0]
    if not 0 <= a.axis < len(x) or sum(a.sizes) != x[a.axis] or min(a.sizes, default=0) < 1:
        raise _fail(layer, f"sizes {list(a.sizes)} on axis {a.axis} do not split {list(x)}")
    if len(a.sizes) != len(layer.outputs):
        raise _fail(layer, f"{len(a.sizes)} sizes for {len(layer.outputs)} outputs")
    return [tuple(s if i == a.axis else d for i, d in enumerate(x)) for s in a.sizes]


def _slice(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: SliceAttrs = layer.attrs
    x = ins[0]
    if len(a.starts) != len(x) or len(a.steps) != len(x):
        raise _fail(layer, f"starts/steps must have one entry per dim of {list(x)}")
    if a.ends:
        if len(a.ends) != len(x):
            raise _fail(layer, f"ends must have one entry per dim of {list(x)}")
        out = slice_out_shape(a)
    elif layer.outputs[0] in g.values:
        out = g.shape(layer.outputs[0])
    else:
        raise _fail(layer, "slice without ends needs a declared output shape")
    for d, (n, s, t, o) in enumerate(zip(x, a.starts, a.steps, out, strict=False)):
        last = s + (o - 1) * t
        if t == 0 or o < 1 or not (0 <= s < n and 0 <= last < n):
            raise _fail(layer, f"dim {d}: start {s} step {t} x{o} leaves the input extent {n}")
    return [out]


def _reshape(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: ReshapeAttrs = layer.attrs
    if math.prod(a.shape) != math.prod(ins[0]) or min(a.shape, default=1) < 0:
        raise _fail(layer, f"cannot reshape {list(ins[0])} to {list(a.shape)}")
    return [tuple(a.shape)]


def _transpose(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: TransposeAttrs = layer.attrs
    x = ins[0]
    if sorted(a.perm) != list(range(len(x))):
        raise _fail(layer, f"perm {list(a.perm)} is not a permutation of {len(x)} dims")
    return [tuple(x[p] for p in a.perm)]


def _pad(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: PadAttrs = layer.attrs
    x = ins[0]
    r = len(x)
    if len(a.pads) != 2 * r:
        raise _fail(layer, f"pads must have {2 * r} entries, got {len(a.pads)}")
    if a.mode not in ("constant", "reflect", "edge", "wrap"):
        raise _fail(layer, f"unknown pad mode {a.mode!r}")
    out = tuple(d + a.pads[i] + a.pads[i + r] for i, d in enumerate(x))
    if min(out, default=1) < 1:
        raise _fail(layer, f"pads {list(a.pads)} empty the input {list(x)}")
    if a.mode == "reflect" and any(
        max(a.pads[i], a.pads[i + r]) >= d for i, d in enumerate(x) if a.pads[i] or a.pads[i + r]
    ):
        raise _fail(layer, "reflect padding must be smaller than the padded dimension")
    return [out]


def _resize(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: ResizeAttrs = layer.attrs
    x = ins[0]
    _rank(layer, x, 4)
    if a.mode not in ("nearest", "linear"):
        raise _fail(layer, f"unknown resize mode {a.mode!r}")
    out = resize_out_shape(x, a)
    if min(out[2:]) < 1:
        raise _fail(layer, f"scales {a.scales} empty the input {list(x)}")
    return [out]


def _softmax(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: AxisAttrs = layer.attrs
    if not 0 <= a.axis < len(ins[0]):
        raise _fail(layer, f"axis {a.axis} out of range for {list(ins[0])}")
    return [ins[0]]


def _reduce(layer: Layer, ins: list[Shape], g: Graph) -> list[Shape]:
    a: ReduceAttrs = layer.attrs
    x = ins[0]
    if not a.axes or any(not 0 <= ax < len(x) for ax in a.axes) or len(set(a.axes)) != len(a.axes):
        raise _fail(layer, f"axes {list(a.axes)} invalid for {list(x)}")
    if a.keepdims:
        return [tuple(1 if i in a.axes else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in a.axes)]


Rule = Callable[[Layer, list[Shape], Graph], list[Shape]]

RULES: dict[Op, Rule] = {
    Op.CONV2D: _conv2d,
    Op.CONV_TRANSPOSE2D: _conv_transpose2d,
    Op.DENSE: _dense,
    Op.MATMUL: _matmul,
    Op.MAXPOOL: _pool,
    Op.AVGPOOL: _pool,
    Op.GLOBAL_AVGPOOL: _global_pool,
    Op.GLOBAL_MAXPOOL: _global_pool,
    **{op: _same for op in UNARY},
    **{op: _binary for op in BINARY},
    Op.CHANNEL_AFFINE: _channel_affine,
    Op.CONCAT: _concat,
    Op.SPLIT: _split,
    Op.SLICE: _slice,
    Op.RESHAPE: _reshape,
    Op.TRANSPOSE: _transpose,
    Op.PAD: _pad,
    Op.RESIZE: _resize,
    Op.SOFTMAX: _softmax,
    Op.REDUCE_MEAN: _reduce,
    Op.REDUCE_MAX: _reduce,
    Op.REDUCE_SUM: _reduce,
}


def infer_shapes(
    layer: Layer, graph: Graph, input_shapes: Sequence[Shape] | None = None
) -> list[Shape]:
    """Shapes of `layer`'s outputs. Input shapes come from `graph` unless given."""
    if input_shapes is None:
        try:
            input_shapes = [graph.shape(name) for name in layer.inputs]
        except KeyError as e:
            raise _fail(layer, f"input {e.args[0]!r} is not a known value") from None
    ins = [tuple(int(d) for d in s) for s in input_shapes]
    out = RULES[layer.op](layer, ins, graph)
    if layer.epilogue.residual and ins[-1] != out[0]:
        raise _fail(layer, f"residual {list(ins[-1])} differs from the output {list(out[0])}")
    return out
