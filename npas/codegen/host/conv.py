"""Convolution-like kernels: CONV2D (dense GEMM, grouped GEMM, depthwise direct), DENSE,
MATMUL and CONV_TRANSPOSE2D, each with its scalar reference.

Dense and grouped convolution are one GEMM algorithm per group (conv_gemm.cpp.j2): weights
prepacked here into MR-row panels, activations packed per thread into NR-column panels (1x1
stride-1 unpadded convs read x directly; everything else reads padded phase planes, so strides,
pads and dilation never need bounds checks in the inner loops). Tiles are per ISA in the
manifests; a layer instantiates exactly the main tile and the M/N remainder tiles it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from npas.codegen.host import sparse_conv, winograd
from npas.codegen.host.common import (
    Variant,
    act_expr,
    activation_inputs,
    finish,
    is_vector_isa,
    prod,
)
from npas.codegen.host.window import Planes, WindowGeom, fill_window, plan_planes
from npas.codegen.kernel import LayerKernel
from npas.codegen.naming import window_token
from npas.codegen.target import Isa
from npas.ir.attrs import Conv2dAttrs, ConvTranspose2dAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

# Packed B block (KC x NC floats per thread) target size: half the L2 of the cores we tune on,
# so the block stays resident while every M tile streams over it.
_B_BLOCK_BYTES = 512 * 1024


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil(a, b) * b


@dataclass(frozen=True)
class ConvGeom(WindowGeom):
    """A CONV2D layer's shapes, attrs and operands, resolved from the graph: its window
    geometry plus filters, groups and operands."""

    F: int
    G: int
    weight: np.ndarray  # [F, C/G, KH, KW]
    bias: np.ndarray  # [F] (zeros when the layer has none)
    residual: str | None
    inputs: tuple[str, ...]

    @property
    def Cg(self) -> int:
        return self.C // self.G

    @property
    def Fg(self) -> int:
        return self.F // self.G

    @property
    def K(self) -> int:
        return self.Cg * self.KH * self.KW

    @property
    def P(self) -> int:
        return self.OH * self.OW

    @property
    def depthwise(self) -> bool:
        return self.G > 1 and self.Cg == 1 and self.Fg == 1

    @property
    def macs(self) -> int:
        return self.N * self.F * self.P * self.K

    def params(self) -> dict[str, int]:
        names = "N C H W F G Cg Fg OH OW KH KW SH SW DH DW PT PL PB PR K".split()
        return {n: int(getattr(self, n)) for n in names}

    def op_token(self, family: str) -> str:
        return window_token(family, (self.KH, self.KW), (self.SH, self.SW), (self.DH, self.DW))


def conv_geom(layer: Layer, graph: Graph) -> ConvGeom:
    attrs: Conv2dAttrs = layer.attrs
    x, w = layer.inputs[0], layer.inputs[1]
    weight = graph.const(w)
    if weight is None:
        raise NotImplementedError(f"{layer.name}: conv weights must be constant")
    rest = [n for n in layer.inputs[2:] if n]
    residual = rest.pop() if layer.epilogue.residual else None
    bias_name = rest[0] if rest else None
    F = weight.shape[0]
    bias = np.zeros(F, np.float32)
    if bias_name is not None:
        data = graph.const(bias_name)
        if data is None:
            raise NotImplementedError(f"{layer.name}: conv bias must be constant")
        bias = np.asarray(data, np.float32).reshape(F)
    N, C, H, W = graph.shape(x)
    _, _, OH, OW = graph.shape(layer.outputs[0])
    pt, pl, pb, pr = attrs.pads
    (KH, KW), (SH, SW), (DH, DW) = attrs.kernel, attrs.stride, attrs.dilation
    return ConvGeom(
        N=N, C=C, H=H, W=W, OH=OH, OW=OW, KH=KH, KW=KW, SH=SH, SW=SW, DH=DH, DW=DW,
        PT=pt, PL=pl, PB=pb, PR=pr, F=F, G=attrs.groups,
        weight=np.asarray(weight, np.float32), bias=bias, residual=residual,
        inputs=(x, residual) if residual else (x,),
    )  # fmt: skip


def _is_conv(layer: Layer, graph: Graph, isa: Isa | None = None) -> bool:
    if layer.op is not Op.CONV2D or not isinstance(layer.attrs, Conv2dAttrs):
        return False
    try:
        geom = conv_geom(layer, graph)
    except NotImplementedError:
        return False
    if geom.residual and graph.shape(geom.residual) != graph.shape(layer.outputs[0]):
        return False
    return activation_inputs(layer, graph) == geom.inputs


# ---------------------------------------------------------------------------------------------
# CONV2D: GEMM (dense and grouped)


def pack_a_panels(mat: np.ndarray, mr: int) -> np.ndarray:
    """[M, K] -> MR-row panels, k-major inside a panel; the last panel has M % MR rows."""
    panels = [mat[r : r + mr].T.reshape(-1) for r in range(0, mat.shape[0], mr)]
    return np.concatenate(panels) if panels else np.zeros(0, np.float32)


def _fill_conv_gemm(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    L = isa.vector_floats
    MR, NV = variant.mr, variant.nr // L
    NR = NV * L
    direct = _is_direct(g)
    kc_max = variant.param("kc_max", 512)
    NKB = _ceil(g.K, kc_max)
    KC = _ceil(g.K, NKB)
    nc_max = max(NR, (_B_BLOCK_BYTES // (4 * KC)) // NR * NR)
    NC_MAX = min(nc_max, _round_up(g.P, NR))
    nv_tail = _ceil(g.P % NR, L)
    params = dict(
        g.params(),
        MR=MR,
        NV=NV,
        NR=NR,
        MR_TAIL=g.Fg % MR,
        NV_TAIL=nv_tail if nv_tail != NV else 0,
        KC=KC,
        NKB=NKB,
        MTILES=_ceil(g.Fg, MR),
        NC_MAX=NC_MAX,
        direct=direct,
        residual=g.residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
    )
    planes_floats = 0
    if not direct:
        pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
        planes_floats = g.C * pl.PC
        params.update(Hq=pl.Hq, Wq=pl.Wq, phases=pl.phases, tap_off=pl.tap_off, PC=pl.PC)
    params["PLANES_FLOATS"] = planes_floats
    wmat = g.weight.reshape(g.G, g.Fg, g.K)
    packed = np.concatenate([pack_a_panels(wmat[i], MR) for i in range(g.G)])
    family = "conv" if g.G == 1 else "gconv"
    return finish(
        op_token=g.op_token(family),
        variant=variant,
        isa=isa,
        template="host/conv_gemm.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=(packed, g.bias),
        inputs=g.inputs,
        scratch_bytes_per_thread=4 * (planes_floats + KC * NC_MAX),
        macs=g.macs,
    )


def _is_direct(g: ConvGeom) -> bool:
    """1x1, stride 1, unpadded: the GEMM's B rows are x's channel planes themselves."""
    return (g.KH, g.KW, g.SH, g.SW) == (1, 1, 1, 1) and not any((g.PT, g.PL, g.PB, g.PR))


def _fill_conv_implicit(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    L = isa.vector_floats
    MR, NV = variant.mr, variant.nr // L
    NR = NV * L
    pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
    qn = g.OH * pl.Wq
    reach = (g.C - 1) * pl.PC + max(pl.tap_off) + _round_up(qn, NR) + NR
    planes_floats = _round_up(max(g.C * pl.PC, reach), 16)
    params = dict(
        g.params(),
        MR=MR,
        NV=NV,
        NR=NR,
        MR_TAIL=g.Fg % MR,
        MTILES=_ceil(g.Fg, MR),
        NC_MAX=min(_round_up(qn, NR), _implicit_block(g, pl, NR) or NR),
        Hq=pl.Hq,
        Wq=pl.Wq,
        phases=pl.phases,
        tap_off=pl.tap_off,
        PC=pl.PC,
        PLANES_FLOATS=planes_floats,
        residual=g.residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
    )
    wmat = g.weight.reshape(g.G, g.Fg, g.K)
    packed = np.concatenate([pack_a_panels(wmat[i], MR) for i in range(g.G)])
    return finish(
        op_token=g.op_token("iconv" if g.G == 1 else "igconv"),
        variant=variant,
        isa=isa,
        template="host/conv_implicit.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=(packed, g.bias),
        inputs=g.inputs,
        scratch_bytes_per_thread=4 * planes_floats,
        macs=g.macs,
    )


# Implicit GEMM re-reads the planes under a block of q columns once per M tile: that footprint
# must stay well inside the L2 of the cores we tune on (2 MB), or im2col's compact packed block
# wins (measured: 3x3 stride 2 over 128 channels at 56x56 prefers im2col).
_IMPLICIT_BLOCK_BYTES = 512 * 1024


def _implicit_block(g: ConvGeom, pl: Planes, nr: int) -> int | None:
    """The widest q block (a multiple of nr, at most 512 columns) whose plane footprint fits
    _IMPLICIT_BLOCK_BYTES, or None when not even one tile's does."""
    phases = len(pl.phases) // 2
    reach_rows = (g.KH - 1) * g.DH // g.SH + 2  # plane rows a block reads past its own
    best = None
    for nc in range(nr, 512 + 1, nr):
        rows = -(-nc // pl.Wq) + reach_rows
        if 4 * g.Cg * phases * min(rows, pl.Hq) * pl.Wq > _IMPLICIT_BLOCK_BYTES:
            break
        best = nc
    return best


def _conv_implicit_ok(nr: int) -> Callable[[Layer, Graph, Isa], bool]:
    """Implicit GEMM serves padded/strided/dilated convs whose plane footprint per q block
    stays L2-resident and whose q space (plane-wide rows) costs at most ~10% more nr-column
    tiles than the real pixels; skipping the im2col copy then wins (measured: stride-1 3x3 at
    56x56 down to 7x7, the stems, strided convs with small outputs). Otherwise im2col (the
    next manifest entry) serves."""

    def can_serve(layer: Layer, graph: Graph, isa: Isa) -> bool:
        if not (is_vector_isa(isa) and _is_conv(layer, graph)):
            return False
        g = conv_geom(layer, graph)
        if g.depthwise or _is_direct(g) or g.K > 8192:
            return False
        if (g.SH, g.SW) != (1, 1) and g.Cg >= 16 and g.P >= 256:
            # Strided taps spread over several phase planes (twice the cache lines of a
            # stride-1 tap row); with many pixels to amortise it over, im2col's copy wins.
            return False
        pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
        if _implicit_block(g, pl, nr) is None:
            return False
        return _ceil(g.OH * pl.Wq, nr) <= 1.10 * _ceil(g.P, nr)

    return can_serve


def _conv_gemm_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if not (is_vector_isa(isa) and _is_conv(layer, graph)):
        return False
    return not conv_geom(layer, graph).depthwise


# ---------------------------------------------------------------------------------------------
# CONV2D: depthwise, direct (window.cpp.j2)


def _window_geom(g: ConvGeom) -> WindowGeom:
    return WindowGeom(
        g.N, g.C, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW,
        g.PT, g.PL, g.PB, g.PR,
    )  # fmt: skip


def _fill_dwconv(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    return fill_window(
        op_token=g.op_token("dwconv"),
        mode="conv",
        geom=_window_geom(g),
        variant=variant,
        isa=isa,
        inputs=g.inputs,
        weights=(g.weight.reshape(g.C, g.KH * g.KW), g.bias),
        epilogue=layer.epilogue,
        act=act_expr(layer.epilogue.act, "v", vector=True),
        macs=g.macs,
    )


def _dwconv_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if not (is_vector_isa(isa) and _is_conv(layer, graph)):
        return False
    return conv_geom(layer, graph).depthwise


def _fill_conv_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = conv_geom(layer, graph)
    family = "dwconv" if g.depthwise else ("conv" if g.G == 1 else "gconv")
    return finish(
        op_token=g.op_token(family),
        variant=variant,
        isa=isa,
        template="host/conv_ref.cpp.j2",
        params=dict(
            g.params(),
            residual=g.residual is not None,
            act=act_expr(layer.epilogue.act, "acc", vector=False),
            units=g.N * g.F,
            parallel=True,
        ),
        epilogue=layer.epilogue,
        weights=(g.weight, g.bias),
        inputs=g.inputs,
        macs=g.macs,
    )


CONV2D_MANIFEST: tuple[Variant, ...] = (
    *sparse_conv.SPARSE_VARIANTS,  # pruned layers, where the cost model expects a gain
    *winograd.WINOGRAD_VARIANTS,  # 3x3 stride 1 where its cost model says it pays
    Variant("dense", ("avx512",), _fill_conv_implicit, _conv_implicit_ok(32), 12, 32),
    Variant("dense", ("avx2",), _fill_conv_implicit, _conv_implicit_ok(16), 6, 16),
    Variant("dense", ("neon",), _fill_conv_implicit, _conv_implicit_ok(12), 8, 12),
    Variant("dense", ("avx512",), _fill_dwconv, _dwconv_ok, 1, 64, (("unroll", 4),)),
    Variant("dense", ("avx2",), _fill_dwconv, _dwconv_ok, 1, 32, (("unroll", 4),)),
    Variant("dense", ("neon",), _fill_dwconv, _dwconv_ok, 8, 8, (("unroll", 2), ("rows", 8))),
    Variant("dense", ("avx512",), _fill_conv_gemm, _conv_gemm_ok, 12, 32, (("kc_max", 512),)),
    Variant("dense", ("avx2",), _fill_conv_gemm, _conv_gemm_ok, 6, 16, (("kc_max", 512),)),
    Variant("dense", ("neon",), _fill_conv_gemm, _conv_gemm_ok, 8, 12, (("kc_max", 512),)),
    Variant("ref", ("*",), _fill_conv_ref, _is_conv),
)


# ---------------------------------------------------------------------------------------------
# DENSE and MATMUL (gemm.cpp.j2)


def _gemm_tile(M: int, variant: Variant, isa: Isa) -> tuple[int, int]:
    """(MR, NV): the manifest tile, shrunk to M rows for small M (batch-1 FC layers), which
    then affords wider column tiles for the same register budget."""
    L = isa.vector_floats
    MR, NV = variant.mr, variant.nr // L
    if M < MR:
        budget = MR * NV  # accumulator registers of the manifest tile
        MR = M
        NV = max(NV, min(4, budget // M))
    return MR, NV


def _batch_strides(shape: tuple[int, ...], out_batch: tuple[int, ...], mat: int) -> list[int]:
    """Element strides of a stack of `mat`-float matrices over the broadcast batch dims."""
    rank = len(out_batch)
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    strides, step = [0] * rank, mat
    for d in range(rank - 1, -1, -1):
        strides[d] = 0 if padded[d] == 1 else step
        step *= padded[d]
    return strides


def _gemm_common(
    *, what: str, M: int, N: int, K: int, batch_dims: list[int], variant: Variant, isa: Isa
) -> dict:
    MR, NV = _gemm_tile(M, variant, isa)
    NR = NV * isa.vector_floats
    batch = prod(batch_dims)
    return dict(
        what=what,
        M=M,
        N=N,
        K=K,
        MR=MR,
        NV=NV,
        NR=NR,
        MR_TAIL=M % MR,
        MTILES=_ceil(M, MR),
        NTILES=_ceil(N, NR),
        batch=batch,
        batch_dims=batch_dims,
        small=batch * M * N * K < 1 << 16,
    )


def _dense_parts(layer: Layer, graph: Graph):
    x, w = layer.inputs[0], layer.inputs[1]
    weight = graph.const(w)
    rest = [n for n in layer.inputs[2:] if n]
    residual = rest.pop() if layer.epilogue.residual else None
    bias = graph.const(rest[0]) if rest else None
    return x, weight, bias, residual


def _fill_dense(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual = _dense_parts(layer, graph)
    F, C = weight.shape
    M = graph.value(x).size // C
    p = _gemm_common(what="dense", M=M, N=F, K=C, batch_dims=[], variant=variant, isa=isa)
    NR, ntiles = p["NR"], p["NTILES"]
    wt = np.zeros((C, ntiles * NR), np.float32)
    wt[:, :F] = np.asarray(weight, np.float32).T
    packed = wt.reshape(C, ntiles, NR).transpose(1, 0, 2).reshape(-1)
    weights = [packed]
    if bias is not None:
        b = np.zeros(ntiles * NR, np.float32)
        b[:F] = np.asarray(bias, np.float32).reshape(-1)
        weights.append(b)
    p.update(
        b_const=True,
        a_ptr="args->in[0]",
        b_ptr="args->w[0]",
        a_bstrides=[],
        b_bstrides=[],
        bias=bias is not None,
        bias_index=1,
        residual=residual is not None,
        res_index=1,
        act=act_expr(layer.epilogue.act, "x", vector=True),
    )
    mr = p["MR"]
    return finish(
        op_token="dense",
        variant=variant,
        isa=isa,
        template="host/gemm.cpp.j2",
        params=p,
        epilogue=layer.epilogue,
        weights=weights,
        inputs=(x, residual) if residual else (x,),
        scratch_bytes_per_thread=4 * (p["MTILES"] * mr * C if mr > 1 else 0),
        macs=M * F * C,
        tile=(mr, NR),
    )


def _dense_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if layer.op is not Op.DENSE or len(layer.inputs) < 2:
        return False
    x, weight, bias, _ = _dense_parts(layer, graph)
    if weight is None or weight.ndim != 2 or graph.value(x).is_const:
        return False
    if len(layer.inputs) > 2 and not layer.epilogue.residual and bias is None:
        return False
    return graph.shape(x)[-1] == weight.shape[1]


def _dense_vec_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return is_vector_isa(isa) and _dense_ok(layer, graph, isa)


def _matmul_operands(layer: Layer, graph: Graph):
    a, b = layer.inputs[0], layer.inputs[1]
    sa, sb = graph.shape(a), graph.shape(b)
    sa = (1, *sa) if len(sa) == 1 else sa
    sb = (*sb, 1) if len(sb) == 1 else sb
    M, K = sa[-2], sa[-1]
    N = sb[-1]
    out_batch = tuple(np.broadcast_shapes(sa[:-2], sb[:-2]))
    inputs = activation_inputs(layer, graph)
    residual = inputs[-1] if layer.epilogue.residual else None
    weights: list[np.ndarray] = []
    ptrs: list[str] = []
    for name in (a, b):
        value = graph.value(name)
        if value.is_const:
            ptrs.append(f"args->w[{len(weights)}]")
            weights.append(np.asarray(value.data, np.float32).reshape(-1))
        else:
            ptrs.append(f"args->in[{inputs.index(name)}]")
    return dict(
        M=M, N=N, K=K, sa=sa, sb=sb, out_batch=out_batch, inputs=inputs, residual=residual,
        weights=weights, ptrs=ptrs,
    )  # fmt: skip


def _matmul_params(layer: Layer, graph: Graph, mm: dict) -> dict:
    M, N, K = mm["M"], mm["N"], mm["K"]
    return dict(
        a_ptr=mm["ptrs"][0],
        b_ptr=mm["ptrs"][1],
        a_bstrides=_batch_strides(mm["sa"][:-2], mm["out_batch"], M * K),
        b_bstrides=_batch_strides(mm["sb"][:-2], mm["out_batch"], K * N),
        bias=False,
        bias_index=0,
        residual=mm["residual"] is not None,
        res_index=mm["inputs"].index(mm["residual"]) if mm["residual"] else 0,
    )


def _fill_matmul(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    mm = _matmul_operands(layer, graph)
    M, N, K = mm["M"], mm["N"], mm["K"]
    p = _gemm_common(
        what="matmul", M=M, N=N, K=K, batch_dims=list(mm["out_batch"]), variant=variant, isa=isa
    )
    p.update(_matmul_params(layer, graph, mm))
    p.update(b_const=False, act=act_expr(layer.epilogue.act, "x", vector=True))
    mr = p["MR"]
    return finish(
        op_token="matmul",
        variant=variant,
        isa=isa,
        template="host/gemm.cpp.j2",
        params=p,
        epilogue=layer.epilogue,
        weights=mm["weights"],
        inputs=mm["inputs"],
        scratch_bytes_per_thread=4 * ((p["MTILES"] * mr * K if mr > 1 else 0) + K * p["NR"]),
        macs=p["batch"] * M * N * K,
        tile=(mr, p["NR"]),
    )


def _matmul_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if layer.op is not Op.MATMUL or len(layer.inputs) < 2:
        return False
    if all(graph.value(n).is_const for n in layer.inputs[:2]):
        return False
    mm = _matmul_operands(layer, graph)
    return mm["sa"][-1] == mm["sb"][-2]


def _fill_gemm_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    if layer.op is Op.DENSE:
        x, weight, bias, residual = _dense_parts(layer, graph)
        F, C = weight.shape
        M = graph.value(x).size // C
        weights = [np.asarray(weight, np.float32)]
        if bias is not None:
            weights.append(np.asarray(bias, np.float32).reshape(-1))
        p = dict(
            what="dense", M=M, N=F, K=C, batch_dims=[], a_bstrides=[], b_bstrides=[],
            a_ptr="args->in[0]", b_ptr="args->w[0]", b_transposed=True, bias=bias is not None,
            bias_index=1, residual=residual is not None, res_index=1, units=1,
        )  # fmt: skip
        inputs: tuple[str, ...] = (x, residual) if residual else (x,)
        macs = M * F * C
    else:
        mm = _matmul_operands(layer, graph)
        p = dict(
            what="matmul", M=mm["M"], N=mm["N"], K=mm["K"], batch_dims=list(mm["out_batch"]),
            b_transposed=False, units=prod(mm["out_batch"]),
        )  # fmt: skip
        p.update(_matmul_params(layer, graph, mm))
        weights = mm["weights"]
        inputs = mm["inputs"]
        macs = prod(mm["out_batch"]) * mm["M"] * mm["N"] * mm["K"]
    p.update(act=act_expr(layer.epilogue.act, "acc", vector=False), parallel=p["units"] > 1)
    return finish(
        op_token=layer.op.value,
        variant=variant,
        isa=isa,
        template="host/gemm_ref.cpp.j2",
        params=p,
        epilogue=layer.epilogue,
        weights=weights,
        inputs=inputs,
        macs=macs,
    )


DENSE_MANIFEST: tuple[Variant, ...] = (
    *sparse_conv.DENSE_SPARSE_VARIANTS,  # pruned layers, where the cost model expects a gain
    Variant("dense", ("avx512",), _fill_dense, _dense_vec_ok, 12, 32),
    Variant("dense", ("avx2",), _fill_dense, _dense_vec_ok, 6, 16),
    Variant("dense", ("neon",), _fill_dense, _dense_vec_ok, 8, 12),
    Variant("ref", ("*",), _fill_gemm_ref, _dense_ok),
)


def _matmul_vec_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return is_vector_isa(isa) and _matmul_ok(layer, graph, isa)


MATMUL_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_matmul, _matmul_vec_ok, 12, 32),
    Variant("dense", ("avx2",), _fill_matmul, _matmul_vec_ok, 6, 16),
    Variant("dense", ("neon",), _fill_matmul, _matmul_vec_ok, 8, 12),
    Variant("ref", ("*",), _fill_gemm_ref, _matmul_ok),
)


# ---------------------------------------------------------------------------------------------
# CONV_TRANSPOSE2D (conv_transpose.cpp.j2): GEMM to columns + col2im


def _convt_parts(layer: Layer, graph: Graph):
    a: ConvTranspose2dAttrs = layer.attrs
    x, w = layer.inputs[0], layer.inputs[1]
    weight = graph.const(w)
    if weight is None:
        raise NotImplementedError(f"{layer.name}: ConvTranspose weights must be constant")
    rest = [n for n in layer.inputs[2:] if n]
    residual = rest.pop() if layer.epilogue.residual else None
    Fg = weight.shape[1]
    F = Fg * a.groups
    bias = np.zeros(F, np.float32)
    if rest:
        bias = np.asarray(graph.const(rest[0]), np.float32).reshape(F)
    N, C, H, W = graph.shape(x)
    _, _, OH, OW = graph.shape(layer.outputs[0])
    geom = dict(
        N=N, C=C, H=H, W=W, F=F, G=a.groups, Cg=C // a.groups, Fg=Fg, OH=OH, OW=OW,
        KH=a.kernel[0], KW=a.kernel[1], SH=a.stride[0], SW=a.stride[1], DH=a.dilation[0],
        DW=a.dilation[1], PT=a.pads[0], PL=a.pads[1],
    )  # fmt: skip
    return x, np.asarray(weight, np.float32), bias, residual, geom


def _convt_token(geom: dict) -> str:
    return window_token(
        "convt", (geom["KH"], geom["KW"]), (geom["SH"], geom["SW"]), (geom["DH"], geom["DW"])
    )


def _convt_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    if layer.op is not Op.CONV_TRANSPOSE2D or not isinstance(layer.attrs, ConvTranspose2dAttrs):
        return False
    if graph.const(layer.inputs[1]) is None or len(graph.shape(layer.inputs[0])) != 4:
        return False
    rest = [n for n in layer.inputs[2:] if n]
    if layer.epilogue.residual:
        rest = rest[:-1]
    return all(graph.value(n).is_const for n in rest)


def _fill_convt(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual, g = _convt_parts(layer, graph)
    L = isa.vector_floats
    MR, NV = variant.mr, variant.nr // L
    NR = NV * L
    khw = g["KH"] * g["KW"]
    Fg, Cg = g["Fg"], g["Cg"]
    fits = [f for f in range(1, Fg + 1) if (f * khw) % MR == 0 and f * khw <= 96]
    FB = fits[0] if fits else min(Fg, max(1, _ceil(48, khw)))
    NFB = _ceil(Fg, FB)
    P = g["H"] * g["W"]
    rows_pad = _round_up(FB * khw, MR)
    NC = min(_round_up(P, NR), max(NR, (65536 // rows_pad) // NR * NR))
    panels, block_off, off = [], [], 0
    for gi in range(g["G"]):
        wt = weight[gi * Cg : (gi + 1) * Cg].reshape(Cg, Fg * khw).T  # [(f, ky, kx), c]
        for fb in range(NFB):
            f0, f1 = fb * FB, min(Fg, (fb + 1) * FB)
            block = pack_a_panels(np.ascontiguousarray(wt[f0 * khw : f1 * khw]), MR)
            if gi == 0:
                block_off.append(off)
                off += block.size
            panels.append(block)
    last = (Fg - (NFB - 1) * FB) * khw
    params = dict(
        g,
        MR=MR,
        NV=NV,
        FB=FB,
        NFB=NFB,
        NC=NC,
        block_off=block_off,
        TAIL_A=(FB * khw) % MR,
        TAIL_B=last % MR,
        residual=residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
        units=g["N"] * g["G"] * NFB,
        parallel=True,
    )
    macs = g["N"] * g["F"] * khw * Cg * P
    return finish(
        op_token=_convt_token(g),
        variant=variant,
        isa=isa,
        template="host/conv_transpose.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=(np.concatenate(panels), bias),
        inputs=(x, residual) if residual else (x,),
        scratch_bytes_per_thread=4 * (Cg * NC + rows_pad * NC),
        macs=macs,
    )


def _fill_convt_ref(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual, g = _convt_parts(layer, graph)
    return finish(
        op_token=_convt_token(g),
        variant=variant,
        isa=isa,
        template="host/conv_transpose_ref.cpp.j2",
        params=dict(
            g,
            residual=residual is not None,
            act=act_expr(layer.epilogue.act, "acc", vector=False),
            units=g["N"] * g["F"],
            parallel=True,
        ),
        epilogue=layer.epilogue,
        weights=(weight, bias),
        inputs=(x, residual) if residual else (x,),
        macs=g["N"] * g["F"] * g["KH"] * g["KW"] * g["Cg"] * g["H"] * g["W"],
    )


def _convt_vec_ok(layer: Layer, graph: Graph, isa: Isa) -> bool:
    return is_vector_isa(isa) and _convt_ok(layer, graph, isa)


CONV_TRANSPOSE_MANIFEST: tuple[Variant, ...] = (
    Variant("dense", ("avx512",), _fill_convt, _convt_vec_ok, 12, 32),
    Variant("dense", ("avx2",), _fill_convt, _convt_vec_ok, 6, 16),
    Variant("dense", ("neon",), _fill_convt, _convt_vec_ok, 8, 12),
    Variant("ref", ("*",), _fill_convt_ref, _convt_ok),
)
