"""OpenCL convolution-like kernels: CONV2D (1x1 GEMM, direct with groups/strides/dilation/pads,
depthwise), CONV_TRANSPOSE2D, DENSE and MATMUL, each with a plain one-output-per-work-item
reference kernel (the on-device oracle, and a fallback for the tuner).

Layouts are chosen for mobile GPUs. A work-item of the convolutions computes 4 output channels
x 4 consecutive outputs along a row: weights are packed by 4 filters (pack_filters4), so one
LD4 fetches a tap of 4 filters and each tap is 16 multiply-adds on float4 accumulators held per
filter, which are then stored with one ST4 per filter. Depthwise computes 4 outputs along a row
of one channel. Inputs are read as "row segments": the span of a row that a quad's taps touch
is loaded once per (input channel, kernel row), with LD4 chunks away from the borders. DENSE and
MATMUL share one GEMM kernel: 4 consecutive columns x up to 4 rows per work-item, and for
layers with few output tiles (batch-1 FC layers) the lanes of a work-group split K.

The layer queries and geometry are the host family's (npas.codegen.host.conv), so both serve
exactly the same layers with the same semantics; work-group shapes come from one function,
`work_sizes`, driven by the variants' tunable params.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from npas.codegen.host.common import Variant, prod
from npas.codegen.host.conv import (
    _batch_strides,
    _convt_ok,
    _convt_parts,
    _convt_token,
    _dense_ok,
    _dense_parts,
    _is_conv,
    _is_direct,
    _matmul_ok,
    _matmul_operands,
    conv_geom,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl import sparse_conv
from npas.codegen.opencl.common import (
    DEFAULT_GROUP,
    act_cl,
    finish_variant,
    global_1d,
    pack_filters4,
    pad4,
    round_up,
)
from npas.codegen.target import Isa
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

ISAS = ("opencl",)
# Mobile GPUs run 64-item work-groups well everywhere; along a row 16 quads (64 outputs) share
# one filter block's weights while the other 4 rows of the group reuse those inputs' cache lines.
_CONV_PARAMS = (("group", DEFAULT_GROUP), ("lx", 16))
_DW_PARAMS = (("group", DEFAULT_GROUP), ("lx", DEFAULT_GROUP))
# GEMM: K-split lanes until the output tiles times the lanes reach `busy` work-items.
_GEMM_PARAMS = (("group", DEFAULT_GROUP), ("ksplit_max", 16), ("busy", 1024))
_REF_PARAMS = (("group", DEFAULT_GROUP),)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def work_sizes(
    items: Sequence[int], variant: Variant, first: int = 0
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global, local) sizes covering items[d] work-items along each dimension, with
    work-groups of the variant's `group` items: dimension 0 takes up to `lx` of them (the
    outputs along a row, which share weights and overlapping inputs), the next dimensions the
    rest, in order. `first` fixes dimension 0's local size (the GEMM's K-split lanes). Every
    kernel guards the items past its real range."""
    room = variant.param("group", DEFAULT_GROUP)
    local = []
    for d, n in enumerate(items):
        if d == 0 and first:
            size = first
        else:
            cap = min(room, variant.param("lx", room)) if d == 0 else room
            size = min(cap, _pow2_at_least(n))
        size = max(1, size)
        local.append(size)
        room = max(1, room // size)
    glob = tuple(round_up(n, size) for n, size in zip(items, local, strict=True))
    return glob, tuple(local)


# ---------------------------------------------------------------------------------------------
# Row segments (what a quad of outputs reads from one input row)


@dataclass(frozen=True)
class RowPlan:
    seg: tuple[int, ...]  # offsets past ix0 that some lane's tap reads
    chunks: tuple[int, ...]  # LD4 chunks (offset // 4) covering them, for interior quads
    lanes: tuple[tuple[int, ...], ...]  # per tap kx: the 4 lanes' offsets
    wguard: bool  # some quad touches the padding or reads past the row end

    def params(self) -> dict[str, Any]:
        return {
            "seg": self.seg,
            "chunks": self.chunks,
            "lanes": self.lanes,
            "wguard": self.wguard,
        }


def _row_plan(lanes: list[list[int]], lo: int, hi: int, width: int) -> RowPlan:
    """The segment of taps `lanes` for quads whose first read column ix0 runs over [lo, hi]
    in a row of `width`: quads need per-element guards unless every one of them reads whole
    LD4 chunks inside the row."""
    seg = sorted({o for taps in lanes for o in taps})
    chunks = sorted({o // 4 for o in seg})
    wguard = lo < 0 or hi + 4 * (chunks[-1] + 1) > width
    return RowPlan(tuple(seg), tuple(chunks), tuple(tuple(t) for t in lanes), wguard)


# ---------------------------------------------------------------------------------------------
# CONV2D


def _pack_groups(weight: np.ndarray, groups: int) -> np.ndarray:
    """[F, ...] -> per group, filters packed by 4: [G * ceil(Fg/4), ..., 4]."""
    return np.concatenate([pack_filters4(part) for part in np.split(weight, groups)])


def _pad_groups(bias: np.ndarray, groups: int) -> np.ndarray:
    return np.concatenate([pad4(part) for part in np.split(bias, groups)])


def _conv_family(layer: Layer, graph: Graph) -> str:
    g = conv_geom(layer, graph)
    return "dwconv" if g.depthwise else ("conv" if g.G == 1 else "gconv")


def _conv_common(layer: Layer, graph: Graph) -> dict[str, Any]:
    g = conv_geom(layer, graph)
    return dict(
        g.params(),
        FB=_ceil(g.Fg, 4),
        OWB=_ceil(g.OW, 4),
        residual=g.residual is not None,
        act=act_cl(layer.epilogue.act, "v"),
        hguard=g.PT > 0 or (g.OH - 1) * g.SH + (g.KH - 1) * g.DH - g.PT >= g.H,
        tail=g.OW % 4 != 0,
        ftail=g.Fg % 4 != 0,
    )


def _finish_conv(
    layer: Layer,
    graph: Graph,
    variant: Variant,
    template: str,
    params: dict[str, Any],
    launch: tuple[tuple[int, ...], tuple[int, ...]],
    weight: np.ndarray,
) -> LayerKernel:
    """A filter-blocked CONV2D kernel: weights packed by 4 filters per group."""
    g = conv_geom(layer, graph)
    return finish_variant(
        variant,
        op_token=g.op_token(_conv_family(layer, graph)),
        template=template,
        params=params,
        inputs=g.inputs,
        launch=launch,
        epilogue=layer.epilogue,
        weights=(_pack_groups(weight, g.G), _pad_groups(g.bias, g.G)),
        macs=g.macs,
    )


def _fill_conv_direct(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    p = _conv_common(layer, graph)
    lanes = [[j * g.SW + kx * g.DW for j in range(4)] for kx in range(g.KW)]
    p.update(_row_plan(lanes, -g.PL, (p["OWB"] - 1) * 4 * g.SW - g.PL, g.W).params())
    launch = work_sizes((p["OWB"] * g.OH, g.G * p["FB"], g.N), variant)
    return _finish_conv(layer, graph, variant, "opencl/conv_direct.cl.j2", p, launch, g.weight)


def _fill_conv1x1(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    p = _conv_common(layer, graph)
    p.update(P=g.P, PQ=_ceil(g.P, 4), tail=g.P % 4 != 0)
    launch = work_sizes((p["PQ"], g.G * p["FB"], g.N), variant)
    weight = g.weight.reshape(g.F, g.Cg)
    return _finish_conv(layer, graph, variant, "opencl/conv_1x1.cl.j2", p, launch, weight)


def _fill_dwconv(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    p = _conv_common(layer, graph)
    lanes = [[j * g.SW + kx * g.DW for j in range(4)] for kx in range(g.KW)]
    p.update(_row_plan(lanes, -g.PL, (p["OWB"] - 1) * 4 * g.SW - g.PL, g.W).params())
    return finish_variant(
        variant,
        op_token=g.op_token("dwconv"),
        template="opencl/conv_dw.cl.j2",
        params=p,
        inputs=g.inputs,
        launch=work_sizes((p["OWB"] * g.OH, g.N * g.C), variant),
        epilogue=layer.epilogue,
        weights=(g.weight.reshape(g.C, g.KH * g.KW), g.bias),
        macs=g.macs,
    )


def _fill_conv_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    return finish_variant(
        variant,
        op_token=g.op_token(_conv_family(layer, graph)),
        template="opencl/conv_ref.cl.j2",
        params=dict(
            g.params(), residual=g.residual is not None, act=act_cl(layer.epilogue.act, "acc")
        ),
        inputs=g.inputs,
        launch=global_1d(g.N * g.F * g.P, variant.param("group", DEFAULT_GROUP)),
        epilogue=layer.epilogue,
        weights=(g.weight, g.bias),
        macs=g.macs,
    )


def _dwconv_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return _is_conv(layer, graph) and conv_geom(layer, graph).depthwise


def _conv1x1_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return _is_conv(layer, graph) and _is_direct(conv_geom(layer, graph))


def _conv_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return _is_conv(layer, graph)


CONV2D_MANIFEST: tuple[Variant, ...] = (
    *sparse_conv.CONV2D_VARIANTS,  # pruned layers, where their cost model expects a gain
    Variant("dense", ISAS, _fill_dwconv, _dwconv_ok, 1, 4, _DW_PARAMS),
    Variant("dense", ISAS, _fill_conv1x1, _conv1x1_ok, 4, 4, _CONV_PARAMS),
    Variant("dense", ISAS, _fill_conv_direct, _conv_ok, 4, 4, _CONV_PARAMS),
    Variant("ref", ISAS, _fill_conv_ref, _conv_ok, params=_REF_PARAMS),
)


# ---------------------------------------------------------------------------------------------
# CONV_TRANSPOSE2D


def _convt_macs(g: dict[str, Any]) -> int:
    return g["N"] * g["F"] * g["KH"] * g["KW"] * g["Cg"] * g["H"] * g["W"]


def _fill_convt(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual, g = _convt_parts(layer, graph)
    G, Cg, Fg, KW, DW = g["G"], g["Cg"], g["Fg"], g["KW"], g["DW"]
    FB, OWB = _ceil(Fg, 4), _ceil(g["OW"], 4)
    params: dict[str, Any] = dict(
        g,
        FB=FB,
        OWB=OWB,
        residual=residual is not None,
        act=act_cl(layer.epilogue.act, "v"),
        tail=g["OW"] % 4 != 0,
        ftail=Fg % 4 != 0,
    )
    if g["SW"] == 1:
        # Stride 1 along W is a correlation with the flipped kernel: row segments as in CONV2D.
        lanes = [[j + (KW - 1 - kx) * DW for j in range(4)] for kx in range(KW)]
        lo = g["PL"] - (KW - 1) * DW
        params.update(_row_plan(lanes, lo, lo + (OWB - 1) * 4, g["W"]).params())
    # [C, Fg, KH, KW] -> per group [Fg, Cg, KH, KW], filters packed by 4.
    per_group = [weight[i * Cg : (i + 1) * Cg].transpose(1, 0, 2, 3) for i in range(G)]
    packed = np.concatenate([pack_filters4(w) for w in per_group])
    return finish_variant(
        variant,
        op_token=_convt_token(g),
        template="opencl/conv_transpose.cl.j2",
        params=params,
        inputs=(x, residual) if residual else (x,),
        launch=work_sizes((OWB * g["OH"], G * FB, g["N"]), variant),
        epilogue=layer.epilogue,
        weights=(packed, _pad_groups(bias, G)),
        macs=_convt_macs(g),
    )


def _fill_convt_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual, g = _convt_parts(layer, graph)
    n_out = g["N"] * g["F"] * g["OH"] * g["OW"]
    return finish_variant(
        variant,
        op_token=_convt_token(g),
        template="opencl/conv_transpose_ref.cl.j2",
        params=dict(g, residual=residual is not None, act=act_cl(layer.epilogue.act, "acc")),
        inputs=(x, residual) if residual else (x,),
        launch=global_1d(n_out, variant.param("group", DEFAULT_GROUP)),
        epilogue=layer.epilogue,
        weights=(weight, bias),
        macs=_convt_macs(g),
    )


CONV_TRANSPOSE_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ISAS, _fill_convt, _convt_ok, 4, 4, _CONV_PARAMS),
    Variant("ref", ISAS, _fill_convt_ref, _convt_ok, params=_REF_PARAMS),
)


# ---------------------------------------------------------------------------------------------
# DENSE and MATMUL (one GEMM kernel)


def _ksplit(K: int, tiles: int, variant: Variant) -> int:
    """K-split lanes: a layer with few output tiles (batch-1 FC) would leave most of a GPU
    idle, so lanes of a work-group split K (each keeping at least 16 chunks of 4) and sum in
    local memory; doubling stops once tiles x lanes reach the variant's `busy`."""
    ks = 1
    while ks < variant.param("ksplit_max", 16) and tiles * ks < variant.param("busy", 1024):
        if K < 64 * (2 * ks):
            break
        ks *= 2
    return ks


@dataclass(frozen=True)
class _Gemm:
    """One GEMM layer, operands resolved: A [batch.., M, K] times B [batch.., K, N]."""

    what: str
    M: int
    N: int
    K: int
    batch_dims: tuple[int, ...]
    a_ptr: str  # in<i> or w<i>
    b_ptr: str
    b_packed: bool  # B constant, packed [N/4][K][4] per batch matrix (else row-major)
    a_bstrides: tuple[int, ...]
    b_bstrides: tuple[int, ...]
    bias_ptr: str | None
    res_ptr: str | None
    weights: tuple[np.ndarray, ...]
    inputs: tuple[str, ...]


def _dense_gemm(layer: Layer, graph: Graph) -> _Gemm:
    x, weight, bias, residual = _dense_parts(layer, graph)
    F, C = weight.shape
    weights = [pack_filters4(np.asarray(weight, np.float32))]  # [F/4][C][4]
    if bias is not None:
        weights.append(pad4(bias))
    return _Gemm(
        what="dense", M=graph.value(x).size // C, N=F, K=C, batch_dims=(), a_ptr="in0",
        b_ptr="w0", b_packed=True, a_bstrides=(), b_bstrides=(),
        bias_ptr="w1" if bias is not None else None, res_ptr="in1" if residual else None,
        weights=tuple(weights), inputs=(x, residual) if residual else (x,),
    )  # fmt: skip


def _matmul_gemm(layer: Layer, graph: Graph, pack_b: bool) -> _Gemm:
    mm = _matmul_operands(layer, graph)
    M, N, K = mm["M"], mm["N"], mm["K"]
    sa, sb, out_batch = mm["sa"], mm["sb"], mm["out_batch"]
    inputs: tuple[str, ...] = mm["inputs"]
    weights: list[np.ndarray] = []
    ptrs, b_packed = [], False
    for name, shape in zip(layer.inputs[:2], (sa, sb), strict=True):
        value = graph.value(name)
        if not value.is_const:
            ptrs.append(f"in{inputs.index(name)}")
            continue
        data = np.asarray(value.data, np.float32).reshape(shape)
        if name == layer.inputs[1] and pack_b:
            mats = data.reshape(-1, K, N)
            data = np.stack([pack_filters4(mat.T) for mat in mats])
            b_packed = True
        ptrs.append(f"w{len(weights)}")
        weights.append(data.reshape(-1))
    b_mat = round_up(N, 4) * K if b_packed else K * N
    residual = mm["residual"]
    return _Gemm(
        what="matmul", M=M, N=N, K=K, batch_dims=tuple(out_batch), a_ptr=ptrs[0],
        b_ptr=ptrs[1], b_packed=b_packed,
        a_bstrides=tuple(_batch_strides(sa[:-2], out_batch, M * K)),
        b_bstrides=tuple(_batch_strides(sb[:-2], out_batch, b_mat)),
        bias_ptr=None, res_ptr=f"in{inputs.index(residual)}" if residual else None,
        weights=tuple(weights), inputs=inputs,
    )  # fmt: skip


def _gemm_of(layer: Layer, graph: Graph, pack_b: bool) -> _Gemm:
    if layer.op is Op.DENSE:
        return _dense_gemm(layer, graph)
    return _matmul_gemm(layer, graph, pack_b)


def _finish_gemm(
    layer: Layer,
    variant: Variant,
    mm: _Gemm,
    template: str,
    params: dict[str, Any],
    launch: tuple[Sequence[int], Sequence[int]],
    tile: tuple[int, int] | None = None,
    header: dict[str, Any] | None = None,
) -> LayerKernel:
    return finish_variant(
        variant,
        op_token=mm.what,
        template=template,
        params=params,
        inputs=mm.inputs,
        launch=launch,
        epilogue=layer.epilogue,
        weights=mm.weights,
        macs=prod(mm.batch_dims) * mm.M * mm.N * mm.K,
        tile=tile,
        header=header,
    )


def _fill_gemm(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    mm = _gemm_of(layer, graph, pack_b=True)
    batch = prod(mm.batch_dims)
    MR = min(4, mm.M)
    NB, MB = _ceil(mm.N, 4), _ceil(mm.M, MR)
    KS = _ksplit(mm.K, NB * MB * batch, variant)
    launch = work_sizes((KS, NB, batch * MB), variant, first=KS)
    params = dict(
        what=mm.what, M=mm.M, N=mm.N, K=mm.K, K4=mm.K - mm.K % 4, MR=MR, NB=NB, MB=MB, KS=KS,
        LOCAL=launch[1], batch=batch, batch_dims=list(mm.batch_dims), a_bstrides=mm.a_bstrides,
        b_bstrides=mm.b_bstrides, a_ptr=mm.a_ptr, b_ptr=mm.b_ptr, b_packed=mm.b_packed,
        bias=mm.bias_ptr is not None, bias_ptr=mm.bias_ptr, residual=mm.res_ptr is not None,
        res_ptr=mm.res_ptr, act=act_cl(layer.epilogue.act, "v"),
    )  # fmt: skip
    return _finish_gemm(layer, variant, mm, "opencl/matmul.cl.j2", params, launch,
                        tile=(MR, 4), header={"ksplit": KS})  # fmt: skip


def _fill_gemm_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    if layer.op is Op.DENSE:
        _, weight, bias, _ = _dense_parts(layer, graph)
        mm = _dense_gemm(layer, graph)
        weights = [np.asarray(weight, np.float32)]  # [F][C]: B transposed
        if bias is not None:
            weights.append(np.asarray(bias, np.float32).reshape(-1))
        mm = replace(mm, weights=tuple(weights), b_packed=False)
    else:
        mm = _matmul_gemm(layer, graph, pack_b=False)
    batch = prod(mm.batch_dims)
    params = dict(
        what=mm.what, M=mm.M, N=mm.N, K=mm.K, batch=batch, batch_dims=list(mm.batch_dims),
        a_bstrides=mm.a_bstrides, b_bstrides=mm.b_bstrides, a_ptr=mm.a_ptr, b_ptr=mm.b_ptr,
        b_transposed=mm.what == "dense", bias=mm.bias_ptr is not None, bias_ptr=mm.bias_ptr,
        residual=mm.res_ptr is not None, res_ptr=mm.res_ptr,
        act=act_cl(layer.epilogue.act, "acc"),
    )  # fmt: skip
    launch = global_1d(batch * mm.M * mm.N, variant.param("group", DEFAULT_GROUP))
    return _finish_gemm(layer, variant, mm, "opencl/matmul_ref.cl.j2", params, launch)


DENSE_MANIFEST: tuple[Variant, ...] = (
    *sparse_conv.DENSE_VARIANTS,  # pruned layers, where their cost model expects a gain
    Variant("dense", ISAS, _fill_gemm, _dense_ok, 4, 4, _GEMM_PARAMS),
    Variant("ref", ISAS, _fill_gemm_ref, _dense_ok, params=_REF_PARAMS),
)

MATMUL_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ISAS, _fill_gemm, _matmul_ok, 4, 4, _GEMM_PARAMS),
    Variant("ref", ISAS, _fill_gemm_ref, _matmul_ok, params=_REF_PARAMS),
)
