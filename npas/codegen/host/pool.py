"""Pooling kernels: MAXPOOL/AVGPOOL (pads, ceil_mode, count_include_pad, dilation) through the
shared window algorithm, and GLOBAL_AVGPOOL/GLOBAL_MAXPOOL as per-plane reductions."""

from __future__ import annotations

from npas.codegen.host.common import (
    PARALLEL_MIN_ELEMENTS,
    Variant,
    act_expr,
    finish,
    is_vector_isa,
    prod,
)
from npas.codegen.host.window import WindowGeom, fill_window
from npas.codegen.kernel import LayerKernel
from npas.codegen.naming import window_token
from npas.codegen.target import Isa
from npas.ir.attrs import Epilogue, PoolAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

_MODE = {Op.MAXPOOL: "max", Op.AVGPOOL: "avg", Op.GLOBAL_MAXPOOL: "max", Op.GLOBAL_AVGPOOL: "avg"}


def _geom(layer: Layer, graph: Graph) -> WindowGeom:
    a: PoolAttrs = layer.attrs
    N, C, H, W = graph.shape(layer.inputs[0])
    _, _, OH, OW = graph.shape(layer.outputs[0])
    return WindowGeom(N, C, H, W, OH, OW, *a.kernel, *a.stride, *a.dilation, *a.pads)


def _token(layer: Layer) -> str:
    a: PoolAttrs = layer.attrs
    return window_token(layer.op.value.replace("_", ""), a.kernel, a.stride, a.dilation)


def _pool_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        isinstance(layer.attrs, PoolAttrs)
        and len(graph.shape(layer.inputs[0])) == 4
        and not layer.epilogue.residual
    )


def _pool_vec_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return is_vector_isa(isa) and _pool_ok(layer, graph, isa)


def _fill_pool(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _geom(layer, graph)
    return fill_window(
        op_token=_token(layer),
        mode=_MODE[layer.op],
        geom=g,
        variant=variant,
        isa=isa,
        inputs=(layer.inputs[0],),
        epilogue=Epilogue(act=layer.epilogue.act),
        act=act_expr(layer.epilogue.act, "v", vector=True),
        count_include_pad=layer.attrs.count_include_pad,
    )


def _pool_ref_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return _pool_ok(layer, graph, isa) and layer.epilogue.act is None


def _fill_pool_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _geom(layer, graph)
    if layer.epilogue.act is not None:
        raise NotImplementedError("pooling with a fused activation")
    return finish(
        op_token=_token(layer),
        variant=variant,
        isa=isa,
        template="host/pool_ref.cpp.j2",
        params=dict(
            g.params(),
            mode=_MODE[layer.op],
            count_include_pad=layer.attrs.count_include_pad,
            units=g.N * g.C,
            parallel=True,
        ),
        inputs=(layer.inputs[0],),
    )


POOL_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_pool, _pool_vec_ok, 1, 64, (("unroll", 4),)),
    Variant("dense", ("avx2",), _fill_pool, _pool_vec_ok, 1, 32, (("unroll", 4),)),
    Variant("dense", ("neon",), _fill_pool, _pool_vec_ok, 8, 8, (("unroll", 2), ("rows", 8))),
    Variant("ref", ("*",), _fill_pool_ref, _pool_ref_ok),
)


def _fill_global(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    shape = graph.shape(layer.inputs[0])
    hw = prod(shape[2:])
    units = prod(shape[:2])
    return finish(
        op_token=layer.op.value.replace("_", ""),
        variant=variant,
        isa=isa,
        template="host/global_pool.cpp.j2",
        params=dict(
            vector=variant.scheme != "ref",
            mode=_MODE[layer.op],
            HW=hw,
            units=units,
            parallel=units * hw >= PARALLEL_MIN_ELEMENTS,
        ),
        inputs=(layer.inputs[0],),
    )


def _global_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return len(graph.shape(layer.inputs[0])) >= 2 and layer.epilogue.empty


GLOBAL_POOL_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_global, _global_ok, 1, 32),
    Variant("dense", ("avx2",), _fill_global, _global_ok, 1, 16),
    Variant("dense", ("neon",), _fill_global, _global_ok, 1, 8),
    Variant("ref", ("*",), _fill_global, _global_ok),
)
