"""OpenCL reductions and softmax: REDUCE_MEAN/MAX/SUM and SOFTMAX (and, through fill_rows, the
global pools).

Both are shaped like the host does (npas/codegen/host/reduce.py): [outer, R, inner] with
adjacent kept / reduced dims collapsed. A reduction along contiguous rows (inner == 1) runs one
work-group per row, each work-item folding a strided part with float4 loads and a tree in local
memory combining them; with inner > 1 a work-item takes 4 adjacent inner columns and walks R.
Reductions whose axes do not collapse to that form use a plain strided kernel (scheme "ref").
"""

from __future__ import annotations

from npas.codegen.host.common import Variant
from npas.codegen.host.reduce import _MODE, _orik, softmax_orik, strided_walk
from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl.common import clfloat, finish_variant, global_1d
from npas.codegen.target import Isa
from npas.ir.attrs import AxisAttrs, ReduceAttrs
from npas.ir.graph import Graph, Layer

LANES = 4
# The work-group size of these kernels: the largest of a row reduction (a power of two, as the
# tree halves it), the size of the column and strided kernels.
ROW_GROUP = 64


def row_group(R: int, largest: int) -> int:
    """Work-items per row: enough for one float4 each, a power of two, at most `largest`
    (rows shorter than 4 * largest leave no work-item idle in the first fold)."""
    need = max(1, -(-R // LANES))
    group = 1
    while group < need and group < largest:
        group *= 2
    return group


def _largest(variant: Variant) -> int:
    group = int(variant.param("group", ROW_GROUP))
    if group < 1 or group & (group - 1):
        raise ValueError(f"row-reduction work-group size {group} must be a power of two")
    return group


def _row_launch(rows: int, group: int) -> tuple[tuple[int], tuple[int]]:
    """One work-group of `group` items per row."""
    return (max(rows, 1) * group,), (group,)


def fill_rows(
    *,
    op_token: str,
    mode: str,
    rows: int,
    R: int,
    x: str,
    variant: Variant,
    what: str,
) -> LayerKernel:
    """out[r] = mode (max | sum | mean) over the R contiguous elements of row r of `x`."""
    group = row_group(R, _largest(variant))
    return finish_variant(
        variant,
        op_token=op_token,
        template="opencl/reduce_rows.cl.j2",
        params=dict(
            what=what, mode=mode, rows=rows, R=R, group=group, scale=clfloat(1.0 / max(R, 1))
        ),
        inputs=(x,),
        launch=_row_launch(rows, group),
    )


# ---------------------------------------------------------------------------------------------
# REDUCE_*


def _fill_reduce(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    outer, R, inner = _orik(layer, graph)  # type: ignore[misc]
    mode = _MODE[layer.op]
    token = layer.op.value.replace("_", "")
    if inner == 1:
        return fill_rows(
            op_token=token, mode=mode, rows=outer, R=R, x=layer.inputs[0], variant=variant,
            what=f"reduce_{mode} along rows",
        )  # fmt: skip
    chunks = -(-inner // LANES)
    items = outer * chunks
    return finish_variant(
        variant,
        op_token=token,
        template="opencl/reduce_cols.cl.j2",
        params=dict(
            mode=mode,
            outer=outer,
            R=R,
            inner=inner,
            chunks=chunks,
            items=items,
            scale=clfloat(1.0 / R),
        ),
        inputs=(layer.inputs[0],),
        launch=global_1d(items, _largest(variant)),
    )


def _fill_reduce_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    walk = strided_walk(layer, graph)
    count = walk["reduced"]
    return finish_variant(
        variant,
        op_token=layer.op.value.replace("_", ""),
        template="opencl/reduce_ref.cl.j2",
        params=dict(walk, scale=clfloat(1.0 / max(count, 1))),
        inputs=(layer.inputs[0],),
        launch=global_1d(walk["units"], _largest(variant)),
    )


def _reduce_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return isinstance(layer.attrs, ReduceAttrs) and layer.epilogue.empty


def _reduce_orik_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return _reduce_ok(layer, graph, isa) and _orik(layer, graph) is not None


REDUCE_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("opencl",), _fill_reduce, _reduce_orik_ok, 1, LANES, (("group", ROW_GROUP),)),
    Variant("ref", ("opencl",), _fill_reduce_ref, _reduce_ok),
)


# ---------------------------------------------------------------------------------------------
# SOFTMAX


def _fill_softmax(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    outer, R, inner = softmax_orik(layer, graph)
    chunks = -(-inner // LANES)
    items = outer * chunks
    if inner == 1:
        group = row_group(R, _largest(variant))
        launch = _row_launch(outer, group)
    else:
        group = 0
        launch = global_1d(items, _largest(variant))
    return finish_variant(
        variant,
        op_token="softmax",
        template="opencl/softmax.cl.j2",
        params=dict(R=R, outer=outer, inner=inner, chunks=chunks, items=items, group=group),
        inputs=(layer.inputs[0],),
        launch=launch,
    )


def _softmax_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return isinstance(layer.attrs, AxisAttrs) and layer.epilogue.empty


SOFTMAX_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("opencl",), _fill_softmax, _softmax_ok, 1, LANES, (("group", ROW_GROUP),)),
)
