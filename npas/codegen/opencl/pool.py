"""OpenCL pooling kernels: MAXPOOL/AVGPOOL (pads, ceil_mode, count_include_pad, dilation, an
optional fused activation) and GLOBAL_AVGPOOL/GLOBAL_MAXPOOL.

Windowed pools compute 4 consecutive outputs of one row per work-item (a float4; with stride 1
along W a tap of the 4 outputs is one LD4 of the input row away from the borders). The average
divisor is counted in the kernel with integer arithmetic, by the host's rule (host/window.py
`avg_divisors`): taps in the padding count with count_include_pad, taps beyond it never.
Global pools are row reductions over each (n, c) plane: one work-group per plane
(reduce.fill_rows).
"""

from __future__ import annotations

from npas.codegen.host.common import Variant, prod
from npas.codegen.host.pool import _MODE, _geom, _token
from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl.common import DEFAULT_GROUP, act_cl, finish_variant, global_1d
from npas.codegen.opencl.reduce import ROW_GROUP, fill_rows
from npas.codegen.target import Isa
from npas.ir.attrs import PoolAttrs
from npas.ir.graph import Graph, Layer

LANES = 4  # outputs along W per work-item


def _fill_pool(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _geom(layer, graph)
    a: PoolAttrs = layer.attrs
    chunks = -(-g.OW // LANES)
    items = g.N * g.C * g.OH * chunks
    cip = a.count_include_pad
    return finish_variant(
        variant,
        op_token=_token(layer),
        template="opencl/pool.cl.j2",
        params=dict(
            g.params(),
            mode=_MODE[layer.op],
            planes=g.N * g.C,
            chunks=chunks,
            items=items,
            lo_y=-g.PT if cip else 0,
            hi_y=g.H + g.PB if cip else g.H,
            lo_x=-g.PL if cip else 0,
            hi_x=g.W + g.PR if cip else g.W,
            act=act_cl(layer.epilogue.act, "r"),
        ),
        inputs=(layer.inputs[0],),
        launch=global_1d(items, int(variant.param("group", DEFAULT_GROUP))),
        epilogue=layer.epilogue,
    )


def _pool_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        isinstance(layer.attrs, PoolAttrs)
        and len(graph.shape(layer.inputs[0])) == 4
        and not layer.epilogue.residual
    )


POOL_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("opencl",), _fill_pool, _pool_ok, 1, LANES, (("group", DEFAULT_GROUP),)),
)


def _fill_global(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    shape = graph.shape(layer.inputs[0])
    return fill_rows(
        op_token=layer.op.value.replace("_", ""),
        mode="mean" if _MODE[layer.op] == "avg" else "max",
        rows=prod(shape[:2]),
        R=prod(shape[2:]),
        x=layer.inputs[0],
        variant=variant,
        what=f"global {_MODE[layer.op]} pooling",
    )


def _global_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return len(graph.shape(layer.inputs[0])) >= 2 and layer.epilogue.empty


GLOBAL_POOL_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("opencl",), _fill_global, _global_ok, 1, LANES, (("group", ROW_GROUP),)),
)
