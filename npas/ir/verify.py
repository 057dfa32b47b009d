"""The IR verifier: structural and shape invariants that every pass must preserve.

A failure is an npas bug (a pass or converter broke the graph), not a user error, so it raises
VerifyError (a ValueError), naming the layer.
"""

from __future__ import annotations

import numpy as np

from npas.errors import ShapeError

from .attrs import (
    AxisAttrs,
    Conv2dAttrs,
    ConvTranspose2dAttrs,
    NoAttrs,
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
from .ops import ACTIVATIONS, BINARY, CONV_LIKE, UNARY, Op
from .shapes import infer_shapes


class VerifyError(ValueError):
    """The graph breaks an IR invariant."""


# attrs class each op carries; unary ops may carry NoAttrs when they have no parameter
_ATTRS: dict[Op, tuple[type, ...]] = {
    Op.CONV2D: (Conv2dAttrs,),
    Op.CONV_TRANSPOSE2D: (ConvTranspose2dAttrs,),
    Op.MAXPOOL: (PoolAttrs,),
    Op.AVGPOOL: (PoolAttrs,),
    Op.CONCAT: (AxisAttrs,),
    Op.SOFTMAX: (AxisAttrs,),
    Op.SPLIT: (SplitAttrs,),
    Op.SLICE: (SliceAttrs,),
    Op.RESHAPE: (ReshapeAttrs,),
    Op.TRANSPOSE: (TransposeAttrs,),
    Op.PAD: (PadAttrs,),
    Op.RESIZE: (ResizeAttrs,),
    Op.REDUCE_MEAN: (ReduceAttrs,),
    Op.REDUCE_MAX: (ReduceAttrs,),
    Op.REDUCE_SUM: (ReduceAttrs,),
    **{op: (UnaryAttrs, NoAttrs) for op in UNARY},
}

# (min, max) number of inputs
_ARITY: dict[Op, tuple[int, int]] = {
    **{op: (3, 4) for op in CONV_LIKE},
    Op.MATMUL: (2, 2),
    **{op: (1, 1) for op in UNARY},
    **{op: (2, 2) for op in BINARY},
    Op.CHANNEL_AFFINE: (3, 3),
    Op.CONCAT: (1, 1 << 30),
}


def _check_layer_form(graph: Graph, layer: Layer) -> None:
    def fail(msg: str) -> VerifyError:
        return VerifyError(f"{layer.where}: {msg}")

    lo, hi = _ARITY.get(layer.op, (1, 1))
    if not lo <= len(layer.inputs) <= hi:
        raise fail(f"takes {lo}..{hi} inputs, has {len(layer.inputs)}")
    want = _ATTRS.get(layer.op, (NoAttrs,))
    if not isinstance(layer.attrs, want):
        raise fail(f"attrs must be {' or '.join(t.__name__ for t in want)}, got {layer.attrs!r}")
    if layer.op is not Op.SPLIT and len(layer.outputs) != 1:
        raise fail(f"must have exactly one output, has {len(layer.outputs)}")
    ep = layer.epilogue
    if not ep.empty and layer.op not in CONV_LIKE and layer.op not in BINARY:
        raise fail("only conv/dense/binary layers may carry an epilogue")
    if ep.act is not None and ep.act.op not in ACTIVATIONS:
        raise fail(f"{ep.act.op.value} cannot be a fused activation")
    if layer.op in CONV_LIKE:
        if ep.residual != (len(layer.inputs) == 4):
            raise fail("epilogue.residual must be set exactly when there is a 4th input")
        for pos, what in ((1, "weight"), (2, "bias")):
            v = graph.values[layer.inputs[pos]]
            if not v.is_const or v.dtype != "float32":
                raise fail(f"{what} {v.name!r} must be a float32 constant")
        w, b = graph.shape(layer.inputs[1]), graph.shape(layer.inputs[2])
        groups = getattr(layer.attrs, "groups", 1)
        f = w[0] if layer.op is not Op.CONV_TRANSPOSE2D else w[1] * groups
        if b != (f,):
            raise fail(f"bias shape {list(b)} must be [{f}]")
        if layer.epilogue.residual and graph.values[layer.inputs[3]].is_const:
            raise fail("the residual operand must be an activation")
    elif ep.residual:
        raise fail("only conv/dense layers take a residual")
    if layer.op is Op.CHANNEL_AFFINE:
        for name in layer.inputs[1:]:
            if not graph.values[name].is_const:
                raise fail(f"scale/shift {name!r} must be constants")
    if layer.sparsity is not None and layer.op not in CONV_LIKE:
        raise fail("only conv/dense layers carry a sparsity annotation")


def verify(graph: Graph) -> None:
    """Raise VerifyError if `graph` breaks an invariant of the IR."""
    defined: set[str] = set()
    for name in graph.inputs:
        v = graph.values.get(name)
        if v is None:
            raise VerifyError(f"graph input {name!r} has no Value")
        if v.is_const:
            raise VerifyError(f"graph input {name!r} must not be a constant")
        defined.add(name)
    for name, v in graph.values.items():
        if v.name != name:
            raise VerifyError(f"value registered as {name!r} is named {v.name!r}")
        if v.dtype != "float32":
            raise VerifyError(f"value {name!r} is {v.dtype}; the IR is float32-only")
        if v.is_const:
            assert v.data is not None
            if tuple(v.data.shape) != v.shape or v.data.dtype != np.float32:
                raise VerifyError(
                    f"constant {name!r}: data {v.data.dtype}{list(v.data.shape)} does not "
                    f"match its Value float32{list(v.shape)}"
                )
            defined.add(name)
    layer_names: set[str] = set()
    for layer in graph.layers:
        if layer.name in layer_names:
            raise VerifyError(f"duplicate layer name {layer.name!r}")
        layer_names.add(layer.name)
        for name in layer.inputs:
            if name not in graph.values:
                raise VerifyError(f"layer {layer.name!r}: input {name!r} has no Value")
            if name not in defined:
                raise VerifyError(
                    f"layer {layer.name!r}: input {name!r} is used before it is computed "
                    "(layers out of topological order?)"
                )
        _check_layer_form(graph, layer)
        try:
            shapes = infer_shapes(layer, graph)
        except ShapeError as e:
            raise VerifyError(str(e)) from None
        for name, shape in zip(layer.outputs, shapes, strict=False):
            v = graph.values.get(name)
            if v is None:
                raise VerifyError(f"layer {layer.name!r}: output {name!r} has no Value")
            if name in defined:
                raise VerifyError(
                    f"layer {layer.name!r}: output {name!r} is already defined (by another "
                    "layer, a graph input or a constant)"
                )
            if v.shape != shape:
                raise VerifyError(
                    f"{layer.where}: output {name!r} is declared "
                    f"{list(v.shape)} but its inputs give {list(shape)}"
                )
            defined.add(name)
    for name in graph.outputs:
        # A constant output is legal: the executor copies it out of the weights.
        if name not in defined and not (name in graph.values and graph.values[name].is_const):
            raise VerifyError(f"graph output {name!r} is not computed by any layer or input")
    if len(set(graph.outputs)) != len(graph.outputs):
        raise VerifyError(f"duplicate graph outputs {graph.outputs}")
