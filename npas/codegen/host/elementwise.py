"""Elementwise kernels: unary ops, binary ops with numpy broadcasting, per-channel affine.

Binary broadcasting is one mechanism: Python collapses the broadcast into an outer index space
(with per-operand strides) and a contiguous inner run along which each operand is either
contiguous or a single broadcast value. Same-shape, scalar and per-channel ([1, C, 1, 1], as in
SE blocks) operands all become that form; the name says which one a layer got.
"""

from __future__ import annotations

import numpy as np

from npas.codegen.host.common import (
    PARALLEL_MIN_ELEMENTS,
    Variant,
    act_expr,
    activation_inputs,
    finish,
    is_vector_isa,
    layer_unary_expr,
    operand_ptrs,
    prod,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.naming import op_token
from npas.codegen.target import Isa
from npas.ir.attrs import Epilogue
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

_BLOCK = 1 << 14  # floats per parallel work unit


def _units(total: int, block: int = _BLOCK) -> tuple[int, int, bool]:
    """(block, units, parallel) for a flat loop; one unit below the parallel threshold."""
    if total < PARALLEL_MIN_ELEMENTS:
        return max(total, 1), 1, False
    return block, -(-total // block), True


# ---------------------------------------------------------------------------------------------
# unary


def _fill_unary(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x = layer.inputs[0]
    total = graph.value(x).size
    block, units, parallel = _units(total)
    vector = variant.scheme != "ref"
    return finish(
        op_token=op_token(layer.op),
        variant=variant,
        isa=isa,
        template="host/unary.cpp.j2",
        params=dict(
            vector=vector,
            expr=layer_unary_expr(layer, "x" if vector else "x[i]", vector),
            total=total,
            block=block,
            units=units,
            parallel=parallel,
            unroll=variant.param("unroll", 1),
        ),
        inputs=(x,),
    )


def _unary_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return not graph.value(layer.inputs[0]).is_const


UNARY_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_unary, _unary_ok, 1, 64, (("unroll", 4),)),
    Variant("dense", ("avx2",), _fill_unary, _unary_ok, 1, 32, (("unroll", 4),)),
    Variant("dense", ("neon",), _fill_unary, _unary_ok, 1, 16, (("unroll", 4),)),
    Variant("ref", ("*",), _fill_unary, _unary_ok),
)


# ---------------------------------------------------------------------------------------------
# binary


def broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[int]:
    """Element strides of a contiguous `shape` read as `out_shape` (0 along broadcast dims)."""
    rank = len(out_shape)
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    strides, step = [0] * rank, 1
    for d in range(rank - 1, -1, -1):
        strides[d] = 0 if padded[d] == 1 else step
        step *= padded[d]
    return strides


def collapse(shape: tuple[int, ...], strides: list[list[int]]) -> tuple[list[int], list[list[int]]]:
    """Merge adjacent dims that every operand walks the same way (contiguously or broadcast),
    and drop size-1 dims; returns at least one dim."""
    dims = [(n, [s[d] for s in strides]) for d, n in enumerate(shape) if n != 1]
    if not dims:
        return [1], [[0] for _ in strides]
    out = [dims[0]]
    for n, st in dims[1:]:
        pn, pst = out[-1]
        if all(ps == s * n for ps, s in zip(pst, st, strict=True)):
            out[-1] = (pn * n, st)
        else:
            out.append((n, st))
    sizes = [n for n, _ in out]
    per_op = [[st[i] for _, st in out] for i in range(len(strides))]
    return sizes, per_op


_BINARY_VEC = {
    Op.ADD: "V::add(a, b)",
    Op.SUB: "V::sub(a, b)",
    Op.MUL: "V::mul(a, b)",
    Op.DIV: "V::div(a, b)",
    Op.MAX: "V::max(a, b)",
    Op.MIN: "V::min(a, b)",
    Op.PRELU: "npas::simd::prelu<V>(a, b)",
}
_BINARY_REF = {
    Op.ADD: "av + bv",
    Op.SUB: "av - bv",
    Op.MUL: "av * bv",
    Op.DIV: "av / bv",
    Op.MAX: "std::fmax(av, bv)",
    Op.MIN: "std::fmin(av, bv)",
    Op.POW: "std::pow(av, bv)",
    Op.PRELU: "npas::ref::prelu(av, bv)",
}
# POW by a constant scalar exponent: the exponents the vector kernel spells exactly.
_POW_VEC = {
    0.0: "V::set1(1.0f)",
    0.5: "V::sqrt(a)",
    1.0: "a",
    2.0: "V::mul(a, a)",
    3.0: "V::mul(V::mul(a, a), a)",
    -0.5: "V::div(V::set1(1.0f), V::sqrt(a))",
    -1.0: "V::div(V::set1(1.0f), a)",
    -2.0: "V::div(V::set1(1.0f), V::mul(a, a))",
}


def _pow_exponent(layer: Layer, graph: Graph) -> float | None:
    data = graph.const(layer.inputs[1])
    if data is None or data.size != 1:
        return None
    return float(data.reshape(()))


class _Broadcast:
    """A binary layer's operands resolved to LayerArgs pointers and collapsed strides."""

    def __init__(self, layer: Layer, graph: Graph) -> None:
        a, b = layer.inputs[0], layer.inputs[1]
        out_shape = graph.shape(layer.outputs[0])
        self.inputs = activation_inputs(layer, graph)
        self.ptrs, self.weights = operand_ptrs((a, b), graph, self.inputs)
        strides = [broadcast_strides(graph.shape(n), out_shape) for n in (a, b)]
        sizes, (sa, sb) = collapse(out_shape, strides)
        self.total = prod(out_shape)
        self.inner = sizes[-1]
        self.a_bc, self.b_bc = sa[-1] == 0, sb[-1] == 0
        self.outer_dims, self.a_strides, self.b_strides = sizes[:-1], sa[:-1], sb[:-1]

    @property
    def kind(self) -> str:
        """same | scalar | chan (one operand constant along the inner run) | bcast."""
        if not self.outer_dims:
            return "same" if not (self.a_bc or self.b_bc) else "scalar"
        if self.a_bc != self.b_bc:
            return "chan"
        return "bcast"


def _fill_binary(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    bc = _Broadcast(layer, graph)
    vector = variant.scheme != "ref"
    if vector:
        expr = (
            _POW_VEC[_pow_exponent(layer, graph)]  # type: ignore[index]
            if layer.op is Op.POW
            else _BINARY_VEC[layer.op]
        )
    else:
        expr = _BINARY_REF[layer.op]
    parallel = bc.total >= PARALLEL_MIN_ELEMENTS
    inner_block = min(bc.inner, _BLOCK) if parallel else bc.inner
    inner_blocks = -(-bc.inner // inner_block)
    suffix = "" if bc.kind == "same" else bc.kind
    return finish(
        op_token=op_token(layer.op) + suffix,
        variant=variant,
        isa=isa,
        template="host/binary.cpp.j2",
        params=dict(
            vector=vector,
            opname=layer.op.value,
            expr=expr,
            act=act_expr(layer.epilogue.act, "r", vector),
            inner=bc.inner,
            inner_block=inner_block,
            inner_blocks=inner_blocks,
            units=prod(bc.outer_dims) * inner_blocks,
            parallel=parallel,
            outer_dims=bc.outer_dims,
            a_strides=bc.a_strides,
            b_strides=bc.b_strides,
            a_bc=bc.a_bc,
            b_bc=bc.b_bc,
            a_ptr=bc.ptrs[0],
            b_ptr=bc.ptrs[1],
        ),
        epilogue=Epilogue(act=layer.epilogue.act),
        weights=bc.weights,
        inputs=bc.inputs,
    )


def _binary_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if layer.epilogue.residual or len(layer.inputs) != 2:
        return False
    return not all(graph.value(n).is_const for n in layer.inputs)


def _binary_vec_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if not (_binary_ok(layer, graph, isa) and is_vector_isa(isa)):
        return False
    if layer.op is Op.POW:
        return _pow_exponent(layer, graph) in _POW_VEC
    return layer.op in _BINARY_VEC


BINARY_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_binary, _binary_vec_ok, 1, 32),
    Variant("dense", ("avx2",), _fill_binary, _binary_vec_ok, 1, 16),
    Variant("dense", ("neon",), _fill_binary, _binary_vec_ok, 1, 8),
    Variant("ref", ("*",), _fill_binary, _binary_ok),
)


# ---------------------------------------------------------------------------------------------
# channel affine


def _fill_affine(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, scale, shift = layer.inputs[:3]
    shape = graph.shape(x)
    channels = shape[1] if len(shape) > 1 else 1
    batch = shape[0] if len(shape) > 1 else 1
    inner = prod(shape[2:])
    weights = [
        np.broadcast_to(np.asarray(graph.const(n), np.float32).reshape(-1), (channels,))
        for n in (scale, shift)
    ]
    return finish(
        op_token="channelaffine",
        variant=variant,
        isa=isa,
        template="host/channel_affine.cpp.j2",
        params=dict(
            vector=variant.scheme != "ref",
            batch=batch,
            channels=channels,
            inner=inner,
            units=batch * channels,
            parallel=prod(shape) >= PARALLEL_MIN_ELEMENTS,
        ),
        weights=weights,
        inputs=(x,),
    )


def _affine_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return len(layer.inputs) >= 3 and all(graph.value(n).is_const for n in layer.inputs[1:3])


AFFINE_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_affine, _affine_ok, 1, 16),
    Variant("dense", ("avx2",), _fill_affine, _affine_ok, 1, 8),
    Variant("dense", ("neon",), _fill_affine, _affine_ok, 1, 4),
    Variant("ref", ("*",), _fill_affine, _affine_ok),
)
