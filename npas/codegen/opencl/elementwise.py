"""OpenCL elementwise kernels: unary ops, binary ops with ONNX (numpy) broadcasting and a fused
epilogue, and the per-channel affine.

Every kernel gives a work-item 4 consecutive elements of a contiguous run (one float4 load and
store through LD4/ST4; the last chunk of a run is a scalar tail). Binary broadcasting reuses the
host's collapse (npas/codegen/host/elementwise.py `_Broadcast`): outer dims with per-operand
strides around a contiguous inner run along which each operand is contiguous or one broadcast
value, so same-shape, scalar, per-channel ([1, C, 1, 1] as in SE blocks) and general operands
are one kernel. Every work-item reads its own elements before writing them, so all three kernels
may run in place.
"""

from __future__ import annotations

import numpy as np

from npas.codegen.host.common import Variant, activation_inputs, prod
from npas.codegen.host.elementwise import _Broadcast, _pow_exponent
from npas.codegen.kernel import LayerKernel
from npas.codegen.naming import op_token
from npas.codegen.opencl.common import (
    DEFAULT_GROUP,
    act_cl,
    finish_variant,
    global_1d,
    layer_unary_cl,
)
from npas.codegen.target import Isa
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

LANES = 4  # elements per work-item (one float4)


def _chunks(n: int) -> int:
    return -(-n // LANES)


def _launch(items: int, variant: Variant) -> tuple[tuple[int], tuple[int]]:
    """A 1-D launch in work-groups of the variant's tunable size (one place for a tuner to
    set)."""
    return global_1d(items, int(variant.param("group", DEFAULT_GROUP)))


def _variant(fill, ok) -> Variant:
    return Variant("dense", ("opencl",), fill, ok, 1, LANES, (("group", DEFAULT_GROUP),))


# ---------------------------------------------------------------------------------------------
# unary


def _fill_unary(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x = layer.inputs[0]
    total = graph.value(x).size
    return finish_variant(
        variant,
        op_token=op_token(layer.op),
        template="opencl/unary.cl.j2",
        params=dict(expr=layer_unary_cl(layer, "x"), total=total),
        inputs=(x,),
        launch=_launch(_chunks(total), variant),
    )


def _unary_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return layer.epilogue.empty and not graph.value(layer.inputs[0]).is_const


UNARY_MANIFEST: tuple[Variant, ...] = (_variant(_fill_unary, _unary_ok),)


# ---------------------------------------------------------------------------------------------
# binary

# `a`, `b` are float or float4 alike.
_BINARY_CL = {
    Op.ADD: "a + b",
    Op.SUB: "a - b",
    Op.MUL: "a * b",
    Op.DIV: "a / b",
    Op.MAX: "fmax(a, b)",
    Op.MIN: "fmin(a, b)",
    Op.POW: "pow(a, b)",
    Op.PRELU: "select(a * b, a, a >= 0.0f)",
}
# POW by a constant scalar exponent that has a cheaper exact spelling than pow().
_POW_CL = {
    0.0: "(b + 1.0f)",  # 1 in a's type (b is that 0): pow(x, 0) is 1 even for a NaN x
    0.5: "sqrt(a)",
    1.0: "a",
    2.0: "a * a",
    3.0: "a * a * a",
    -0.5: "rsqrt(a)",
    -1.0: "1.0f / a",
    -2.0: "1.0f / (a * a)",
}


def _binary_expr(layer: Layer, graph: Graph) -> str:
    if layer.op is Op.POW:
        exponent = _pow_exponent(layer, graph)
        if exponent in _POW_CL:
            return _POW_CL[exponent]  # type: ignore[index]
    return _BINARY_CL[layer.op]


def _fill_binary(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    bc = _Broadcast(layer, graph)
    inputs = activation_inputs(layer, graph)
    ptrs, n_const = [], 0
    for name in layer.inputs[:2]:
        if graph.value(name).is_const:
            ptrs.append(f"w{n_const}")
            n_const += 1
        else:
            ptrs.append(f"in{inputs.index(name)}")
    residual = layer.epilogue.residual
    inner = bc.inner
    items = prod(bc.outer_dims) * _chunks(inner)
    return finish_variant(
        variant,
        op_token=op_token(layer.op) + ("" if bc.kind == "same" else bc.kind),
        template="opencl/binary.cl.j2",
        params=dict(
            opname=layer.op.value,
            expr=_binary_expr(layer, graph),
            act=act_cl(layer.epilogue.act, "r"),
            residual=residual,
            res_ptr=f"in{len(inputs) - 1}",
            inner=inner,
            chunks=_chunks(inner),
            items=items,
            outer_dims=bc.outer_dims,
            a_strides=bc.a_strides,
            b_strides=bc.b_strides,
            a_bc=bc.a_bc,
            b_bc=bc.b_bc,
            a_ptr=ptrs[0],
            b_ptr=ptrs[1],
        ),
        inputs=inputs,
        launch=_launch(items, variant),
        epilogue=layer.epilogue,
        weights=bc.weights,
    )


def _binary_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    operands = layer.inputs[:2]
    if len(operands) != 2 or all(graph.value(n).is_const for n in operands):
        return False
    expected = 3 if layer.epilogue.residual else 2
    if len(layer.inputs) != expected:
        return False
    if layer.epilogue.residual:
        # The residual is read at the output's index: it must be an activation of that shape.
        res = graph.value(layer.inputs[2])
        return not res.is_const and res.shape == graph.shape(layer.outputs[0])
    return True


BINARY_MANIFEST: tuple[Variant, ...] = (_variant(_fill_binary, _binary_ok),)


# ---------------------------------------------------------------------------------------------
# channel affine


def _fill_affine(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, scale, shift = layer.inputs[:3]
    shape = graph.shape(x)
    channels = shape[1] if len(shape) > 1 else 1
    planes = prod(shape[:2]) if len(shape) > 1 else 1
    inner = prod(shape[2:]) if len(shape) > 1 else prod(shape)
    weights = [
        np.broadcast_to(np.asarray(graph.const(n), np.float32).reshape(-1), (channels,))
        for n in (scale, shift)
    ]
    items = planes * _chunks(inner)
    return finish_variant(
        variant,
        op_token="channelaffine",
        template="opencl/channel_affine.cl.j2",
        params=dict(
            planes=planes, channels=channels, inner=inner, chunks=_chunks(inner), items=items
        ),
        inputs=(x,),
        launch=_launch(items, variant),
        weights=weights,
    )


def _affine_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        len(layer.inputs) >= 3
        and layer.epilogue.empty
        and all(graph.value(n).is_const for n in layer.inputs[1:3])
    )


AFFINE_MANIFEST: tuple[Variant, ...] = (_variant(_fill_affine, _affine_ok),)
