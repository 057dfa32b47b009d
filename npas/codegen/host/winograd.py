"""Winograd F(m, 3) convolution for dense 3x3 stride-1 convs (conv_winograd.cpp.j2).

Y = A^T [(G g G^T) . (B^T d B)] A per output tile of m x m pixels, from an (m+2) x (m+2)
input tile. The filter transform runs here, in float64, once at compile time; the kernel
transforms input tiles (vectorised over tiles), multiplies, for each of the (m+2)^2 transform
positions t, [F x C] x [C x tiles] with the shared GEMM micro-kernel (npas/gemm.h), and
transforms the products back with the fused epilogue (bias, residual, activation).

Everything the template unrolls is decided here: the transform matrices (exact, from the
interpolation points, with fractions), the add/sub/fma programs that apply them (symmetric
point pairs share their even and odd partial sums), and the block sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from npas.codegen.host.common import Variant, act_expr, finish, is_vector_isa
from npas.codegen.kernel import LayerKernel
from npas.codegen.naming import window_token
from npas.codegen.target import Isa
from npas.ir.graph import Graph, Layer

if TYPE_CHECKING:
    from npas.codegen.host.conv import ConvGeom

# conv.py lists these variants in its manifest, so this module imports conv.py's geometry
# helpers where they are used, not at import time.

# Interpolation points of F(m, 3) (besides infinity): small integers and their reciprocals
# keep the transforms' entries, and so fp32 rounding, small. F(6, 3) with these points loses
# ~2e-5 relative to the output range on ResNet/VGG layers (fp32 direct: ~4e-7).
POINTS: dict[int, tuple[Fraction, ...]] = {
    2: tuple(map(Fraction, (0, 1, -1))),
    4: tuple(map(Fraction, (0, 1, -1, 2, -2))),
    6: tuple(map(Fraction, ("0", "1", "-1", "2", "-2", "1/2", "-1/2"))),
}

Matrix = list[list[Fraction]]


def _inverse(m: Matrix) -> Matrix:
    """Exact Gauss-Jordan inverse."""
    n = len(m)
    aug = [[*row, *(Fraction(int(i == j)) for j in range(n))] for i, row in enumerate(m)]
    for col in range(n):
        piv = next(r for r in range(col, n) if aug[r][col] != 0)
        aug[col], aug[piv] = aug[piv], aug[col]
        p = aug[col][col]
        aug[col] = [v / p for v in aug[col]]
        for r in range(n):
            if r != col and aug[r][col] != 0:
                f = aug[r][col]
                aug[r] = [a - f * b for a, b in zip(aug[r], aug[col], strict=True)]
    return [row[n:] for row in aug]


def _vandermonde(points: tuple[Fraction, ...], cols: int) -> Matrix:
    """Rows p^0..p^(cols-1) per point, then the point at infinity (the leading coefficient)."""
    rows = [[p**i for i in range(cols)] for p in points]
    rows.append([Fraction(int(i == cols - 1)) for i in range(cols)])
    return rows


@dataclass(frozen=True)
class Transforms:
    """Exact F(m, r) matrices: y = AT [(G g) * (BT d)] for 1-D correlation
    y[i] = sum_k g[k] d[i + k]; in 2-D, Y = AT [(G g G^T) * (BT d BT^T)] AT^T."""

    m: int
    r: int
    AT: Matrix  # m x alpha
    G: Matrix  # alpha x r
    BT: Matrix  # alpha x alpha

    @property
    def alpha(self) -> int:
        return self.m + self.r - 1

    def as_float(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def f(mat: Matrix) -> np.ndarray:
            return np.array([[float(v) for v in row] for row in mat], np.float64)

        return f(self.AT), f(self.G), f(self.BT)


def transforms(m: int, r: int = 3) -> Transforms:
    """Toom-Cook: linear convolution c = a * b of a (m taps) and b (r taps) is
    Vc^-1 [(Va a) . (Vb b)]; its transpose is the minimal filtering algorithm, so
    AT = Va^T, G = Vb, BT = Vc^-T. Row j of BT is scaled by prod_{l != j} (p_j - p_l) (and
    G's by its inverse), which makes BT's rows the monic polynomials with small entries."""
    points = POINTS[m]
    alpha = m + r - 1
    if len(points) != alpha - 1:
        raise ValueError(f"F({m},{r}) needs {alpha - 1} finite points, got {len(points)}")
    va, vb, vc = _vandermonde(points, m), _vandermonde(points, r), _vandermonde(points, alpha)
    at = [[va[j][i] for j in range(alpha)] for i in range(m)]
    inv = _inverse(vc)
    bt = [[inv[row][j] for row in range(alpha)] for j in range(alpha)]
    g = [row[:] for row in vb]
    for j, p in enumerate(points):
        scale = Fraction(1)
        for q in points:
            if q != p:
                scale *= p - q
        bt[j] = [v * scale for v in bt[j]]
        g[j] = [v / scale for v in g[j]]
    return Transforms(m, r, at, g, bt)


# ---- the add/sub/fma programs the template unrolls ----

# A source or destination of a program step: ("x", j) input vector j, ("t", n) temporary n,
# ("y", i) output vector i.
Ref = tuple[str, int]


@dataclass(frozen=True)
class Step:
    dst: Ref
    terms: tuple[tuple[float, Ref], ...]  # dst = sum coef * src; a +1 term first if any


def _terms(coefs: dict[Ref, Fraction]) -> tuple[tuple[float, Ref], ...]:
    items = [(c, ref) for ref, c in coefs.items() if c != 0]
    # Lead with a +1 term, so the sum starts without a multiply.
    items.sort(key=lambda item: item[0] != 1)
    return tuple((float(c), ref) for c, ref in items)


def program(mat: Matrix) -> tuple[Step, ...]:
    """Steps computing y = mat @ x with fewer operations than the plain sums.

    Symmetric interpolation points +-p make two columns equal up to the sign (-1)^i
    (A^T: precompute x_a + x_b and x_a - x_b) and two rows equal up to the sign of every odd
    column (B^T: y_a, y_b = E +- O over shared partial sums)."""
    rows, cols = len(mat), len(mat[0])
    steps: list[Step] = []
    ntemp = 0

    def temp(terms: dict[Ref, Fraction]) -> Ref:
        nonlocal ntemp
        ref: Ref = ("t", ntemp)
        ntemp += 1
        steps.append(Step(ref, _terms(terms)))
        return ref

    # Column pairs: mat[i][b] == mat[i][a] * s_i with s_i = +-1 in every row.
    srcs: list[dict[Ref, Fraction]] = [{} for _ in range(rows)]
    paired: set[int] = set()
    for a in range(cols):
        for b in range(a + 1, cols):
            if a in paired or b in paired:
                continue
            col_a = [mat[i][a] for i in range(rows)]
            col_b = [mat[i][b] for i in range(rows)]
            if sum(v != 0 for v in col_a) < 2:
                continue
            signs = [0 if va == 0 else (1 if vb == va else (-1 if vb == -va else None))
                     for va, vb in zip(col_a, col_b, strict=True)]  # fmt: skip
            if any(s is None for s in signs) or any(
                va == 0 and vb != 0 for va, vb in zip(col_a, col_b, strict=True)
            ):
                continue
            paired |= {a, b}
            plus = temp({("x", a): Fraction(1), ("x", b): Fraction(1)}) if 1 in signs else None
            minus = temp({("x", a): Fraction(1), ("x", b): Fraction(-1)}) if -1 in signs else None
            for i, s in enumerate(signs):
                if s:
                    ref = plus if s == 1 else minus
                    assert ref is not None
                    srcs[i][ref] = col_a[i]
    for i in range(rows):
        for j in range(cols):
            if j not in paired and mat[i][j] != 0:
                srcs[i][("x", j)] = mat[i][j]

    # Row pairs: srcs[b] == srcs[a] on a set P of sources and == -srcs[a] on the rest Q.
    done: set[int] = set()
    for a in range(rows):
        for b in range(a + 1, rows):
            if a in done or b in done:
                continue
            keys = set(srcs[a]) | set(srcs[b])
            even = {k for k in keys if srcs[b].get(k, 0) == srcs[a].get(k, 0)}
            odd = {k for k in keys if srcs[b].get(k, 0) == -srcs[a].get(k, 0)} - even
            if even | odd != keys or len(even) < 2 or len(odd) < 2:
                continue
            done |= {a, b}
            e = temp({k: srcs[a][k] for k in even})
            o = temp({k: srcs[a][k] for k in odd})
            steps.append(Step(("y", a), _terms({e: Fraction(1), o: Fraction(1)})))
            steps.append(Step(("y", b), _terms({e: Fraction(1), o: Fraction(-1)})))
    for i in range(rows):
        if i not in done:
            steps.append(Step(("y", i), _terms(srcs[i])))
    return tuple(steps)


def run_program(steps: tuple[Step, ...], x: np.ndarray, rows: int) -> np.ndarray:
    """Evaluate a program on numpy vectors (x: [cols, ...]) -> [rows, ...] (for tests)."""
    env: dict[Ref, np.ndarray] = {("x", j): x[j] for j in range(x.shape[0])}
    for step in steps:
        env[step.dst] = sum(c * env[ref] for c, ref in step.terms)  # type: ignore[assignment]
    return np.stack([env[("y", i)] for i in range(rows)])


# ---- filter transform and packing ----


def filter_transform(weight: np.ndarray, tr: Transforms) -> np.ndarray:
    """U[t, f, c] = (G g[f, c] G^T)[t // alpha, t % alpha], in float64, as float32."""
    _, g, _ = tr.as_float()
    u = np.einsum("ik,fckl,jl->ijfc", g, weight.astype(np.float64), g)
    a = tr.alpha
    return u.reshape(a * a, *weight.shape[:2]).astype(np.float32)


# ---- blocking and the kernel ----

# Per-thread buffers: the transformed input of a block of tiles (T x C x NTB floats) and the
# products of FB filters (T x FB x NTB). Both stay within a 2 MB L2 together: measured on
# ResNet/VGG layers, letting the input block grow to 1-4 MB (fewer blocks, so the transformed
# filters stream from memory fewer times) was 5-25% slower; 0.25-1 MB product blocks differ
# by less than the noise.
_V_BLOCK_BYTES = 512 * 1024
_M_BLOCK_BYTES = 512 * 1024


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil(a, b) * b


def _is_3x3s1(g: ConvGeom) -> bool:
    return (g.G, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW) == (1, 3, 3, 1, 1, 1, 1)


def tile_grid(g: ConvGeom, m: int) -> tuple[int, int]:
    """(TH, TW): output tiles down and across."""
    return _ceil(g.OH, m), _ceil(g.OW, m)


@dataclass(frozen=True)
class Blocking:
    TH: int
    TW: int
    NTB: int  # tiles per block: GEMM columns (a multiple of NR)
    FB: int  # filters per product block (a multiple of MR)


def blocking(
    g: ConvGeom,
    m: int,
    mr: int,
    nr: int,
    v_block: int = _V_BLOCK_BYTES,
    m_block: int = _M_BLOCK_BYTES,
) -> Blocking:
    alpha = m + 2
    T = alpha * alpha
    TH, TW = tile_grid(g, m)
    per_col = 4 * T * g.C
    NTB = min(_round_up(TH * TW, nr), max(nr, (v_block // per_col) // nr * nr))
    FB = min(_round_up(g.F, mr), max(mr, (m_block // (4 * T * NTB)) // mr * mr))
    return Blocking(TH, TW, NTB, FB)


def _fill_winograd(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    from npas.codegen.host.conv import conv_geom, pack_a_panels

    g = conv_geom(layer, graph)
    m = int(variant.param("m"))
    tr = transforms(m)
    alpha = tr.alpha
    T = alpha * alpha
    L = isa.vector_floats
    MR, NV = variant.mr, variant.nr // L
    NR = NV * L
    b = blocking(
        g,
        m,
        MR,
        NR,
        variant.param("v_block", _V_BLOCK_BYTES),
        variant.param("m_block", _M_BLOCK_BYTES),
    )
    # One tile plane (row phase, column offset), a whole number of cache lines so that the
    # transform's loads of the first M tile rows are aligned.
    plane = _round_up((b.TH + 1) * b.TW, 16)
    PC = m * alpha * plane
    # Vector reads of the last block run up to NR + L floats past the last plane.
    planes_floats = _round_up(g.C * PC + NR + L, 16)
    # Slices are padded by a cache line so the T streams of a block do not alias in L1.
    v_stride = g.C * b.NTB + 16
    m_stride = b.FB * b.NTB + 16
    thread_floats = _round_up(T * v_stride + T * m_stride + L, 16)
    u = filter_transform(g.weight, tr)
    packed = np.concatenate([pack_a_panels(u[t], MR) for t in range(T)])
    params = dict(
        g.params(),
        m=m,
        alpha=alpha,
        MR=MR,
        NV=NV,
        MR_TAIL=g.F % MR,
        MTILES=_ceil(g.F, MR),
        TH=b.TH,
        TW=b.TW,
        NTB=b.NTB,
        FB=b.FB,
        PLANE=plane,
        PC=PC,
        PLANES_FLOATS=planes_floats,
        V_STRIDE=v_stride,
        M_STRIDE=m_stride,
        THREAD_FLOATS=thread_floats,
        in_program=program(tr.BT),
        out_program=program(tr.AT),
        residual=g.residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
    )
    return finish(
        op_token=window_token(f"wino{m}conv", (3, 3), (1, 1)),
        variant=variant,
        isa=isa,
        template="host/conv_winograd.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=(packed, g.bias),
        inputs=g.inputs,
        scratch_bytes_per_thread=4 * (planes_floats + thread_floats),
        macs=g.macs,
    )


# ---- selection: the per-layer cost model ----
#
# Seconds per image. Fitted (thread CPU time, 1 thread, relative least squares) on 26 layers,
# 16 to 512 channels, 7x7 to 224x224 outputs, on the AVX-512 host (Xeon, 2 MB L2 per core),
# each run as all 4 AVX-512 Winograd variants and as the implicit GEMM; the compute terms
# scale with the vector width on the other ISAs:
#   Winograd: T F C cols * 1.23e-11 s (F(4, 3)) or 1.36e-11 s (F(6, 3): more, longer
#               streams per block) * 16 / L: the batched GEMM over whole NR-column tiles
#             + 5.0e-10 s * 16 / L * (C + F) * tile pixels: the input and output transforms
#               (tile planes, B^T d B, A^T m A, the per-lane moves) per pixel and channel
#             + 5.9e-11 s * T F C * blocks: the transformed filters, streamed once per block
#   direct:   9 F C qcols / (5.28e9 L): the implicit GEMM over plane-wide rows in NR-column
#             tiles (84 GMAC/s at L = 16)
# plus, for both, 3e-10 s per filter float: inside a model the filters come from DRAM (the
# layers before evicted them), which the warm micro-benchmarks above do not see. Measured in
# ResNet-18's per-layer profile: F(4, 3) at 256x14x14 took 1.15 ms there against 0.6 ms warm
# (9.4 MB of transformed filters), the direct 512x7x7 layers 1.8 ms against 1.1 ms.
# The model underestimates F(6, 3) on large images (its 64 slices per block and bigger tile
# planes spill out of L2: at 64x112x112 and 64x224x224 F(4, 3) was 15-20% faster where the
# model said the opposite), and F(6, 3) loses 1.5x-2x more precision (max error / output RMS
# on ResNet-50/VGG-16 layers with the zoo's weights: direct 4e-6-9e-6, F(4, 3) 2e-5-6e-5,
# F(6, 3) 4e-5-1.3e-4), so F(6, 3) must be modelled 15% faster to be picked. Winograd must be
# modelled 10% faster than the direct kernel. On those layers the choice then costs 2.5% on
# average against the fastest of the five (at most ~25%, within the timing noise). Winograd
# wins by 1.5x-3x from 14x14 outputs up once C and F reach ~32 and loses at 7x7 (4 tiles leave
# the GEMM's columns mostly padding, and the 4x-7x larger transformed filters stream from
# memory for little work); below ~16 channels the transforms do not amortise.
_GEMM_S_PER_MAC = {4: 1.23e-11 * 16, 6: 1.36e-11 * 16}  # times 1 / L
_TRANSFORM_S_PER_PIXEL_CHANNEL = 5.0e-10 * 16  # times 1 / L
_FILTER_S_PER_FLOAT = 5.9e-11
_FILTER_DRAM_S_PER_FLOAT = 3.0e-10
_DIRECT_MACS_PER_LANE_S = 5.28e9
_PREFERENCE = {4: 1.0, 6: 1.15}
_MARGIN = 0.9


def winograd_seconds(g: ConvGeom, m: int, mr: int, nr: int, lanes: int) -> float:
    """Modelled seconds of F(m, 3) with an mr x nr GEMM tile on this layer."""
    b = blocking(g, m, mr, nr)
    tiles = b.TH * b.TW
    starts = range(0, tiles, b.NTB)
    cols = sum(_round_up(min(b.NTB, tiles - p0), nr) for p0 in starts)
    T = (m + 2) ** 2
    gemm = T * g.F * g.C * cols * _GEMM_S_PER_MAC[m] / lanes
    pixels = _round_up(tiles, lanes) * m * m
    transforms_ = _TRANSFORM_S_PER_PIXEL_CHANNEL / lanes * (g.C + g.F) * pixels
    filters = _FILTER_S_PER_FLOAT * T * g.F * g.C * len(starts)
    return g.N * (gemm + transforms_ + filters) + _FILTER_DRAM_S_PER_FLOAT * T * g.F * g.C


def direct_seconds(g: ConvGeom, nr: int, lanes: int) -> float:
    """Modelled seconds of the implicit GEMM on this layer."""
    qcols = _round_up(g.OH * (g.OW + 2), nr)
    gemm = g.N * 9 * g.F * g.C * qcols / (_DIRECT_MACS_PER_LANE_S * lanes)
    return gemm + _FILTER_DRAM_S_PER_FLOAT * 9 * g.F * g.C


def choose(g: ConvGeom, isa: Isa) -> Variant | None:
    """The Winograd variant for this layer on `isa`, or None when a direct kernel is faster
    (or the layer is no dense 3x3 stride-1 conv)."""
    if not _is_3x3s1(g):
        return None
    lanes = isa.vector_floats
    candidates = [v for v in WINOGRAD_VARIANTS if isa.name in v.isas]
    if not candidates:
        return None

    def cost(v: Variant) -> float:
        m = int(v.param("m"))
        return winograd_seconds(g, m, v.mr, v.nr, lanes) * _PREFERENCE[m]

    best = min(candidates, key=cost)
    direct_nr = max(v.nr for v in candidates)  # the direct kernels' tile is the widest
    return best if cost(best) < _MARGIN * direct_seconds(g, direct_nr, lanes) else None


def _winograd_ok(m: int, mr: int, nr: int):
    def can_serve(layer: Layer, graph: Graph, isa: Isa) -> bool:
        from npas.codegen.host.conv import _is_conv, conv_geom

        if not (is_vector_isa(isa) and _is_conv(layer, graph)):
            return False
        best = choose(conv_geom(layer, graph), isa)
        return best is not None and (int(best.param("m")), best.mr, best.nr) == (m, mr, nr)

    return can_serve


def _variant(isa: str, m: int, mr: int, nr: int) -> Variant:
    return Variant("dense", (isa,), _fill_winograd, _winograd_ok(m, mr, nr), mr, nr, (("m", m),))


# Tiles: each ISA's main GEMM tile, and on AVX-512 also a narrow 28x16 one for layers with few
# tiles per image (14x14: 16 tiles of F(4, 3) would fill half of a 32-column tile).
WINOGRAD_VARIANTS: tuple[Variant, ...] = (
    _variant("avx512", 6, 12, 32),
    _variant("avx512", 6, 28, 16),
    _variant("avx512", 4, 12, 32),
    _variant("avx512", 4, 28, 16),
    _variant("avx2", 6, 6, 16),
    _variant("avx2", 4, 6, 16),
    _variant("neon", 6, 8, 12),
    _variant("neon", 4, 8, 12),
)
