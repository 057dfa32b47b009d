"""OpenCL data-movement kernels: CONCAT, SPLIT, SLICE, TRANSPOSE, PAD, RESIZE.

The index arithmetic is the host's (npas/codegen/host/datamove.py): SLICE and TRANSPOSE are one
strided gather over collapsed output dims (`collapse_gather`), CONCAT/SPLIT copy per-part blocks
of each outer row, PAD maps output to source indices per dim (computed in the kernel with the
rules of `pad_map`), RESIZE reads per-row/column source tables built by `resize_coords`,
`nearest_index` and `linear_taps` (as program-scope __constant arrays named after the kernel, so
the float32 coordinate rounding never depends on the driver). Every kernel writes 4 consecutive
output elements per work-item (a float4 where the source is contiguous).
"""

from __future__ import annotations

import numpy as np

from npas.codegen.host.common import Variant, activation_inputs, prod
from npas.codegen.host.datamove import (
    _concat_ok,
    _pad_ok,
    _resize_ok,
    _slice_ok,
    _split_ok,
    _strides,
    _transpose_ok,
    collapse_gather,
    linear_taps,
    nearest_index,
    resize_coords,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl.common import DEFAULT_GROUP, clfloat, finish_cl, global_1d
from npas.codegen.target import Isa
from npas.ir.attrs import PadAttrs, ResizeAttrs, SliceAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

LANES = 4


def _chunks(n: int) -> int:
    return -(-n // LANES)


def _launch(items: int, variant: Variant) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return global_1d(items, int(variant.param("group", DEFAULT_GROUP)))


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
    gs, ls = _launch(items, variant)
    return finish_cl(
        op_token=op_token,
        scheme=variant.scheme,
        template=template,
        params=dict(params, items=items),
        n_in=len(inputs),
        n_out=len(layer.outputs),
        global_size=gs,
        local_size=ls,
        weights=weights or [],
        inputs=inputs,
        tile=variant.tile,
        variant=dict(variant.params),
    )


def _variants(fill, ok) -> tuple[Variant, ...]:
    return (Variant("dense", ("opencl",), fill, ok, 1, LANES, (("group", DEFAULT_GROUP),)),)


# ---------------------------------------------------------------------------------------------
# gather: SLICE, TRANSPOSE


def _fill_gather(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x = layer.inputs[0]
    in_strides = _strides(graph.shape(x))
    out_shape = graph.shape(layer.outputs[0])
    if layer.op is Op.TRANSPOSE:
        perm = layer.attrs.perm
        strides = [in_strides[p] for p in perm]
        base = 0
        what = f"transpose perm={list(perm)}"
    else:
        a: SliceAttrs = layer.attrs
        strides = [s * st for s, st in zip(in_strides, a.steps, strict=True)]
        base = sum(s * st for s, st in zip(in_strides, a.starts, strict=True))
        what = f"slice starts={list(a.starts)} steps={list(a.steps)}"
    dims, strides = collapse_gather(list(out_shape), strides)
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
        inputs=(x,),
    )


SLICE_MANIFEST = _variants(_fill_gather, _slice_ok)
TRANSPOSE_MANIFEST = _variants(_fill_gather, _transpose_ok)


# ---------------------------------------------------------------------------------------------
# CONCAT, SPLIT


def _fill_concat(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    concat = layer.op is Op.CONCAT
    axis = layer.attrs.axis
    whole = graph.shape(layer.outputs[0] if concat else layer.inputs[0])
    parts = layer.inputs if concat else layer.outputs
    outer = prod(whole[:axis])
    inner = prod(whole[axis + 1 :])
    blocks = [graph.shape(p)[axis] * inner for p in parts]
    offsets = [int(v) for v in np.cumsum([0, *blocks[:-1]])]
    part_chunks = [_chunks(b) for b in blocks]
    chunk_ends = [int(v) for v in np.cumsum(part_chunks)]
    inputs = activation_inputs(layer, graph) if concat else (layer.inputs[0],)
    weights: list[np.ndarray] = []
    ptrs: list[str] = []
    if concat:
        for p in parts:
            value = graph.value(p)
            if value.is_const:
                ptrs.append(f"w{len(weights)}")
                weights.append(np.asarray(value.data, np.float32).reshape(-1))
            else:
                ptrs.append(f"in{inputs.index(p)}")
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
    x = layer.inputs[0]
    N, C, H, W = graph.shape(x)
    _, _, OH, OW = graph.shape(layer.outputs[0])
    cy = resize_coords(H, OH, a.scales[0], a.coordinate_mode)
    cx = resize_coords(W, OW, a.scales[1], a.coordinate_mode)
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
        params.update(
            iy=nearest_index(cy, H, a.nearest_mode), ix=nearest_index(cx, W, a.nearest_mode)
        )
    else:
        y0, y1, wy0, wy1 = linear_taps(cy, H)
        x0, x1, wx0, wx1 = linear_taps(cx, W)
        params.update(
            y01=_interleave(y0, y1, str),
            wy=_interleave(wy0, wy1, clfloat),
            x01=_interleave(x0, x1, str),
            wx=_interleave(wx0, wx1, clfloat),
        )
    return _finish(
        layer,
        variant,
        op_token="resize" + a.mode,
        template="opencl/resize.cl.j2",
        params=params,
        items=N * C * OH * _chunks(OW),
        inputs=(x,),
    )


RESIZE_MANIFEST = _variants(_fill_resize, _resize_ok)
