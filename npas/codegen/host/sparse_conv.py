"""Sparse kernels for pruned CONV2D and DENSE layers: one kernel per pruning scheme, chosen by a
cost model only where it is expected to beat the best dense kernel of the layer.

- pattern (3x3): conv_sparse_direct.cpp.j2. Output pixels vectorised along the row, a register
  tile of RB output rows x U vectors per filter; every library pattern gets its own fully
  unrolled code (its E positions are compile-time constants), run over the filter's kernels of
  that pattern (the filter-kernel reorder, npas.passes.layout, sorts them so); each input
  vector a pattern's taps need over the RB rows is loaded once and feeds every (row, tap)
  that reads it. Input comes from padded phase planes (npas/window.h), so strides and pads
  need no bounds checks. The kernels' weights and offsets are stored in the order a tile
  reads them (channel block by channel block, every filter within each: _block_major), so
  they stream sequentially when a layer's weights come cold from memory.
- unstructured: the same template, with one "pattern" of one weight: CSR per filter.
- block-punched (any kernel) and block (1x1): conv_block_sparse.cpp.j2. Filter block i is a
  dense GEMM Y[bf filters] = A_i * B_i over its kept (channel, position) pairs, on the shared
  register-blocked micro-kernel (npas/gemm.h) with B_i's rows read in place.
- DENSE (Gemm): dense_sparse.cpp.j2, block-punched/block as per-block GEMVs over the kept
  columns, unstructured as CSR.

The kernel name's scheme token says which scheme ran (blockpunched for block-punched).
NPAS_SPARSE=sparse|dense (npas.knobs) overrides the cost model for tests and benchmarks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from npas import knobs
from npas.codegen.host import winograd
from npas.codegen.host.common import Variant, act_expr, finish, is_vector_isa
from npas.codegen.host.window import plan_planes
from npas.codegen.kernel import LayerKernel
from npas.codegen.target import Isa
from npas.errors import NpasError
from npas.ir.graph import Graph, Layer, Sparsity
from npas.ir.ops import Op
from npas.passes import layout as lay
from npas.passes.prune.registry import pack

if TYPE_CHECKING:
    from npas.codegen.host.conv import ConvGeom

# conv.py lists these variants in its manifests, so its helpers are imported where used.

# Pruning scheme -> the scheme token of kernel names ([a-z0-9]+).
SCHEME_TOKENS = {
    "pattern": "pattern",
    "block-punched": "blockpunched",
    "block": "block",
    "unstructured": "unstructured",
}


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _round_up(a: int, b: int) -> int:
    return _ceil(a, b) * b


def _ints(values: Any, pad: int = 1) -> np.ndarray:
    """An int32 table as the float32 blob that carries it in weights.bin (bit for bit), with
    `pad` zeros after it (an empty table still gets a blob)."""
    a = np.asarray(values, np.int64).reshape(-1)
    if a.size and (a.min() < -(2**31) or a.max() >= 2**31):
        raise NotImplementedError("a sparse kernel's index table overflows int32")
    return np.concatenate([a, np.zeros(pad, np.int64)]).astype(np.int32).view(np.float32)


def _floats(values: np.ndarray, pad: int) -> np.ndarray:
    return np.concatenate([np.asarray(values, np.float32).reshape(-1), np.zeros(pad, np.float32)])


# ---------------------------------------------------------------------------------------------
# Which layers a sparse kernel may serve


def _conv_geom(layer: Layer, graph: Graph) -> ConvGeom | None:
    from npas.codegen.host.conv import _is_conv, conv_geom

    if layer.op is not Op.CONV2D or not _is_conv(layer, graph):
        return None
    return conv_geom(layer, graph)


def _consistent(sp: Sparsity | None, weight: np.ndarray, scheme: str) -> bool:
    """The layer's annotation is `scheme` and its mask covers every nonzero weight (a pass
    that changed the weights after annotation would otherwise drop them silently)."""
    if sp is None or sp.scheme != scheme or sp.mask is None:
        return False
    if sp.mask.shape != weight.shape:
        return False
    return not np.any(weight[~sp.mask])


def _geometry_ok(g: ConvGeom, scheme: str) -> bool:
    if g.G != 1:
        return False
    if scheme == "pattern":
        return (g.KH, g.KW, g.DH, g.DW) == (3, 3, 1, 1)
    if scheme == "block":
        return (g.KH, g.KW) == (1, 1)
    return True


def _mode() -> str:
    mode = knobs.SPARSE.get().strip().lower() or "auto"
    if mode not in ("auto", "sparse", "dense"):
        raise NpasError(
            f"NPAS_SPARSE={mode!r}: expected auto (sparse kernels where the cost model expects a "
            "gain), sparse (wherever one serves) or dense (never)"
        )
    return mode


def _conv_ok(scheme: str) -> Callable[[Layer, Graph, Isa], bool]:
    def can_serve(layer: Layer, graph: Graph, isa: Isa) -> bool:
        if not is_vector_isa(isa) or layer.sparsity is None:
            return False
        mode = _mode()
        if mode == "dense":
            return False
        g = _conv_geom(layer, graph)
        if g is None or not _geometry_ok(g, scheme):
            return False
        if not _consistent(layer.sparsity, g.weight, scheme):
            return False
        return mode == "sparse" or prefers_sparse_conv(g, layer.sparsity, isa)

    return can_serve


# ---------------------------------------------------------------------------------------------
# Cost model
#
# Modelled seconds of a layer = the MACs a kernel computes / (its rate x vector lanes)
# + staging its input (the copies into planes) + writing its output. Rates are per lane and
# second at one thread, measured on this repository's AVX-512 host (2.6 GHz Xeon, 2 MB L2)
# with benchmarks/bench_sparsity.py --calibrate (ResNet-50's 3x3 and 1x1 layers at rates
# 1.5-6, thread CPU time; the table is in benchmarks/RESULTS.md); other ISAs scale them with
# the vector width, as winograd.py does. Dense: the implicit/im2col GEMM (5.25e9, as
# winograd.direct_seconds) or, where winograd.choose() picks Winograd, the lesser of its
# fitted model and the GEMM's time / 2.1 (measured: Winograd runs 2.0-2.2x faster than the
# implicit GEMM on ResNet-50's 3x3 stride-1 layers; its model overestimates layers of 14x14
# and below by up to 2x). Sparse kernels compute whole tiles, so their MACs count the lanes a
# tile computes past the output (DirectPlan.valid). Measured efficiencies, relative to the
# dense GEMM: the block kernels (the same micro-kernel) ~85%; the direct kernels (pattern,
# unstructured), which reuse an input vector over a few rows of one filter only, ~60% on row
# tiles, ~35-40% on q-space tiles (their loads split cache lines; half-vector rows split a
# third of them; unstructured "qr" keeps the "q" rate, unmeasured beyond ResNet-50's 7x7,
# where it runs ~25% faster); they run faster the more kernels a filter keeps (pattern at
# 2.25x: ~75%), which the model ignores, erring on the dense side. On this host the direct
# kernels are bound by loads (~1.3 vector loads or broadcasts per cycle retire with FMAs; a
# pattern kernel over 4 rows x 2 vectors issues 31 load uops for its 32 FMAs), so they stay
# well below the GEMM's FMA rate. A sparse kernel is chosen when its time is below _MARGIN x
# the best dense time: the model is within ~25% on the calibration layers (stride-2 row tiles
# excepted: ~40% optimistic, still well past dense at 5x and above), and a wrong sparse
# choice costs more than a missed one.
_DENSE_RATE = 5.25e9
_WINOGRAD_GAIN = 2.1
_BLOCK_RATE = 4.5e9
_DIRECT_RATE = {
    ("pattern", "rows"): 3.2e9,
    ("pattern", "q"): 1.9e9,
    ("pattern", "qr"): 2.1e9,
    ("unstructured", "rows"): 2.8e9,
    ("unstructured", "q"): 2.0e9,
    ("unstructured", "qr"): 2.0e9,
}
_STAGE_S_PER_FLOAT = 0.13e-9 * 16  # per float copied into planes, per lane
_OUTPUT_S_PER_FLOAT = 0.14e-9  # writing the output (bandwidth: not per lane)
_MARGIN = 0.85


def _direct1x1(g: ConvGeom) -> bool:
    return (g.KH, g.KW, g.SH, g.SW) == (1, 1, 1, 1) and not any((g.PT, g.PL, g.PB, g.PR))


def dense_conv_seconds(g: ConvGeom, isa: Isa) -> float:
    """Modelled seconds of the best dense kernel of this layer."""
    lanes = isa.vector_floats
    nr = 2 * lanes
    pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
    cols = _round_up(g.P if _direct1x1(g) else min(int(g.P * 1.1), g.OH * pl.Wq), nr)
    gemm = g.N * g.F * g.K * cols / (_DENSE_RATE * lanes)
    best = gemm
    wino = winograd.choose(g, isa)
    if wino is not None:
        m = int(wino.param("m"))
        modelled = winograd.winograd_seconds(g, m, wino.mr, wino.nr, lanes)
        best = min(best, modelled, gemm / _WINOGRAD_GAIN)
    return best + g.N * g.F * g.P * _OUTPUT_S_PER_FLOAT


def sparse_conv_seconds(g: ConvGeom, sp: Sparsity, isa: Isa) -> float:
    """Modelled seconds of this layer's sparse kernel."""
    assert sp.mask is not None
    lanes = isa.vector_floats
    kept = float(np.count_nonzero(sp.mask))
    stage = 0.0
    if sp.scheme in ("block-punched", "block"):
        pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
        cols = g.P if _direct1x1(g) else g.OH * pl.Wq
        compute = g.N * kept * cols / (_BLOCK_RATE * lanes)
        if not _direct1x1(g):
            stage = g.N * g.C * pl.PC * _STAGE_S_PER_FLOAT / lanes
    else:
        e = 1 if sp.scheme == "unstructured" else int(sp.param("entries"))
        plan = direct_plan(g, e, isa)
        rate = _DIRECT_RATE[(sp.scheme, plan.kind)]
        compute = g.N * kept * g.P / plan.valid(g) / (rate * lanes)
        stage = g.N * g.C * len(plan.copies) * plan.PS * _STAGE_S_PER_FLOAT / lanes
    return compute + stage + g.N * g.F * g.P * _OUTPUT_S_PER_FLOAT


def prefers_sparse_conv(g: ConvGeom, sp: Sparsity, isa: Isa) -> bool:
    return sparse_conv_seconds(g, sp, isa) < _MARGIN * dense_conv_seconds(g, isa)


# ---------------------------------------------------------------------------------------------
# pattern and unstructured: direct kernels over phase planes (conv_sparse_direct.cpp.j2)


@dataclass(frozen=True)
class Load:
    """One input vector of a tile (per column vector u: base + off + u * L) and the (row,
    entry) pairs of the pattern that multiply it."""

    off: int
    uses: tuple[tuple[int, int], ...]


def pattern_loads(positions: tuple[int, ...], tap_off: tuple[int, ...], rows: int, ld: int):
    """The distinct input vectors of one pattern over `rows` output rows `ld` floats apart
    (load-redundancy elimination: a vector that several (row, tap) pairs read is loaded once
    and feeds them all), ascending by offset."""
    uses: dict[int, list[tuple[int, int]]] = {}
    for r in range(rows):
        for e, pos in enumerate(positions):
            uses.setdefault(r * ld + tap_off[pos], []).append((r, e))
    return tuple(Load(off, tuple(u)) for off, u in sorted(uses.items()))


@dataclass(frozen=True)
class DirectPlan:
    """How a direct sparse kernel stages its input and tiles its output.

    The input of each channel is copied into planes of Hq rows x WA floats, plane i holding
    xpad[r * SH + a_i][s * SW + b_i] for its (a_i, b_i) in `copies`. Kinds:
    - "rows": one plane per (row phase, kx), WA a multiple of the vector width, so every tap of
      a tile of RB output rows x U vectors is an aligned run (tap (ky, kx) of output row oy:
      plane (ky * DH % SH, kx * DW), row oy + ky * DH // SH); no load splits a cache line;
    - "q": the phase planes (one per (row phase, column phase)), a tile is U vectors of
      q-space columns q = oy * WA + ox (plane-wide rows, ox >= OW dropped): taps are unaligned
      runs at fixed offsets, but a small output wastes few lanes;
    - "qr": outputs at most L / 2 wide: the "rows" planes at WA = L / 2, tiled as "q" (a vector
      spans two output rows); taps at even row shifts are aligned."""

    kind: str
    RB: int
    U: int
    L: int  # vector width (floats)
    copies: tuple[tuple[int, int], ...]
    Hq: int
    WA: int
    PS: int  # floats per plane
    tap_off: tuple[int, ...]  # per kernel position: its plane and row/column shift

    @property
    def PC(self) -> int:
        return _round_up(len(self.copies) * self.PS, 16)

    def ntiles(self, g: ConvGeom) -> tuple[int, int]:
        """(tiles, column tiles per row of tiles)."""
        if self.kind in ("q", "qr"):
            return _ceil(g.OH * self.WA, self.U * self.L), 0
        nct = self.WA // (self.U * self.L)
        return _ceil(g.OH, self.RB) * nct, nct

    def valid(self, g: ConvGeom) -> float:
        """The fraction of computed lanes that are output pixels."""
        tiles, _ = self.ntiles(g)
        return g.P / (tiles * self.RB * self.U * self.L)

    def window(self, g: ConvGeom) -> int:
        """Floats of one channel's planes a tile reads."""
        if self.kind == "qr":
            shift = (g.KH - 1) * g.DH // g.SH * self.WA
            return len(self.copies) * _round_up(self.U * self.L + shift, 16)
        if self.kind == "q":
            span = (g.KH - 1) * g.DH // g.SH * self.WA + (g.KW - 1) * g.DW // g.SW
            return len(self.copies) * _round_up(self.U * self.L + span, 16)
        return len(self.copies) * (self.RB + (g.KH - 1) * g.DH // g.SH) * self.U * self.L


def make_plan(g: ConvGeom, isa: Isa, kind: str, rb: int, u: int) -> DirectPlan:
    L = isa.vector_floats
    taps = [(ky, kx) for ky in range(g.KH) for kx in range(g.KW)]
    if kind == "qr":
        # Narrow outputs (OW <= L / 2): the row layout (one plane per (row phase, kx), taps at
        # row shifts) at half a vector per row, tiled as q-space (a vector spans two output
        # rows): taps whose row shift is even stay aligned, and a tap's rows ky and ky + 2
        # share loads between neighbouring vectors.
        wa = L // 2
        if g.OW > wa:
            raise NpasError(f"a 'qr' tile needs outputs at most {wa} wide (L / 2), not {g.OW}")
        phases = sorted({ky * g.DH % g.SH for ky in range(g.KH)})
        copies = tuple((a, kx * g.DW) for a in phases for kx in range(g.KW))
        shift = (g.KH - 1) * g.DH // g.SH
        hq = _ceil(_round_up(g.OH * wa, u * L), wa) + shift
        ps = _round_up(hq * wa, 16)
        tap_off = tuple(
            copies.index((ky * g.DH % g.SH, kx * g.DW)) * ps + (ky * g.DH // g.SH) * wa
            for ky, kx in taps
        )
        return DirectPlan(kind, 1, u, L, copies, hq, wa, ps, tap_off)
    if kind == "q":
        pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
        copies = tuple(zip(pl.phases[0::2], pl.phases[1::2], strict=True))
        qn = g.OH * pl.Wq
        # The last tile reads up to a tile (plus the largest tap offset) past the output rows.
        hq = pl.Hq + _ceil(_round_up(qn, u * L) - qn, pl.Wq) + 1
        ps = _round_up(hq * pl.Wq, 16)
        tap_off = tuple(
            copies.index((ky * g.DH % g.SH, kx * g.DW % g.SW)) * ps
            + (ky * g.DH // g.SH) * pl.Wq
            + kx * g.DW // g.SW
            for ky, kx in taps
        )
        return DirectPlan(kind, 1, u, L, copies, hq, pl.Wq, ps, tap_off)
    phases = sorted({ky * g.DH % g.SH for ky in range(g.KH)})
    copies = tuple((a, kx * g.DW) for a in phases for kx in range(g.KW))
    wa = _round_up(g.OW, u * L)
    hq = _round_up(g.OH, rb) + (g.KH - 1) * g.DH // g.SH
    tap_off = tuple(
        copies.index((ky * g.DH % g.SH, kx * g.DW)) * hq * wa + (ky * g.DH // g.SH) * wa
        for ky, kx in taps
    )
    return DirectPlan(kind, rb, u, L, copies, hq, wa, hq * wa, tap_off)


def _weight_regs(isa: Isa, e: int) -> int:
    return _ceil(e, isa.vector_floats) if isa.lane_fma else e


# Measured on the AVX-512 host (pattern, 6x, the 3x3 layers of ResNet-50 and VGG-16): row
# tiles of 4 output rows with aligned taps run ~1.25x faster per computed lane than q-space
# tiles (whose loads split cache lines), and 4 rows beat 2, 7 or 8 (taller tiles widen each
# channel's slice, so fewer channels share L1) where 4 divides the output height; where it
# does not, up to _MAX_ROWS rows that waste fewer rows win (14x14: 2 tiles of 7 rows run
# ~3-4% faster than 4 of 4, whose last tile computes 2 rows past the output); 4 vectors per
# q-space tile beat 2, 3 and 6.
_ALIGNED_GAIN = 1.25
_ROWS = 4
_MAX_ROWS = 7
_Q_VECTORS = 4


def _tile_rows(oh: int, cap: int) -> int:
    """Rows of a row tile: _ROWS, or the fewest rows up to _MAX_ROWS (and `cap`) that waste
    fewer computed rows past the output."""
    best = max(1, min(_ROWS, oh, cap))
    for rb in range(best + 1, min(_MAX_ROWS, oh, cap) + 1):
        if _round_up(oh, rb) < _round_up(oh, best):
            best = rb
    return best


def direct_plan(g: ConvGeom, e: int, isa: Isa) -> DirectPlan:
    """Row tiles where they waste few lanes, else q-space tiles (half-vector rows for
    unstrided outputs at most half a vector wide): the plan with the most useful lanes per
    computed lane, weighted by the aligned tiles' measured gain. `e`:
    weights per kernel (their registers leave the rest to the accumulators)."""
    L = isa.vector_floats
    budget = max(1, isa.registers - _weight_regs(isa, e) - 4)
    rows = []
    for u in range(1, min(4, _ceil(g.OW, L), budget) + 1):
        rb = _tile_rows(g.OH, budget // u)
        rows.append(make_plan(g, isa, "rows", rb, u))
    best_rows = max(rows, key=lambda p: (p.valid(g), p.U))
    u = max(1, min(_Q_VECTORS, budget, _ceil(g.P, L)))
    q = make_plan(g, isa, "q", 1, u)
    if 2 * g.OW <= L and g.SH == 1:
        # Half-vector rows beat the phase plane where they waste no more lanes (measured:
        # ResNet-50's 7x7 layers ~5% faster); strided, their planes per row phase cost more
        # L1 than their aligned loads save.
        qr = make_plan(g, isa, "qr", 1, max(1, min(_Q_VECTORS, budget, _ceil(g.OH * L // 2, L))))
        if qr.valid(g) >= q.valid(g):
            q = qr
    return best_rows if _ALIGNED_GAIN * best_rows.valid(g) >= q.valid(g) else q


def acc_sets(plan: DirectPlan, e: int, isa: Isa) -> int:
    """Accumulator sets: two where the registers hold them (the accumulators of one set see E
    dependent FMAs per kernel; with RB x U below the FMA units' latency x throughput, one set
    leaves them idle), else one."""
    sets = 2 if e > 1 else 1
    while sets > 1 and sets * plan.RB * plan.U + _weight_regs(isa, e) + 4 > isa.registers:
        sets -= 1
    return sets


# A tile's input slice of one channel block stays in L1 while every filter slot of a work item
# reads it: the block is as many channels as fit this budget (the L1 of the cores we tune on;
# measured: 48 KB beats 16-32 KB and no blocking), partial sums waiting between blocks.
_SLICE_BYTES = 48 * 1024


def channel_block(g: ConvGeom, plan: DirectPlan, budget: int = _SLICE_BYTES) -> int:
    """Channels per block: the tile's slice of each channel's planes within `budget` bytes."""
    return max(1, min(g.C, budget // (4 * plan.window(g))))


def _direct_layout(g: ConvGeom, sp: Sparsity, block: int | None = None) -> lay.KernelLayout:
    assert sp.mask is not None
    w = np.where(sp.mask, g.weight, 0).astype(np.float32)
    packed = pack(w, sp)
    if sp.scheme == "pattern":
        return lay.filter_kernel_reorder(packed, block)
    return lay.csr_reorder(packed, block)


def _block_major(starts: np.ndarray, nblocks: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernels in the order the direct kernels read them: a tile runs channel block by
    channel block, every filter slot within each, so the kernels of (slot s, block b) are
    stored block-major and each block's weights stream sequentially (the layout stores them
    slot-major). Returns (order: layout kernel index of each stored kernel, first: [F * nblocks
    + 1] first stored kernel of segment s * nblocks + b, then the total)."""
    starts = np.asarray(starts, np.int64)
    nseg = starts.size - 1
    seg = np.arange(nseg).reshape(-1, nblocks).T.reshape(-1)  # segments in reading order
    lens = np.diff(starts)[seg]
    new0 = np.concatenate([[0], np.cumsum(lens)])
    first = np.empty(nseg + 1, np.int64)
    first[seg] = new0[:-1]
    first[-1] = new0[-1]
    order = np.repeat(starts[:-1][seg] - new0[:-1], lens) + np.arange(new0[-1])
    return order, first


def _fill_direct(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _conv_geom(layer, graph)
    assert g is not None and layer.sparsity is not None
    sp = layer.sparsity
    L = isa.vector_floats
    taps = g.KH * g.KW
    flat_taps = sp.scheme == "unstructured"  # the position is folded into the kernel's offset
    if flat_taps:
        patterns: list[tuple[int, ...]] = [(0,)]
    else:
        patterns = [tuple(int(p) for p in pat) for pat in sp.param("library")]
    forced = variant.param("plan")  # (kind, RB, U): a tuner's or a test's choice
    plan = (make_plan(g, isa, *forced) if forced
            else direct_plan(g, len(patterns[0]) if patterns else 1, isa))  # fmt: skip
    layout = _direct_layout(g, sp, channel_block(g, plan, variant.param("slice", _SLICE_BYTES)))
    assert layout.flat == flat_taps
    if flat_taps:
        cols = layout.columns.astype(np.int64)
        koff = (cols // taps) * plan.PC + np.asarray(plan.tap_off, np.int64)[cols % taps]
        tap_off: tuple[int, ...] = (0,)
    else:
        koff = layout.columns.astype(np.int64) * plan.PC
        tap_off = plan.tap_off
    loads = [pattern_loads(p, tap_off, plan.RB, plan.WA) for p in patterns]
    ntiles, nct = plan.ntiles(g)
    params = dict(
        g.params(),
        L=L,
        RB=plan.RB,
        U=plan.U,
        S=acc_sets(plan, layout.entries, isa),
        E=layout.entries,
        K=len(patterns),
        NB=layout.nblocks,
        kind="q" if plan.kind == "qr" else plan.kind,
        NTILES=ntiles,
        NCT=nct,
        NSB=min(ntiles, 16),
        Hq=plan.Hq,
        WA=plan.WA,
        PS=plan.PS,
        PC=plan.PC,
        copies=[v for c in plan.copies for v in c],
        patterns=[[(ld.off, ld.uses) for ld in p] for p in loads],
        positions=patterns,
        residual=g.residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
    )
    order, first = _block_major(layout.starts, layout.nblocks)
    weights = (
        _floats(layout.weights[order], L),
        g.bias,
        _ints(koff[order]),
        _ints(layout.filters),
        _ints(layout.runs),
        _ints(first),
        _ints(layout.starts[:: layout.nblocks]),
    )
    part_floats = g.F * plan.RB * plan.U * L if layout.nblocks > 1 else 0
    return finish(
        op_token=g.op_token("conv"),
        variant=variant,
        isa=isa,
        template="host/conv_sparse_direct.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=weights,
        inputs=g.inputs,
        scratch_bytes_per_thread=4 * (g.C * plan.PC + part_floats),
        macs=g.macs,
        tile=(plan.RB, plan.U * L),
    )


# ---------------------------------------------------------------------------------------------
# block-punched and block: a GEMM per filter block (conv_block_sparse.cpp.j2)

# B footprint of a column block (the kept input rows of every filter block over its columns)
# kept within L2, as the dense GEMM kernels do.
_B_BLOCK_BYTES = 512 * 1024


def _block_layout(w: np.ndarray, sp: Sparsity, mr: int) -> lay.BlockLayout:
    assert sp.mask is not None
    packed = pack(np.where(sp.mask, w, 0).astype(np.float32), sp)
    if sp.scheme == "block":
        return lay.block_layout(packed, mr)
    return lay.block_punched_layout(packed, mr)


def _panel_rows(f_starts: np.ndarray, mr: int) -> list[int]:
    """Distinct row counts of the register panels (mr, and the remainders)."""
    rows: set[int] = set()
    for f0, f1 in itertools.pairwise(f_starts):
        n = int(f1 - f0)
        rows.update(min(mr, n - r) for r in range(0, n, mr))
    return sorted(rows) or [mr]


def _fill_block(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _conv_geom(layer, graph)
    assert g is not None and layer.sparsity is not None
    sp = layer.sparsity
    L = isa.vector_floats
    MR, NV = variant.mr, variant.nr // L
    NR = NV * L
    bl = _block_layout(g.weight, sp, MR)
    direct = _direct1x1(g)
    params: dict[str, Any] = dict(g.params(), direct=direct, MR=MR, NV=NV, NR=NR)
    if direct:
        qn = g.P
        koff = bl.channels.astype(np.int64)  # times the row length, P (or the tail's)
        planes_floats = 0
    else:
        pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
        qn = g.OH * pl.Wq
        koff = bl.channels.astype(np.int64) * pl.PC + np.asarray(pl.tap_off)[bl.positions]
        reach = (g.C - 1) * pl.PC + max(pl.tap_off) + _round_up(qn, NR) + NR
        planes_floats = _round_up(max(g.C * pl.PC, reach) + L, 16)
        params.update(Hq=pl.Hq, Wq=pl.Wq, phases=pl.phases, PC=pl.PC)
    rem = qn % NR
    nv_tail = _ceil(rem, L) if rem else 0
    tail_floats = g.C * nv_tail * L if direct and nv_tail else 0
    row_bytes = 4 * g.C * g.KH * g.KW
    nc = max(NR, (_B_BLOCK_BYTES // max(row_bytes, 1)) // NR * NR)
    nc = min(nc, _round_up(qn, NR))
    params.update(
        QN=qn,
        NV_TAIL=nv_tail,
        NC=nc,
        NQB=_ceil(qn, nc),
        NFB=bl.nblocks,
        f_starts=[int(v) for v in bl.f_starts],
        panel_rows=_panel_rows(bl.f_starts, MR),
        PLANES_FLOATS=planes_floats,
        TAIL_FLOATS=tail_floats,
        residual=g.residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
    )
    weights = (
        _floats(bl.panels, L),
        g.bias,
        _ints(koff),
        _ints(bl.k_starts),
        _ints(bl.a_starts),
    )
    return finish(
        op_token=g.op_token("conv"),
        variant=variant,
        isa=isa,
        template="host/conv_block_sparse.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=weights,
        inputs=g.inputs,
        scratch_bytes_per_thread=4 * (planes_floats + tail_floats),
        macs=g.macs,
    )


def _variants(scheme: str, fill: Callable[..., LayerKernel], tiles: dict[str, tuple[int, int]]):
    token = SCHEME_TOKENS[scheme]
    return tuple(Variant(token, (isa,), fill, _conv_ok(scheme), mr, nr)
                 for isa, (mr, nr) in tiles.items())  # fmt: skip


# The block kernels' register tiles: MR filters (a block of bf = 8 filters is one panel, or
# two on AVX2's 16 registers) x NR pixels. The direct kernels pick their tile per layer.
_BLOCK_TILES = {"avx512": (8, 48), "avx2": (4, 24), "neon": (8, 12)}
_DIRECT_TILES = {"avx512": (0, 0), "avx2": (0, 0), "neon": (0, 0)}

SPARSE_VARIANTS: tuple[Variant, ...] = (
    *_variants("pattern", _fill_direct, _DIRECT_TILES),
    *_variants("block-punched", _fill_block, _BLOCK_TILES),
    *_variants("block", _fill_block, _BLOCK_TILES),
    *_variants("unstructured", _fill_direct, _DIRECT_TILES),
)


# ---------------------------------------------------------------------------------------------
# DENSE (Gemm): block-punched, block (per-block GEMVs) and unstructured (CSR), dense_sparse.cpp.j2

# A fully connected layer of a CNN runs on a batch of a few rows: it streams its weights once,
# so its time is their bytes (from L3/memory, measured ~10 GB/s on the host) plus the MACs.
_FC_BYTES_PER_S = 10e9
_CSR_RATE = 1.0e9  # scalar gathers: MACs/s, not per lane


def _dense_operands(layer: Layer, graph: Graph):
    from npas.codegen.host.conv import _dense_parts

    x, weight, bias, residual = _dense_parts(layer, graph)
    weight = np.asarray(weight, np.float32)
    return x, weight, bias, residual, graph.value(x).size // weight.shape[1]


def dense_fc_seconds(m: int, f: int, c: int, isa: Isa) -> float:
    return m * f * c / (_DENSE_RATE * isa.vector_floats) + 4 * f * c / _FC_BYTES_PER_S


def sparse_fc_seconds(m: int, sp: Sparsity, isa: Isa) -> float:
    assert sp.mask is not None
    kept = float(np.count_nonzero(sp.mask))
    if sp.scheme == "unstructured":
        return m * kept / _CSR_RATE + 8 * kept / _FC_BYTES_PER_S
    bf = int(sp.param("bf"))
    padded = kept * _round_up(bf, isa.vector_floats) / bf
    return m * padded / (_BLOCK_RATE * isa.vector_floats) + 4 * padded / _FC_BYTES_PER_S


def _fc_ok(scheme: str) -> Callable[[Layer, Graph, Isa], bool]:
    def can_serve(layer: Layer, graph: Graph, isa: Isa) -> bool:
        from npas.codegen.host.conv import _dense_vec_ok

        if not is_vector_isa(isa) or layer.sparsity is None or layer.op is not Op.DENSE:
            return False
        mode = _mode()
        if mode == "dense" or not _dense_vec_ok(layer, graph, isa):
            return False
        _, weight, _, _, m = _dense_operands(layer, graph)
        if not _consistent(layer.sparsity, weight, scheme):
            return False
        if mode == "sparse":
            return True
        f, c = weight.shape
        return sparse_fc_seconds(m, layer.sparsity, isa) < _MARGIN * dense_fc_seconds(m, f, c, isa)

    return can_serve


def _fill_fc(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual, m = _dense_operands(layer, graph)
    sp = layer.sparsity
    assert sp is not None and sp.mask is not None
    f, c = weight.shape
    L = isa.vector_floats
    w = np.where(sp.mask, weight, 0).astype(np.float32)
    b = np.zeros(f, np.float32) if bias is None else np.asarray(bias, np.float32).reshape(f)
    params: dict[str, Any] = dict(M=m, C=c, F=f, bias=bias is not None)
    if sp.scheme == "unstructured":
        csr = pack(w, sp)
        params.update(csr=True, NFB=f)
        weights = (_floats(csr.values, L), b, _ints(csr.col_idx), _ints(csr.row_ptr))
        tile = None
    else:
        bf = min(int(sp.param("bf")), f)
        bl = _block_layout(weight, sp, bf)
        rp = _round_up(bf, L)
        blobs = []
        for i in range(bl.nblocks):
            _, _, a = bl.block(i)
            padded = np.zeros((a.shape[1], rp), np.float32)
            padded[:, : a.shape[0]] = a.T
            blobs.append(padded.reshape(-1))
        params.update(csr=False, NFB=bl.nblocks, BF=bf, RP=rp, f_starts=list(bl.f_starts))
        weights = (_floats(np.concatenate(blobs) if blobs else np.zeros(0), L), b,
                   _ints(bl.channels), _ints(bl.k_starts))  # fmt: skip
        tile = (bf, 1)
    params.update(
        residual=residual is not None,
        act=act_expr(layer.epilogue.act, "x", vector=True),
        parallel=m * f * c >= 1 << 18,
    )
    return finish(
        op_token="dense",
        variant=variant,
        isa=isa,
        template="host/dense_sparse.cpp.j2",
        params=params,
        epilogue=layer.epilogue,
        weights=weights,
        inputs=(x, residual) if residual else (x,),
        macs=m * f * c,
        tile=tile,
    )


DENSE_SPARSE_VARIANTS: tuple[Variant, ...] = tuple(
    Variant(SCHEME_TOKENS[scheme], (isa,), _fill_fc, _fc_ok(scheme))
    for scheme in ("block-punched", "block", "unstructured")
    for isa in ("avx512", "avx2", "neon")
)
