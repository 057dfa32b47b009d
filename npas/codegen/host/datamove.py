"""Data movement kernels: CONCAT, SPLIT, SLICE, TRANSPOSE, PAD, RESIZE.

SLICE and TRANSPOSE are one strided gather (gather.cpp.j2): Python turns the op into collapsed
output dims with source strides and a base offset, so the kernel is a loop nest of constants
whose contiguous inner runs become memcpy. Vector variants use memcpy/vector copies for
contiguous runs; reference variants are element loops.
"""

from __future__ import annotations

import numpy as np

from npas.codegen.host.common import (
    PARALLEL_MIN_ELEMENTS,
    Variant,
    activation_inputs,
    finish,
    operand_ptrs,
    prod,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.target import Isa
from npas.ir.attrs import AxisAttrs, PadAttrs, ResizeAttrs, SliceAttrs, SplitAttrs, TransposeAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op


def _strides(shape: tuple[int, ...]) -> list[int]:
    out, step = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        out[d] = step
        step *= shape[d]
    return out


def _vec(variant: Variant) -> bool:
    return variant.scheme != "ref"


def _variants(fill, ok):
    """The copy-based vector variant per vector ISA, then the reference (same filler)."""
    return (
        Variant("dense", ("avx512",), fill, ok, 1, 16),
        Variant("dense", ("avx2",), fill, ok, 1, 8),
        Variant("dense", ("neon",), fill, ok, 1, 4),
        Variant("ref", ("*",), fill, ok),
    )


def _no_epilogue(layer: Layer) -> bool:
    return layer.epilogue.empty


# ---------------------------------------------------------------------------------------------
# gather: SLICE, TRANSPOSE


def collapse_gather(dims: list[int], strides: list[int]) -> tuple[list[int], list[int]]:
    pairs = [(n, s) for n, s in zip(dims, strides, strict=True) if n != 1]
    if not pairs:
        return [1], [1]
    out = [pairs[0]]
    for n, s in pairs[1:]:
        pn, ps = out[-1]
        if ps == s * n:
            out[-1] = (pn * n, s)
        else:
            out.append((n, s))
    return [n for n, _ in out], [s for _, s in out]


def gather_plan(layer: Layer, graph: Graph) -> tuple[list[int], list[int], int, str]:
    """A SLICE or TRANSPOSE as one strided gather: (collapsed output dims, the source stride
    of each, the source offset of the first element, a description for the kernel's header)."""
    in_strides = _strides(graph.shape(layer.inputs[0]))
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
    return dims, strides, base, what


def _fill_gather(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x = layer.inputs[0]
    out_shape = graph.shape(layer.outputs[0])
    dims, strides, base, what = gather_plan(layer, graph)
    rows = prod(dims[:-1])
    return finish(
        op_token=layer.op.value,
        variant=variant,
        isa=isa,
        template="host/gather.cpp.j2",
        params=dict(
            vector=_vec(variant),
            what=what,
            dims=dims,
            strides=strides,
            base=base,
            units=rows,
            parallel=prod(out_shape) >= PARALLEL_MIN_ELEMENTS and rows > 1,
        ),
        inputs=(x,),
    )


def _slice_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    a = layer.attrs
    rank = len(graph.shape(layer.inputs[0]))
    return (
        isinstance(a, SliceAttrs)
        and len(a.starts) == rank
        and len(a.steps) == rank
        and _no_epilogue(layer)
        and not graph.value(layer.inputs[0]).is_const
    )


def _transpose_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        isinstance(layer.attrs, TransposeAttrs)
        and _no_epilogue(layer)
        and not graph.value(layer.inputs[0]).is_const
    )


SLICE_MANIFEST = _variants(_fill_gather, _slice_ok)
TRANSPOSE_MANIFEST = _variants(_fill_gather, _transpose_ok)


# ---------------------------------------------------------------------------------------------
# CONCAT, SPLIT


def concat_blocks(layer: Layer, graph: Graph) -> tuple[int, list[int], list[int]]:
    """CONCAT / SPLIT as `outer` rows of the whole tensor, each the parts' blocks in order:
    (outer, the elements of each part's block, the offset of each block in a row)."""
    concat = layer.op is Op.CONCAT
    axis = layer.attrs.axis
    whole = graph.shape(layer.outputs[0] if concat else layer.inputs[0])
    parts = layer.inputs if concat else layer.outputs
    inner = prod(whole[axis + 1 :])
    blocks = [graph.shape(p)[axis] * inner for p in parts]
    offsets = [int(v) for v in np.cumsum([0, *blocks[:-1]])]
    return prod(whole[:axis]), blocks, offsets


def _fill_concat(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    concat = layer.op is Op.CONCAT
    outer, blocks, offsets = concat_blocks(layer, graph)
    inputs = activation_inputs(layer, graph)
    ptrs, weights = operand_ptrs(layer.inputs, graph, inputs) if concat else ([], [])
    return finish(
        op_token=layer.op.value,
        variant=variant,
        isa=isa,
        template="host/concat.cpp.j2",
        params=dict(
            vector=_vec(variant),
            concat=concat,
            outer=outer,
            blocks=blocks,
            offsets=offsets,
            ptrs=ptrs,
            total=sum(blocks),
            units=outer,
            parallel=outer > 1 and outer * sum(blocks) >= PARALLEL_MIN_ELEMENTS,
        ),
        weights=weights,
        inputs=inputs,
    )


def _concat_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        isinstance(layer.attrs, AxisAttrs)
        and _no_epilogue(layer)
        and len(activation_inputs(layer, graph)) >= 1
    )


def _split_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        isinstance(layer.attrs, SplitAttrs | AxisAttrs)
        and _no_epilogue(layer)
        and not graph.value(layer.inputs[0]).is_const
    )


CONCAT_MANIFEST = _variants(_fill_concat, _concat_ok)
SPLIT_MANIFEST = _variants(_fill_concat, _split_ok)


# ---------------------------------------------------------------------------------------------
# PAD


def pad_map(n_in: int, begin: int, n_out: int, mode: str) -> list[int]:
    """Source index of each output index along one dim (-1: constant)."""
    out = []
    for o in range(n_out):
        i = o - begin
        if 0 <= i < n_in:
            out.append(i)
        elif mode == "constant":
            out.append(-1)
        elif mode == "edge":
            out.append(min(max(i, 0), n_in - 1))
        elif mode == "reflect":
            if n_in == 1:
                out.append(0)
                continue
            period = 2 * (n_in - 1)
            j = i % period
            out.append(j if j < n_in else period - j)
        else:
            raise NotImplementedError(f"pad mode {mode!r}")
    return out


def _fill_pad(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    a: PadAttrs = layer.attrs
    x = layer.inputs[0]
    in_shape = graph.shape(x)
    out_shape = graph.shape(layer.outputs[0])
    rank = len(in_shape)
    begins = a.pads[:rank]
    maps: list[int] = []
    offsets = []
    for d in range(rank):
        offsets.append(len(maps))
        maps += pad_map(in_shape[d], begins[d], out_shape[d], a.mode)
    last = maps[offsets[-1] :]
    # The contiguous middle of the last dim: output j reads source j - begin.
    mid = [j for j, s in enumerate(last) if s == j - begins[-1] and s >= 0]
    mid_lo, mid_hi = (mid[0], mid[-1] + 1) if mid else (0, 0)
    rows = prod(out_shape[:-1])
    return finish(
        op_token="pad" + a.mode,
        variant=variant,
        isa=isa,
        template="host/pad.cpp.j2",
        params=dict(
            vector=_vec(variant),
            mode=a.mode,
            in_shape=list(in_shape),
            out_shape=list(out_shape),
            in_strides=_strides(in_shape),
            maps=maps,
            map_offsets=offsets,
            mid_lo=mid_lo,
            mid_hi=mid_hi,
            mid_src=mid_lo - begins[-1] if mid else 0,
            value=a.value,
            units=rows,
            parallel=prod(out_shape) >= PARALLEL_MIN_ELEMENTS and rows > 1,
        ),
        inputs=(x,),
    )


def _pad_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return (
        isinstance(layer.attrs, PadAttrs)
        and layer.attrs.mode in ("constant", "reflect", "edge")
        and _no_epilogue(layer)
        and not graph.value(layer.inputs[0]).is_const
        and len(graph.shape(layer.inputs[0])) >= 1
    )


PAD_MANIFEST = _variants(_fill_pad, _pad_ok)


# ---------------------------------------------------------------------------------------------
# RESIZE

_COORD_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nearest",
)


def resize_coords(n_in: int, n_out: int, scale: float, mode: str) -> np.ndarray:
    """x_original of every output index, as ONNX Resize defines it (float32 arithmetic)."""
    f32 = np.float32
    x = np.arange(n_out, dtype=f32)
    s = f32(scale)
    if mode == "half_pixel":
        return (x + f32(0.5)) / s - f32(0.5)
    if mode == "half_pixel_symmetric":
        adjustment = f32(n_out) / (s * f32(n_in))
        center = f32(n_in) / f32(2)
        offset = center * (f32(1) - adjustment)
        return offset + (x + f32(0.5)) / s - f32(0.5)
    if mode == "pytorch_half_pixel":
        return (x + f32(0.5)) / s - f32(0.5) if n_out > 1 else np.zeros(n_out, f32)
    if mode == "align_corners":
        if n_out == 1:
            return np.zeros(1, f32)
        return x * f32(n_in - 1) / f32(n_out - 1)
    if mode == "asymmetric":
        return x / s
    if mode == "tf_half_pixel_for_nearest":
        return (x + f32(0.5)) / s
    raise NotImplementedError(f"Resize coordinate_transformation_mode {mode!r}")


def nearest_index(coords: np.ndarray, n_in: int, nearest_mode: str) -> list[int]:
    c = coords.astype(np.float64)
    fl = np.floor(c)
    if nearest_mode == "round_prefer_floor":
        idx = np.where(c - fl == 0.5, fl, np.round(c))
    elif nearest_mode == "round_prefer_ceil":
        idx = np.where(c - fl == 0.5, fl + 1, np.round(c))
    elif nearest_mode == "floor":
        idx = fl
    elif nearest_mode == "ceil":
        idx = np.ceil(c)
    else:
        raise NotImplementedError(f"Resize nearest_mode {nearest_mode!r}")
    return [int(v) for v in np.clip(idx, 0, n_in - 1)]


def linear_taps(coords: np.ndarray, n_in: int) -> tuple[list[int], list[int], list, list]:
    c = np.clip(coords.astype(np.float32), 0, n_in - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (c - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1) - w1).astype(np.float32)
    return i0.tolist(), i1.tolist(), w0.tolist(), w1.tolist()


def resize_tables(layer: Layer, graph: Graph) -> tuple[tuple[int, ...], dict[str, list]]:
    """A RESIZE's (N, C, H, W, OH, OW) and its per-output source tables: nearest: iy, ix (the
    source row / column); linear: y0, y1, wy0, wy1 and x0, x1, wx0, wx1 (the two source rows /
    columns and their weights)."""
    a: ResizeAttrs = layer.attrs
    N, C, H, W = graph.shape(layer.inputs[0])
    _, _, OH, OW = graph.shape(layer.outputs[0])
    cy = resize_coords(H, OH, a.scales[0], a.coordinate_mode)
    cx = resize_coords(W, OW, a.scales[1], a.coordinate_mode)
    if a.mode == "nearest":
        tables = dict(
            iy=nearest_index(cy, H, a.nearest_mode), ix=nearest_index(cx, W, a.nearest_mode)
        )
    else:
        y0, y1, wy0, wy1 = linear_taps(cy, H)
        x0, x1, wx0, wx1 = linear_taps(cx, W)
        tables = dict(y0=y0, y1=y1, wy0=wy0, wy1=wy1, x0=x0, x1=x1, wx0=wx0, wx1=wx1)
    return (N, C, H, W, OH, OW), tables


def _fill_resize(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    a: ResizeAttrs = layer.attrs
    x = layer.inputs[0]
    (N, C, H, W, OH, OW), tables = resize_tables(layer, graph)
    params: dict = dict(
        tables,
        vector=_vec(variant),
        mode=a.mode,
        coordinate_mode=a.coordinate_mode,
        nearest_mode=a.nearest_mode,
        H=H,
        W=W,
        OH=OH,
        OW=OW,
        units=N * C,
        parallel=N * C > 1 and N * C * OH * OW >= PARALLEL_MIN_ELEMENTS,
    )
    scratch = 0
    if a.mode == "nearest":
        token = "resizenearest"
    else:
        row = -(-OW // 16) * 16
        params.update(row_floats=row, scratch_floats=2 * row)
        scratch = 4 * 2 * row
        token = "resizelinear"
    return finish(
        op_token=token,
        variant=variant,
        isa=isa,
        template="host/resize.cpp.j2",
        params=params,
        inputs=(x,),
        scratch_bytes_per_thread=scratch,
    )


def _resize_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    a = layer.attrs
    return (
        isinstance(a, ResizeAttrs)
        and a.mode in ("nearest", "linear")
        and a.coordinate_mode in _COORD_MODES
        and len(graph.shape(layer.inputs[0])) == 4
        and _no_epilogue(layer)
    )


RESIZE_MANIFEST = _variants(_fill_resize, _resize_ok)
