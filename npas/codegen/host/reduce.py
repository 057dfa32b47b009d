"""Reductions and normalisation: SOFTMAX and REDUCE_MEAN/MAX/SUM.

Both are shaped by Python into [outer, R, inner] (collapsing adjacent kept / reduced dims); the
vector kernels reduce along R with vectors over R (inner == 1) or over inner. Reductions whose
axes do not collapse to that form (e.g. reducing dims 0 and 2 of 3) use the reference, which
walks any set of axes with strides.
"""

from __future__ import annotations

from typing import Any

from npas.codegen.host.common import (
    PARALLEL_MIN_ELEMENTS,
    Variant,
    finish,
    is_vector_isa,
    prod,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.target import Isa
from npas.ir.attrs import AxisAttrs, ReduceAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

_MODE = {Op.REDUCE_MEAN: "mean", Op.REDUCE_MAX: "max", Op.REDUCE_SUM: "sum"}


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, step = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = step
        step *= shape[d]
    return out


def reduce_runs(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[tuple[int, bool]]:
    """(size, reduced) runs after dropping size-1 dims and merging neighbours of one kind."""
    rank = len(shape)
    red = {a % rank for a in axes} if axes else set(range(rank))
    runs: list[tuple[int, bool]] = []
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if runs and runs[-1][1] == (d in red):
            runs[-1] = (runs[-1][0] * n, d in red)
        else:
            runs.append((n, d in red))
    return runs


def _orik(layer: Layer, graph: Graph) -> tuple[int, int, int] | None:
    """(outer, R, inner) when the reduction has that form."""
    runs = reduce_runs(graph.shape(layer.inputs[0]), layer.attrs.axes)
    kinds = tuple(r for _, r in runs)
    sizes = [n for n, _ in runs]
    forms = {
        (): (1, 1, 1),
        (True,): (1, *sizes, 1),
        (False, True): (*sizes, 1),
        (True, False): (1, *sizes),
        (False, True, False): tuple(sizes),
    }
    if kinds == (False,):
        return (sizes[0], 1, 1)
    return forms.get(kinds)  # type: ignore[return-value]


def _reduce_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return isinstance(layer.attrs, ReduceAttrs) and layer.epilogue.empty


def _reduce_vec_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return is_vector_isa(isa) and _reduce_ok(layer, graph, isa) and _orik(layer, graph) is not None


def _fill_reduce(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    outer, R, inner = _orik(layer, graph)  # type: ignore[misc]
    mode = _MODE[layer.op]
    total = outer * R * inner
    if inner == 1:
        units, inner_block, inner_blocks = outer, 1, 1
    else:
        inner_block = min(inner, 1024)
        inner_blocks = -(-inner // inner_block)
        units = outer * inner_blocks
    return finish(
        op_token=layer.op.value.replace("_", ""),
        variant=variant,
        isa=isa,
        template="host/reduce.cpp.j2",
        params=dict(
            mode=mode,
            outer=outer,
            R=R,
            inner=inner,
            inner_block=inner_block,
            inner_blocks=inner_blocks,
            scale=1.0 / R if mode == "mean" else 1.0,
            units=units,
            parallel=units > 1 and total >= PARALLEL_MIN_ELEMENTS,
        ),
        inputs=(layer.inputs[0],),
    )


def strided_walk(layer: Layer, graph: Graph) -> dict[str, Any]:
    """The reference kernels' view of a reduction over any axes: the kept and the reduced
    dims with their input strides, the reduced count and the kept count (`units`)."""
    shape = graph.shape(layer.inputs[0])
    rank = len(shape)
    axes = layer.attrs.axes
    red = {a % rank for a in axes} if axes else set(range(rank))
    strides = _strides(shape)
    kept = [(shape[d], strides[d]) for d in range(rank) if d not in red]
    reduced = [(shape[d], strides[d]) for d in range(rank) if d in red]
    return dict(
        mode=_MODE[layer.op],
        kept_dims=[n for n, _ in kept],
        kept_strides=[s for _, s in kept],
        red_dims=[n for n, _ in reduced],
        red_strides=[s for _, s in reduced],
        reduced=prod([n for n, _ in reduced]),
        units=prod([n for n, _ in kept]),
    )


def _fill_reduce_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    walk = strided_walk(layer, graph)
    return finish(
        op_token=layer.op.value.replace("_", ""),
        variant=variant,
        isa=isa,
        template="host/reduce_ref.cpp.j2",
        params=dict(walk, parallel=walk["units"] > 1),
        inputs=(layer.inputs[0],),
    )


REDUCE_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_reduce, _reduce_vec_ok, 1, 32),
    Variant("dense", ("avx2",), _fill_reduce, _reduce_vec_ok, 1, 16),
    Variant("dense", ("neon",), _fill_reduce, _reduce_vec_ok, 1, 8),
    Variant("ref", ("*",), _fill_reduce_ref, _reduce_ok),
)


def softmax_orik(layer: Layer, graph: Graph) -> tuple[int, int, int]:
    """(outer, R, inner) of a SOFTMAX: the dims before, along and after its axis."""
    shape = graph.shape(layer.inputs[0])
    axis = layer.attrs.axis % len(shape)
    return prod(shape[:axis]), shape[axis], prod(shape[axis + 1 :])


def _fill_softmax(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    outer, R, inner = softmax_orik(layer, graph)
    return finish(
        op_token="softmax",
        variant=variant,
        isa=isa,
        template="host/softmax.cpp.j2",
        params=dict(
            vector=variant.scheme != "ref",
            R=R,
            outer=outer,
            inner=inner,
            units=outer,
            parallel=outer > 1 and outer * R * inner >= PARALLEL_MIN_ELEMENTS,
        ),
        inputs=(layer.inputs[0],),
    )


def _softmax_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return isinstance(layer.attrs, AxisAttrs) and layer.epilogue.empty


SOFTMAX_MANIFEST: tuple[Variant, ...] = (
    Variant(
        "dense",
        ("avx512",),
        _fill_softmax,
        _softmax_ok,
        1,
        16,
    ),
    Variant(
        "dense",
        ("avx2",),
        _fill_softmax,
        _softmax_ok,
        1,
        8,
    ),
    Variant("dense", ("neon",), _fill_softmax, _softmax_ok, 1, 4),
    Variant("ref", ("*",), _fill_softmax, _softmax_ok),
)
