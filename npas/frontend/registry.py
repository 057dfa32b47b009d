"""The ONE table of ONNX operators npas understands, keyed by (op_type, since_opset).

For a model of opset N, a node uses the entry of its op with the largest since_opset <= N. An
entry has a converter (emits IR layers for run-time inputs), a folder (evaluates the op with
numpy at load time when all inputs are constants — int64 shape arithmetic lives only here, since
the IR is float32), or both, and the input positions that must be load-time constants.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import const_ops, conv, pooling, reduce, resize, shape_ops
from . import elementwise as ew
from .context import Converter, Folder

MIN_OPSET = 11
# Opsets 22-25 changed only the type lists of the operators registered here (checked against
# onnx.defs), so their float32 semantics are those of the entries below.
MAX_OPSET = 25


@dataclass(frozen=True)
class Entry:
    convert: Converter | None = None
    fold: Folder | None = None
    const_inputs: tuple[int, ...] = ()
    # the folder needs only input *shapes* (Shape, Size): it runs on activations too
    shape_only: bool = False


E = Entry
CONVERTERS: dict[tuple[str, int], Entry] = {
    # ---- layers with weights ----
    ("Conv", 11): E(conv.conv, const_inputs=(1, 2)),
    ("ConvTranspose", 11): E(conv.conv_transpose, const_inputs=(1, 2)),
    ("Gemm", 11): E(conv.gemm, const_inputs=(1, 2)),
    ("MatMul", 11): E(conv.matmul),
    ("BatchNormalization", 11): E(conv.batch_norm, const_inputs=(1, 2, 3, 4)),
    # ---- activations and unary ----
    ("Relu", 11): E(ew.relu, ew.fold_relu),
    ("Clip", 6): E(ew.clip6, ew.fold_clip6),
    ("Clip", 11): E(ew.clip11, ew.fold_clip11, const_inputs=(1, 2)),
    ("LeakyRelu", 11): E(ew.leaky_relu),
    ("Elu", 11): E(ew.elu),
    ("PRelu", 11): E(ew.prelu, ew.fold_prelu),
    ("HardSwish", 14): E(ew.hard_swish),
    ("HardSigmoid", 11): E(ew.hard_sigmoid),
    ("Sigmoid", 11): E(ew.sigmoid),
    ("Tanh", 11): E(ew.tanh),
    ("Exp", 11): E(ew.exp),
    ("Log", 11): E(ew.log),
    ("Sqrt", 11): E(ew.sqrt, ew.fold_sqrt),
    ("Neg", 11): E(ew.neg, ew.fold_neg),
    ("Abs", 11): E(ew.abs_, ew.fold_abs),
    ("Reciprocal", 11): E(ew.reciprocal, ew.fold_reciprocal),
    # ---- binary and variadic, numpy broadcasting ----
    ("Add", 11): E(ew.add, ew.fold_add),
    ("Sub", 11): E(ew.sub, ew.fold_sub),
    ("Mul", 11): E(ew.mul, ew.fold_mul),
    ("Div", 11): E(ew.div, ew.fold_div),
    ("Pow", 11): E(ew.pow_, ew.fold_pow),
    ("Sum", 11): E(ew.sum_, ew.fold_sum),
    ("Mean", 11): E(ew.mean, ew.fold_mean),
    ("Max", 11): E(ew.max_, ew.fold_max),
    ("Min", 11): E(ew.min_, ew.fold_min),
    # ---- pooling ----
    ("MaxPool", 11): E(pooling.max_pool),
    ("AveragePool", 11): E(pooling.average_pool),
    ("GlobalAveragePool", 11): E(pooling.global_average_pool),
    ("GlobalMaxPool", 11): E(pooling.global_max_pool),
    # ---- data movement ----
    ("Reshape", 11): E(shape_ops.reshape_op, shape_ops.fold_reshape, const_inputs=(1,)),
    ("Flatten", 11): E(shape_ops.flatten, shape_ops.fold_flatten),
    ("Squeeze", 11): E(shape_ops.squeeze11, shape_ops.fold_squeeze11),
    ("Squeeze", 13): E(shape_ops.squeeze13, shape_ops.fold_squeeze13, const_inputs=(1,)),
    ("Unsqueeze", 11): E(shape_ops.unsqueeze11, shape_ops.fold_unsqueeze11),
    ("Unsqueeze", 13): E(shape_ops.unsqueeze13, shape_ops.fold_unsqueeze13, const_inputs=(1,)),
    ("Transpose", 11): E(shape_ops.transpose, shape_ops.fold_transpose),
    ("Concat", 11): E(shape_ops.concat, shape_ops.fold_concat),
    ("Split", 11): E(shape_ops.split11, shape_ops.fold_split11),
    ("Split", 13): E(shape_ops.split13, shape_ops.fold_split13, const_inputs=(1,)),
    ("Slice", 11): E(shape_ops.slice_op, shape_ops.fold_slice, const_inputs=(1, 2, 3, 4)),
    ("Gather", 11): E(shape_ops.gather, shape_ops.fold_gather, const_inputs=(1,)),
    ("Expand", 11): E(shape_ops.expand, shape_ops.fold_expand, const_inputs=(1,)),
    ("Tile", 11): E(None, shape_ops.fold_tile, const_inputs=(1,)),
    ("Pad", 11): E(shape_ops.pad, const_inputs=(1, 2)),
    ("Pad", 18): E(shape_ops.pad, const_inputs=(1, 2, 3)),
    ("Resize", 11): E(resize.resize, const_inputs=(1, 2, 3)),
    ("Identity", 11): E(shape_ops.identity, shape_ops.fold_identity),
    ("Dropout", 11): E(shape_ops.dropout, shape_ops.fold_dropout, const_inputs=(1, 2)),
    # ---- softmax and reductions ----
    ("Softmax", 11): E(reduce.softmax11),
    ("Softmax", 13): E(reduce.softmax13),
    ("ReduceMean", 11): E(reduce.reduce_mean11, reduce.fold_reduce_mean11),
    ("ReduceMean", 18): E(reduce.reduce_mean18, reduce.fold_reduce_mean18, const_inputs=(1,)),
    ("ReduceMax", 11): E(reduce.reduce_max11, reduce.fold_reduce_max11),
    ("ReduceMax", 18): E(reduce.reduce_max18, reduce.fold_reduce_max18, const_inputs=(1,)),
    ("ReduceSum", 11): E(reduce.reduce_sum11, reduce.fold_reduce_sum11),
    ("ReduceSum", 13): E(reduce.reduce_sum13, reduce.fold_reduce_sum13, const_inputs=(1,)),
    ("ReduceMin", 11): E(None, reduce.fold_reduce_min11),
    ("ReduceMin", 18): E(None, reduce.fold_reduce_min18, const_inputs=(1,)),
    ("ReduceProd", 11): E(None, reduce.fold_reduce_prod11),
    ("ReduceProd", 18): E(None, reduce.fold_reduce_prod18, const_inputs=(1,)),
    # ---- load-time only: constants and shape arithmetic ----
    ("Constant", 11): E(None, const_ops.fold_constant),
    ("Shape", 11): E(None, const_ops.fold_shape, shape_only=True),
    ("Size", 11): E(None, const_ops.fold_size, shape_only=True),
    ("Cast", 11): E(const_ops.cast, const_ops.fold_cast),
    ("ConstantOfShape", 11): E(None, const_ops.fold_constant_of_shape, const_inputs=(0,)),
    ("Range", 11): E(None, const_ops.fold_range, const_inputs=(0, 1, 2)),
    ("Equal", 11): E(None, ew.fold_equal),
    ("Less", 11): E(None, ew.fold_less),
    ("LessOrEqual", 12): E(None, ew.fold_less_equal),
    ("Greater", 11): E(None, ew.fold_greater),
    ("GreaterOrEqual", 12): E(None, ew.fold_greater_equal),
    ("Not", 11): E(None, ew.fold_not),
    ("And", 11): E(None, ew.fold_and),
    ("Or", 11): E(None, ew.fold_or),
    ("Xor", 11): E(None, ew.fold_xor),
    ("Where", 11): E(None, ew.fold_where),
    ("Mod", 11): E(None, ew.fold_mod),
    ("Floor", 11): E(None, ew.fold_floor),
    ("Ceil", 11): E(None, ew.fold_ceil),
    ("Round", 11): E(None, ew.fold_round),
    ("Sign", 11): E(None, ew.fold_sign),
}


def _index() -> dict[str, list[tuple[int, Entry]]]:
    by_op: dict[str, list[tuple[int, Entry]]] = {}
    for (op, since), entry in CONVERTERS.items():
        by_op.setdefault(op, []).append((since, entry))
    for versions in by_op.values():
        versions.sort(key=lambda v: v[0])
    return by_op


_BY_OP = _index()


def lookup(op_type: str, opset: int) -> Entry | None:
    """The entry for `op_type` in a model of `opset`: newest since_opset <= opset."""
    best = None
    for since, entry in _BY_OP.get(op_type, ()):
        if since <= opset:
            best = entry
    return best


def first_opset(op_type: str) -> int | None:
    """The oldest opset npas converts `op_type` at (None when it never does)."""
    versions = _BY_OP.get(op_type)
    return versions[0][0] if versions else None


def constant_input_positions(op_type: str, opset: int) -> tuple[int, ...]:
    """Input positions of `op_type` that must be load-time constants (initializers or
    computable from them) for npas to compile the node; () for an unknown op."""
    entry = lookup(op_type, opset)
    return entry.const_inputs if entry is not None else ()


def supported_ops() -> list[str]:
    """ONNX operator names npas can load (some only when their inputs are constant)."""
    return sorted(_BY_OP)
