"""Data movement: Reshape/Flatten/Squeeze/Unsqueeze, Transpose, Concat, Split, Slice, Gather,
Expand, Pad, Identity, Dropout, Tile.

Each op computes its result shape once (`_*_shape`), shared by the converter (an IR layer on an
activation) and the folder (numpy on a load-time constant, any dtype).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from npas.ir import AxisAttrs, Op, PadAttrs, SliceAttrs, SplitAttrs, TransposeAttrs
from npas.ir.shapes import slice_len

from .common import axes_attr, axes_input, ints, norm_axes, norm_axis, reshape
from .context import Context, Node

Shape = tuple[int, ...]


def _view(cx: Context, node: Node, shape: Sequence[int]) -> None:
    """RESHAPE the activation input to `shape` (an alias when it already has it)."""
    x = cx.act(node.inputs[0])
    if cx.graph.shape(x) == tuple(shape):
        cx.bind(node.outputs[0], x)
    else:
        reshape(cx, node, x, shape, "reshape", node.outputs[0])


# ---- reshape family ----


def _reshape_shape(node: Node, in_shape: Shape, target: Sequence[int]) -> Shape:
    allowzero = int(node.attr("allowzero", 0))
    out = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise node.error(f"shape {list(target)}: 0 at {i} has no input dim to copy")
            d = in_shape[i]
        out.append(int(d))
    total = math.prod(in_shape)
    if out.count(-1) > 1:
        raise node.error(f"shape {list(target)} has more than one -1")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise node.error(f"cannot reshape {list(in_shape)} to {list(target)}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total or min(out, default=0) < 0:
        raise node.error(f"cannot reshape {list(in_shape)} to {list(target)}")
    return tuple(out)


def _target(cx: Context, node: Node) -> Shape:
    shape = cx.require_const(node, 1, "shape")
    assert shape is not None
    return _reshape_shape(node, cx.shape(node.inputs[0]), ints(shape))


def reshape_op(cx: Context, node: Node) -> None:
    _view(cx, node, _target(cx, node))


def fold_reshape(cx: Context, node: Node) -> list[np.ndarray]:
    return [cx.const(node.inputs[0]).reshape(_target(cx, node))]


def _flatten_shape(node: Node, s: Shape) -> Shape:
    axis = int(node.attr("axis", 1))
    axis = axis + len(s) if axis < 0 else axis
    if not 0 <= axis <= len(s):
        raise node.error(f"axis {axis} is out of range for rank {len(s)}")
    return (math.prod(s[:axis]), math.prod(s[axis:]))


def flatten(cx: Context, node: Node) -> None:
    _view(cx, node, _flatten_shape(node, cx.shape(node.inputs[0])))


def fold_flatten(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    return [x.reshape(_flatten_shape(node, x.shape))]


def _squeeze_shape(node: Node, s: Shape, axes: list[int] | None) -> Shape:
    if axes is None:
        return tuple(d for d in s if d != 1)
    axes = norm_axes(node, axes, len(s))
    for a in axes:
        if s[a] != 1:
            raise node.error(f"cannot squeeze axis {a} of size {s[a]} (shape {list(s)})")
    return tuple(d for i, d in enumerate(s) if i not in axes)


def _unsqueeze_shape(node: Node, s: Shape, axes: list[int]) -> Shape:
    rank = len(s) + len(axes)
    axes = norm_axes(node, axes, rank)
    dims = iter(s)
    return tuple(1 if i in axes else next(dims) for i in range(rank))


def squeeze11(cx: Context, node: Node) -> None:
    _view(cx, node, _squeeze_shape(node, cx.shape(node.inputs[0]), axes_attr(cx, node)))


def squeeze13(cx: Context, node: Node) -> None:
    _view(cx, node, _squeeze_shape(node, cx.shape(node.inputs[0]), axes_input(cx, node)))


def fold_squeeze11(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    return [x.reshape(_squeeze_shape(node, x.shape, axes_attr(cx, node)))]


def fold_squeeze13(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    return [x.reshape(_squeeze_shape(node, x.shape, axes_input(cx, node)))]


def _need_axes(node: Node, axes: list[int] | None) -> list[int]:
    if axes is None:
        raise node.error("axes are required")
    return axes


def unsqueeze11(cx: Context, node: Node) -> None:
    axes = _need_axes(node, axes_attr(cx, node))
    _view(cx, node, _unsqueeze_shape(node, cx.shape(node.inputs[0]), axes))


def unsqueeze13(cx: Context, node: Node) -> None:
    axes = _need_axes(node, axes_input(cx, node))
    _view(cx, node, _unsqueeze_shape(node, cx.shape(node.inputs[0]), axes))


def fold_unsqueeze11(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    return [x.reshape(_unsqueeze_shape(node, x.shape, _need_axes(node, axes_attr(cx, node))))]


def fold_unsqueeze13(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    axes = _need_axes(node, axes_input(cx, node))
    return [x.reshape(_unsqueeze_shape(node, x.shape, axes))]


# ---- transpose, concat, split ----


def _perm(node: Node, rank: int) -> tuple[int, ...]:
    perm = ints(node.attr("perm")) or list(range(rank))[::-1]
    if sorted(perm) != list(range(rank)):
        raise node.error(f"perm {perm} is not a permutation of {rank} axes")
    return tuple(perm)


def transpose(cx: Context, node: Node) -> None:
    x = cx.act(node.inputs[0])
    perm = _perm(node, len(cx.graph.shape(x)))
    if perm == tuple(range(len(perm))):
        cx.bind(node.outputs[0], x)
        return
    cx.emit(node, Op.TRANSPOSE, [x], node.outputs, TransposeAttrs(perm))


def fold_transpose(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    return [np.array(x.transpose(_perm(node, x.ndim)), order="C")]


def concat(cx: Context, node: Node) -> None:
    rank = len(cx.shape(node.inputs[0]))
    axis = norm_axis(node, int(node.attr("axis")), rank)
    # exporters sometimes concatenate empty constants; they contribute nothing
    names = [n for n in node.inputs if n and math.prod(cx.shape(n)) > 0]
    ids = [cx.act(n) for n in names]
    if len(ids) == 1:
        cx.bind(node.outputs[0], ids[0])
        return
    cx.emit(node, Op.CONCAT, ids, node.outputs, AxisAttrs(axis))


def fold_concat(cx: Context, node: Node) -> list[np.ndarray]:
    args = [cx.const(n) for n in node.inputs if n]
    axis = norm_axis(node, int(node.attr("axis")), args[0].ndim)
    return [np.concatenate(args, axis=axis)]


def _split_sizes(cx: Context, node: Node, split: list[int] | None) -> tuple[int, list[int]]:
    shape = cx.shape(node.inputs[0])
    axis = norm_axis(node, int(node.attr("axis", 0)), len(shape))
    dim, n = shape[axis], len(node.outputs)
    if split:
        sizes = split
    elif node.attr("num_outputs") is not None:
        # opset 18: ceil-sized chunks, the last one takes the remainder
        k = int(node.attr("num_outputs"))
        chunk = -(-dim // k)
        sizes = [chunk] * (k - 1) + [dim - chunk * (k - 1)]
    else:
        if dim % n:
            raise node.error(f"cannot split {dim} into {n} equal parts")
        sizes = [dim // n] * n
    if sum(sizes) != dim or len(sizes) != n or min(sizes) < 0:
        raise node.error(f"split {sizes} does not divide axis {axis} of size {dim} in {n}")
    return axis, sizes


def _split_attr(cx: Context, node: Node) -> list[int] | None:
    return ints(node.attr("split")) or None


def _split_input(cx: Context, node: Node) -> list[int] | None:
    return ints(cx.require_const(node, 1, "split")) or None


def _split(cx: Context, node: Node, split: list[int] | None) -> None:
    axis, sizes = _split_sizes(cx, node, split)
    x = cx.act(node.inputs[0])
    if len(sizes) == 1:
        cx.bind(node.outputs[0], x)
        return
    if min(sizes) == 0:
        raise node.unsupported(f"split {sizes} produces an empty tensor")
    cx.emit(node, Op.SPLIT, [x], node.outputs, SplitAttrs(axis, tuple(sizes)))


def split11(cx: Context, node: Node) -> None:
    _split(cx, node, _split_attr(cx, node))


def split13(cx: Context, node: Node) -> None:
    _split(cx, node, _split_input(cx, node))


def _fold_split(cx: Context, node: Node, split: list[int] | None) -> list[np.ndarray]:
    axis, sizes = _split_sizes(cx, node, split)
    return list(np.split(cx.const(node.inputs[0]), np.cumsum(sizes)[:-1], axis=axis))


def fold_split11(cx: Context, node: Node) -> list[np.ndarray]:
    return _fold_split(cx, node, _split_attr(cx, node))


def fold_split13(cx: Context, node: Node) -> list[np.ndarray]:
    return _fold_split(cx, node, _split_input(cx, node))


# ---- slice and gather ----


def _slice_params(cx: Context, node: Node) -> tuple[list[int], list[int], list[int]]:
    """Full-rank (starts, ends, steps), clamped as the ONNX Slice operator defines."""
    shape = cx.shape(node.inputs[0])
    rank = len(shape)
    starts = ints(cx.require_const(node, 1, "starts"))
    ends = ints(cx.require_const(node, 2, "ends"))
    axes_arr = cx.require_const(node, 3, "axes")
    axes = ints(axes_arr) if axes_arr is not None else list(range(len(starts)))
    steps_arr = cx.require_const(node, 4, "steps")
    steps = ints(steps_arr) if steps_arr is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error("starts, ends, axes and steps must have the same length")
    full_s, full_e, full_t = [0] * rank, list(shape), [1] * rank
    for s, e, a, t in zip(starts, ends, norm_axes(node, axes, rank), steps, strict=False):
        dim = shape[a]
        if t == 0:
            raise node.error("slice step 0")
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        if t > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        full_s[a], full_e[a], full_t[a] = s, e, t
    return full_s, full_e, full_t


def _slice_index(starts: list[int], ends: list[int], steps: list[int]) -> tuple[slice, ...]:
    return tuple(
        slice(s, None if e < 0 else e, t) for s, e, t in zip(starts, ends, steps, strict=False)
    )


def slice_op(cx: Context, node: Node) -> None:
    starts, ends, steps = _slice_params(cx, node)
    x = cx.act(node.inputs[0])
    shape = cx.graph.shape(x)
    if starts == [0] * len(shape) and ends == list(shape) and steps == [1] * len(shape):
        cx.bind(node.outputs[0], x)
        return
    _emit_slice(cx, node, x, starts, ends, steps, node.outputs[0])


def _emit_slice(
    cx: Context, node: Node, x: str, starts: list[int], ends: list[int], steps: list[int],
    output: str | None, suffix: str | None = None,
) -> str:  # fmt: skip
    if any(slice_len(s, e, t) == 0 for s, e, t in zip(starts, ends, steps, strict=False)):
        raise node.unsupported("the slice is empty; npas does not compile empty tensors")
    attrs = SliceAttrs(tuple(starts), tuple(steps), tuple(ends))
    outs = None if output is None else [output]
    return cx.emit(node, Op.SLICE, [x], outs, attrs, suffix=suffix)[0]


def fold_slice(cx: Context, node: Node) -> list[np.ndarray]:
    starts, ends, steps = _slice_params(cx, node)
    return [cx.const(node.inputs[0])[_slice_index(starts, ends, steps)]]


def gather(cx: Context, node: Node) -> None:
    """Gather on an activation with constant indices: a scalar index or an arithmetic run of
    indices is a SLICE (plus a RESHAPE dropping the axis for a scalar)."""
    shape = cx.shape(node.inputs[0])
    axis = norm_axis(node, int(node.attr("axis", 0)), len(shape))
    idx = cx.require_const(node, 1, "indices")
    assert idx is not None
    dim = shape[axis]
    flat = [int(i) + dim if int(i) < 0 else int(i) for i in idx.reshape(-1)]
    if any(not 0 <= i < dim for i in flat):
        raise node.error(f"indices {flat} out of range for axis {axis} of size {dim}")
    step = flat[1] - flat[0] if len(flat) > 1 else 1
    if idx.ndim > 1 or step == 0 or any(b - a != step for a, b in itertools.pairwise(flat)):
        raise node.unsupported(
            "Gather on a run-time tensor needs a scalar index or evenly spaced 1-D indices"
        )
    x = cx.act(node.inputs[0])
    starts, ends, steps = [0] * len(shape), list(shape), [1] * len(shape)
    starts[axis], steps[axis] = flat[0], step
    ends[axis] = flat[0] + len(flat) * step
    if idx.ndim == 0:
        y = _emit_slice(cx, node, x, starts, ends, steps, None)
        out_shape = shape[:axis] + shape[axis + 1 :]
        reshape(cx, node, y, out_shape, "squeeze", node.outputs[0])
    elif flat == list(range(dim)):
        cx.bind(node.outputs[0], x)
    else:
        _emit_slice(cx, node, x, starts, ends, steps, node.outputs[0])


def fold_gather(cx: Context, node: Node) -> list[np.ndarray]:
    data, idx = cx.const(node.inputs[0]), cx.const(node.inputs[1])
    axis = norm_axis(node, int(node.attr("axis", 0)), data.ndim)
    return [np.take(data, idx.astype(np.int64), axis=axis)]


# ---- expand, tile, pad ----


def expand(cx: Context, node: Node) -> None:
    """Expand of an activation: a broadcasting MUL by ones, shaped so only the broadcast
    dims are materialised in the constant."""
    target = cx.require_const(node, 1, "shape")
    xs = cx.shape(node.inputs[0])
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(xs, tuple(ints(target))))
    except ValueError:
        raise node.error(f"cannot expand {list(xs)} to {ints(target)}") from None
    x = cx.act(node.inputs[0])
    if out == xs:
        cx.bind(node.outputs[0], x)
        return
    aligned = (1,) * (len(out) - len(xs)) + xs
    ones = np.ones([o if a == 1 else 1 for a, o in zip(aligned, out, strict=False)], np.float32)
    cx.emit(node, Op.MUL, [x, cx.add_const(f"{node.name}/ones", ones)], node.outputs)


def fold_expand(cx: Context, node: Node) -> list[np.ndarray]:
    x, shape = cx.const(node.inputs[0]), ints(cx.const(node.inputs[1]))
    return [np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape))))]


def fold_tile(cx: Context, node: Node) -> list[np.ndarray]:
    return [np.tile(cx.const(node.inputs[0]), ints(cx.const(node.inputs[1])))]


def _pads(cx: Context, node: Node) -> tuple[list[int], str, float]:
    rank = len(cx.shape(node.inputs[0]))
    pads = ints(cx.require_const(node, 1, "pads"))
    value = cx.require_const(node, 2, "constant_value")
    axes_arr = cx.require_const(node, 3, "axes")
    axes = norm_axes(node, ints(axes_arr), rank) if axes_arr is not None else list(range(rank))
    if len(pads) != 2 * len(axes):
        raise node.error(f"pads {pads} must have {2 * len(axes)} entries")
    full = [0] * (2 * rank)
    for i, a in enumerate(axes):
        full[a], full[a + rank] = pads[i], pads[i + len(axes)]
    mode = node.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise node.unsupported(f"mode={mode!r}")
    v = 0.0 if value is None or value.size == 0 else float(value.reshape(-1)[0])
    return full, mode, v


def pad(cx: Context, node: Node) -> None:
    pads, mode, value = _pads(cx, node)
    x = cx.act(node.inputs[0])
    if not any(pads):
        cx.bind(node.outputs[0], x)
        return
    cx.emit(node, Op.PAD, [x], node.outputs, PadAttrs(tuple(pads), mode, value))


# ---- identity-like ----


def identity(cx: Context, node: Node) -> None:
    cx.bind(node.outputs[0], cx.act(node.inputs[0]))


def fold_identity(cx: Context, node: Node) -> list[np.ndarray]:
    return [cx.const(node.inputs[0])]


def dropout(cx: Context, node: Node) -> None:
    """Inference-mode Dropout is the identity; the mask output cannot be compiled."""
    training = cx.require_const(node, 2, "training_mode")
    if training is not None and bool(training.reshape(-1)[0]):
        raise node.unsupported("training_mode=true; export the model in eval mode")
    if len(node.outputs) > 1 and node.outputs[1] and node.outputs[1] in cx.used:
        raise node.unsupported("the dropout mask output is only meaningful in training")
    cx.bind(node.outputs[0], cx.act(node.inputs[0]))


def fold_dropout(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    return [x, np.ones(x.shape, bool)][: len(node.outputs)]
