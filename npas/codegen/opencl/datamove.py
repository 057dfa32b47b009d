"""OpenCL data-movement kernels: CONCAT, SPLIT, SLICE, TRANSPOSE, PAD, RESIZE.

The index arithmetic is the host's (npas/codegen/host/datamove.py): SLICE and TRANSPOSE are one
strided gather over collapsed output dims (`gather_plan`), CONCAT/SPLIT copy per-part blocks of
each outer row (`concat_blocks`), PAD maps output to source indices per dim (computed in the
kernel with the rules of `pad_map`), RESIZE reads the per-row/column source tables of
`resize_tables` (as program-scope __constant arrays named after the kernel, so the float32
coordinate rounding never depends on the driver). Every kernel writes 4 consecutive
output elements per work-item (a float4 where the source is contiguous).
"""

from __future__ import annotations

import numpy as np

from npas.codegen.host.common import Variant, activation_inputs, operand_ptrs, prod
from npas.codegen.host.datamove import (
    _concat_ok,
    _pad_ok,
    _resize_ok,
    _slice_ok,
    _split_ok,
    _strides,
    _transpose_ok,
    concat_blocks,
    gather_plan,
    resize_tables,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl.common import DEFAULT_GROUP, clfloat, finish_variant, global_1d
from npas.codegen.target import Isa
from npas.ir.attrs import PadAttrs, ResizeAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

LANES = 4


def _chunks(n: int) -> int:
    return -(-n // LANES)


def _finish(
    layer: Layer,
    variant: Variant,
    *,
    op_token: str,
    template: str,
    params: dict,
    items: int,
    inputs: tuple[str, ...],
    weights: list[np.ndarray] | None = None,
) -> LayerKernel:
    return finish_variant(
        variant,
        op_token=op_token,
        template=template,
        params=dict(params, items=items),
        inputs=inputs,
        launch=global_1d(items, int(variant.param("group", DEFAULT_GROUP))),
        n_out=len(layer.outputs),
        weights=weights or [],
    )


def _variants(fill, ok) -> tuple[Variant, ...]:
    return (Variant("dense", ("opencl",), fill, ok, 1, LANES, (("group", DEFAULT_GROUP),)),)


# ---------------------------------------------------------------------------------------------
# gather: SLICE, TRANSPOSE


def _fill_gather(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    dims, strides, base, what = gather_plan(layer, graph)
    inner = dims[-1]
    return _finish(
        layer,
        variant,
        op_token=layer.op.value,
        template="opencl/gather.cl.j2",
        params=dict(
            what=what,
            dims=dims,
            strides=strides,
            base=base,
            inner=inner,
            inner_stride=strides[-1],
            chunks=_chunks(inner),
        ),
        items=prod(dims[:-1]) * _chunks(inner),
        inputs=(layer.inputs[0],),
    )


SLICE_MANIFEST = _variants(_fill_gather, _slice_ok)
TRANSPOSE_MANIFEST = _variants(_fill_gather, _transpose_ok)


# ---------------------------------------------------------------------------------------------
# CONCAT, SPLIT


def _fill_concat(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    concat = layer.op is Op.CONCAT
    outer, blocks, offsets = concat_blocks(layer, graph)
    part_chunks = [_chunks(b) for b in blocks]
    chunk_ends = [int(v) for v in np.cumsum(part_chunks)]
    inputs = activation_inputs(layer, graph) if concat else (layer.inputs[0],)
    ptrs, weights = operand_ptrs(layer.inputs, graph, inputs, "w{}", "in{}") if concat else ([], [])
    row_chunks = max(sum(part_chunks), 1)
    return _finish(
        layer,
        variant,
        op_token=layer.op.value,
        template="opencl/concat.cl.j2",
        params=dict(
            concat=concat,
            outer=outer,
            blocks=blocks,
            offsets=offsets,
            part_chunks=part_chunks,
            chunk_ends=chunk_ends,
            row_chunks=row_chunks,
            ptrs=ptrs,
            total=sum(blocks),
        ),
        items=outer * sum(part_chunks),
        inputs=inputs,
        weights=weights,
    )


CONCAT_MANIFEST = _variants(_fill_concat, _concat_ok)
SPLIT_MANIFEST = _variants(_fill_concat, _split_ok)


# ---------------------------------------------------------------------------------------------
# PAD


def _fill_pad(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    a: PadAttrs = layer.attrs
    x = layer.inputs[0]
    in_shape = graph.shape(x)
    out_shape = graph.shape(layer.outputs[0])
    rank = len(in_shape)
    begins = list(a.pads[:rank])
    inner = out_shape[-1]
    # The contiguous middle of the last dim: output j reads source j - begin.
    mid_lo = max(begins[-1], 0)
    mid_hi = max(mid_lo, min(begins[-1] + in_shape[-1], inner))
    return _finish(
        layer,
        variant,
        op_token="pad" + a.mode,
        template="opencl/pad.cl.j2",
        params=dict(
            mode=a.mode,
            value=clfloat(a.value),
            in_shape=list(in_shape),
            out_shape=list(out_shape),
            in_strides=_strides(in_shape),
            begins=begins,
            inner=inner,
            mid_lo=mid_lo,
            mid_hi=mid_hi,
            chunks=_chunks(inner),
        ),
        items=prod(out_shape[:-1]) * _chunks(inner),
        inputs=(x,),
    )


PAD_MANIFEST = _variants(_fill_pad, _pad_ok)


# ---------------------------------------------------------------------------------------------
# RESIZE


def _interleave(first: list, second: list, fmt) -> list[str]:
    return [fmt(v) for pair in zip(first, second, strict=True) for v in pair]


def _fill_resize(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    a: ResizeAttrs = layer.attrs
    (N, C, H, W, OH, OW), t = resize_tables(layer, graph)
    params: dict = dict(
        mode=a.mode,
        coordinate_mode=a.coordinate_mode,
        nearest_mode=a.nearest_mode,
        planes=N * C,
        H=H,
        W=W,
        OH=OH,
        OW=OW,
        chunks=_chunks(OW),
    )
    if a.mode == "nearest":
        params.update(t)
    else:
        params.update(
            y01=_interleave(t["y0"], t["y1"], str),
            wy=_interleave(t["wy0"], t["wy1"], clfloat),
            x01=_interleave(t["x0"], t["x1"], str),
            wx=_interleave(t["wx0"], t["wx1"], clfloat),
        )
    return _finish(
        layer,
        variant,
        op_token="resize" + a.mode,
        template="opencl/resize.cl.j2",
        params=params,
        items=N * C * OH * _chunks(OW),
        inputs=(layer.inputs[0],),
    )


RESIZE_MANIFEST = _variants(_fill_resize, _resize_ok)
