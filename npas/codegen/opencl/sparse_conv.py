"""OpenCL kernels for pruned CONV2D and DENSE layers: one kernel per pruning scheme.

- pattern (3x3, any stride, dilation and groups): sparse_direct.cl.j2 over the filter-kernel
  reorder (npas.passes.layout). Reordered filters are taken 4 at a time ("quads"); a quad's
  kernels are stored interleaved, step k holding the k-th kernel of each of its 4 filters as
  {input channel, pattern id, E weights}, filters with fewer kernels padded with zero kernels.
  The reorder sorts filters by kernel count, so neighbours differ little: on random 64-512
  channel layers at 3-10x the padding is 0.1-1.5% of the entries, where quads kept inside the
  reorder's equal-count groups would leave 18-31% of their lanes idle. A work-item computes a
  quad x 4 output pixels along W (2 or 1 for wide strides and narrow outputs); a work-group is
  one quad over many pixels, so the switch over the library's patterns, which sits outside
  each pattern's unrolled taps, is uniform across the group (no divergence).
- unstructured (kernels of at most 9 taps, groups allowed): the same template, each kept
  weight a "kernel" of a one-entry pattern at its position (CSR reorder), so its taps need no
  runtime bounds logic either.
- block-punched (any kernel) and block (1x1): sparse_block.cl.j2. The filters of a filter
  block keep the same (channel, position) pairs: a work-item computes 4 or 8 of them (float4
  weights) x 4 output pixels over the block's kept pairs. 1x1 stride-1 unpadded layers read
  4 consecutive pixels with one vector load.
- DENSE (Gemm): sparse_fc.cl.j2, block-punched / block per filter block and unstructured as
  interleaved CSR rows of 4 filters; a work-group splits one unit's kept columns over its
  work-items and sums them in local memory.

Index tables ride in the weights buffer, which holds half under fp16 storage, so every index
is stored as base-2048 digits (exact in half); see sparse_lib.cl.j2.

Selection: a variant serves a layer only when its annotation (layer.sparsity) is the
variant's scheme, its mask covers every nonzero weight, and NPAS_SPARSE (npas.knobs) allows:
`dense` never, `sparse` wherever the geometry fits, `auto` (default) when the kept fraction of
weights is at most _AUTO_MAX_KEPT[scheme] (conv) or _AUTO_MAX_KEPT_FC[scheme] (dense). The
bounds follow the work each kernel spends per kept weight against a dense kernel's; they are
not fitted to timings: PoCL runs on this machine's CPU, and its timings say nothing about a
phone's GPU (a tuner on the device should replace them):
  pattern: ~2.5 input loads with a select per tap (a dense kernel shares each load over 4
  filters): kept <= 1/3, i.e. some connectivity pruning on top of a 4-entry pattern's 2.25x;
  block-punched / block: float4 weights shared by a unit's filters, as dense: kept <= 1/2;
  unstructured: a uniform switch, the index loads and one input element per weight, no reuse
  across filters or taps: kept <= 1/8.
  Fully connected layers stream their weights once (bandwidth-bound): block kept <= 3/4,
  CSR (an index per weight doubles the bytes) kept <= 2/5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from npas.codegen.host.common import Variant
from npas.codegen.host.sparse_conv import (
    SCHEME_TOKENS,
    _block_layout,
    _consistent,
    _conv_geom,
    _dense_operands,
    _mode,
)
from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl.common import act_cl, finish_variant, round_up
from npas.codegen.target import Isa
from npas.ir.graph import Graph, Layer, Sparsity
from npas.ir.ops import Op
from npas.passes import layout as lay
from npas.passes.prune.registry import pack

if TYPE_CHECKING:
    from npas.codegen.host.conv import ConvGeom

ISAS = ("opencl",)

# ---------------------------------------------------------------------------------------------
# Index tables as base-2048 digits (exact in half: fp16 storage converts the weights buffer)

DIGIT = 2048
_MAX_DIGITS = 3


def digits(max_value: int) -> int:
    """Digits an index table whose largest value is `max_value` needs."""
    d = 1
    while max_value >= DIGIT**d:
        d += 1
    if d > _MAX_DIGITS:
        raise NotImplementedError(
            f"a sparse kernel's index {max_value} exceeds {DIGIT**_MAX_DIGITS - 1} (the index "
            "tables' range); this layer is too large for the OpenCL sparse kernels"
        )
    return d


def encode(values: Any, d: int) -> np.ndarray:
    """Non-negative ints [..., k] -> float32 [..., k * d], each as d digits, most significant
    first."""
    a = np.asarray(values, np.int64)
    if a.size and a.min() < 0:
        raise ValueError("index tables hold non-negative values only")
    parts = [(a // DIGIT ** (d - 1 - i)) % DIGIT for i in range(d)]
    return np.stack(parts, axis=-1).reshape(*a.shape[:-1], a.shape[-1] * d).astype(np.float32)


def decode(table: np.ndarray, d: int) -> np.ndarray:
    """The inverse of encode (tests read the tables back with it)."""
    t = np.asarray(table).reshape(-1, d).astype(np.int64)
    out = np.zeros(t.shape[0], np.int64)
    for i in range(d):
        out = out * DIGIT + t[:, i]
    return out


# ---------------------------------------------------------------------------------------------
# Which layers a sparse kernel may serve

_AUTO_MAX_KEPT = {"pattern": 1 / 3, "block-punched": 1 / 2, "block": 1 / 2, "unstructured": 1 / 8}
_AUTO_MAX_KEPT_FC = {"block-punched": 3 / 4, "block": 3 / 4, "unstructured": 2 / 5}
# Unstructured convs switch over their kernel positions as one-entry patterns: beyond 3x3 the
# switch and its window of input registers grow past what pays; such layers stay dense.
_MAX_CSR_TAPS = 9


def kept_fraction(sp: Sparsity) -> float:
    assert sp.mask is not None
    return float(np.count_nonzero(sp.mask)) / max(1, sp.mask.size)


def _geometry_ok(g: ConvGeom, scheme: str) -> bool:
    if scheme == "pattern":
        return (g.KH, g.KW) == (3, 3)
    if scheme == "unstructured":
        return g.KH * g.KW <= _MAX_CSR_TAPS
    if scheme == "block":
        return g.G == 1 and (g.KH, g.KW) == (1, 1)
    return g.G == 1  # block-punched


def _serves(
    layer: Layer,
    scheme: str,
    weight_of: Callable[[], np.ndarray | None],
    max_kept: dict[str, float],
) -> bool:
    """The selection rule above, for a layer whose weight `weight_of()` gives (None where
    the layer's geometry has no kernel of this scheme)."""
    if layer.sparsity is None or layer.sparsity.scheme != scheme:
        return False
    mode = _mode()
    if mode == "dense":
        return False
    weight = weight_of()
    if weight is None or not _consistent(layer.sparsity, weight, scheme):
        return False
    return mode == "sparse" or kept_fraction(layer.sparsity) <= max_kept[scheme]


def _conv_ok(scheme: str) -> Callable[[Layer, Graph, Isa], bool]:
    def can_serve(layer: Layer, graph: Graph, isa: Isa) -> bool:
        def weight() -> np.ndarray | None:
            g = _conv_geom(layer, graph)
            return g.weight if g is not None and _geometry_ok(g, scheme) else None

        return _serves(layer, scheme, weight, _AUTO_MAX_KEPT)

    return can_serve


def _fc_ok(scheme: str) -> Callable[[Layer, Graph, Isa], bool]:
    def can_serve(layer: Layer, graph: Graph, isa: Isa) -> bool:
        from npas.codegen.host.conv import _dense_ok

        def weight() -> np.ndarray | None:
            if not _dense_ok(layer, graph, isa):
                return None
            return _dense_operands(layer, graph)[1]

        return layer.op is Op.DENSE and _serves(layer, scheme, weight, _AUTO_MAX_KEPT_FC)

    return can_serve


# ---------------------------------------------------------------------------------------------
# Work sizes (the tunables a tuner may change through the variant's params)

_GROUP = 64  # work-items per work-group along the pixels (one quad/unit per group)
_MAX_WINDOW = 10  # input columns a direct work-item keeps in registers per kernel row


def _group(n: int, want: int) -> int:
    """Work-group size along a dimension of n items: `want`, or the power of two covering n
    when n is smaller (a group never runs more than one quad, so it cannot fill up with
    another's work)."""
    g = 1
    while g < min(n, want):
        g *= 2
    return g


def _row_pixels(ow: int) -> int:
    return 4 if ow > 2 else ow


def _direct_pixels(g: ConvGeom) -> int:
    """Pixels along W per work-item: 4 where the window of input columns it reads per kernel
    row stays small (strides 1 and 2 on 3x3), fewer for wide strides and narrow outputs."""
    px = _row_pixels(g.OW)
    while px > 1 and (px - 1) * g.SW + (g.KW - 1) * g.DW + 1 > _MAX_WINDOW:
        px //= 2
    return px


def _token(g: ConvGeom) -> str:
    family = "conv" if g.G == 1 else ("dwconv" if g.depthwise else "gconv")
    return g.op_token(family)


def _padded(g: ConvGeom) -> bool:
    return any((g.PT, g.PL, g.PB, g.PR))


def _bias(values: np.ndarray | None, f: int, pad: int) -> np.ndarray:
    out = np.zeros(f + pad, np.float32)
    if values is not None:
        out[:f] = np.asarray(values, np.float32).reshape(f)
    return out


# ---------------------------------------------------------------------------------------------
# Quads: reordered filters 4 at a time, their kernels interleaved (pattern, unstructured)


def interleave_quads(
    counts: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slots (filters in reordered order) with `counts[s]` kernels starting at `starts[s]` of
    the layout's kernel arrays, grouped 4 at a time. Returns (source, quad_start, quad_kc):
    source[i] = the layout kernel at interleaved entry i (-1: a zero padding kernel); quad q
    owns entries quad_start[q] + 4 k + j (k < quad_kc[q], j: its slot 4 q + j)."""
    f = counts.size
    nq = -(-f // 4)
    padded = np.zeros(nq * 4, np.int64)
    padded[:f] = counts
    quad_kc = padded.reshape(nq, 4).max(axis=1)
    quad_start = np.concatenate([[0], np.cumsum(4 * quad_kc)])[:-1]
    source = np.full(int(4 * quad_kc.sum()), -1, np.int64)
    slot = np.repeat(np.arange(f), counts)
    k = np.arange(slot.size) - np.repeat(starts[:f], counts)
    source[quad_start[slot // 4] + 4 * k + slot % 4] = np.repeat(starts[:f], counts) + k
    return source, quad_start, quad_kc


def _window_code(
    library: list[tuple[int, ...]], g: ConvGeom, px: int
) -> tuple[list[dict[str, Any]], list[tuple[int, int]], list[int], list[tuple[int, int]]]:
    """Per library pattern the input elements it loads (each once) and, per entry, the lanes
    its weight multiplies; plus the kernel rows, window columns and (row, column) cells any
    pattern reads. Window column cw of a work-item is input column ix0 + cw."""
    patterns = []
    cells: set[tuple[int, int]] = set()
    for positions in library:
        loads: dict[tuple[int, int], str] = {}
        taps = []
        for e, pos in enumerate(positions):
            ky, kx = divmod(int(pos), g.KW)
            lanes = []
            for p in range(px):
                cell = (ky, p * g.SW + kx * g.DW)
                loads.setdefault(cell, f"x{cell[0]}_{cell[1]}")
                lanes.append(loads[cell])
            taps.append((e, lanes))
        cells.update(loads)
        patterns.append({"loads": [(n, ky, cw) for (ky, cw), n in sorted(loads.items())],
                         "taps": taps})  # fmt: skip
    rows = sorted({ky for ky, _ in cells})
    cols = sorted({cw for _, cw in cells})
    return patterns, [(ky, ky * g.DH) for ky in rows], cols, sorted(cells)


@dataclass(frozen=True)
class DirectTables:
    """What the direct kernel streams. Entry i (quad q owns entries quads[q, 0] + 4 k + j,
    k < quads[q, 1], j: its filter quads[q, 2 + j], F for none) is a kernel of input channel
    channels[i] using library pattern pattern_ids[i] with weights[i] in the pattern's position
    order; padding entries have zero weights."""

    library: list[tuple[int, ...]]
    channels: np.ndarray  # int64 [entries]
    pattern_ids: np.ndarray  # int64 [entries]
    weights: np.ndarray  # float32 [entries, E]
    quads: np.ndarray  # int64 [quads, 6]
    dc: int  # digits of a channel
    dq: int  # digits of the quad table

    @property
    def entry_floats(self) -> int:
        return self.dc + 1 + self.weights.shape[1]

    def blobs(self) -> tuple[np.ndarray, np.ndarray]:
        entries = np.concatenate(
            [encode(self.channels[:, None], self.dc),
             self.pattern_ids[:, None].astype(np.float32), self.weights], axis=1,
        )  # fmt: skip
        return entries.reshape(-1), encode(self.quads, self.dq).reshape(-1)


def direct_tables(g: ConvGeom, sp: Sparsity) -> DirectTables:
    """The filter-kernel (pattern) or CSR (unstructured) reorder of a layer, its filters
    grouped in quads with their kernels interleaved."""
    assert sp.mask is not None
    packed = pack(np.where(sp.mask, g.weight, 0).astype(np.float32), sp)
    taps = g.KH * g.KW
    if sp.scheme == "pattern":
        kl = lay.filter_kernel_reorder(packed)
        library = [tuple(int(v) for v in pat) for pat in kl.library]
        chans, pids = kl.columns.astype(np.int64), kl.pattern_ids.astype(np.int64)
    else:
        kl = lay.csr_reorder(packed)
        cols = kl.columns.astype(np.int64)
        used, pids = np.unique(cols % taps, return_inverse=True)
        library = [(int(p),) for p in used]
        chans = cols // taps
    counts = kl.counts.astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    # Grouped convs: a kernel's channel within its filter's group -> the input channel.
    slot_of_kernel = np.repeat(np.arange(g.F), counts)
    chans = chans + (kl.filters[slot_of_kernel].astype(np.int64) // g.Fg) * g.Cg
    source, quad_start, quad_kc = interleave_quads(counts, starts)
    real = source >= 0
    ent_chan = np.zeros(source.size, np.int64)
    ent_pid = np.zeros(source.size, np.int64)
    ent_w = np.zeros((source.size, kl.entries), np.float32)
    ent_chan[real], ent_pid[real] = chans[source[real]], pids[source[real]]
    ent_w[real] = kl.weights[source[real]]
    nq = quad_kc.size
    fq = np.full(nq * 4, g.F, np.int64)
    fq[: g.F] = kl.filters
    quads = np.concatenate([quad_start[:, None], quad_kc[:, None], fq.reshape(nq, 4)], axis=1)
    return DirectTables(library, ent_chan, ent_pid, ent_w, quads, digits(g.C - 1),
                        digits(int(quads.max())))  # fmt: skip


def _finish_conv(
    layer: Layer,
    g: ConvGeom,
    variant: Variant,
    template: str,
    params: dict[str, Any],
    launch: tuple[tuple[int, ...], tuple[int, ...]],
    weights: tuple[np.ndarray, ...],
    tile: tuple[int, int],
) -> LayerKernel:
    return finish_variant(
        variant,
        op_token=_token(g),
        template=template,
        params=params,
        inputs=g.inputs,
        launch=launch,
        epilogue=layer.epilogue,
        weights=weights,
        macs=g.macs,
        tile=tile,
    )


def _fill_direct(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _conv_geom(layer, graph)
    assert g is not None and layer.sparsity is not None
    tables = direct_tables(g, layer.sparsity)
    entries, quads = tables.blobs()
    px = variant.param("px") or _direct_pixels(g)
    patterns, rows, cols, cells = _window_code(tables.library, g, px)
    pad = _padded(g)
    ntx = -(-g.OW // px)
    nt = g.OH * ntx
    lx = _group(nt, variant.param("group", _GROUP))
    params = dict(
        N=g.N, C=g.C, H=g.H, W=g.W, F=g.F, OH=g.OH, OW=g.OW, SH=g.SH, SW=g.SW, PT=g.PT,
        PL=g.PL, PX=px, NTX=ntx, NT=nt, pad=pad, rows=rows, cols=cols,
        masks=cells if pad else [], patterns=patterns, E=tables.weights.shape[1], DC=tables.dc,
        DQ=tables.dq, ES=tables.entry_floats, residual=g.residual is not None,
        act=act_cl(layer.epilogue.act, "v"),
    )  # fmt: skip
    weights = (entries, quads, _bias(g.bias, g.F, 4))
    launch = (round_up(nt, lx), tables.quads.shape[0], g.N), (lx, 1, 1)
    return _finish_conv(layer, g, variant, "opencl/sparse_direct.cl.j2", params, launch, weights,
                        tile=(4, px))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Units: filter blocks 4 * FV filters at a time over the block's kept pairs (block schemes)


def _filter_vectors(bl: lay.BlockLayout, variant: Variant) -> int:
    """float4 filter vectors per work-item: a whole block of 8 (the schemes' default bf)
    shares each input load, smaller blocks would only compute padding."""
    forced = variant.param("fv")
    if forced:
        return int(forced)
    rows = np.diff(bl.f_starts)
    return 2 if rows.size and int(rows.max()) > 4 else 1


def block_units(bl: lay.BlockLayout, fv: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit table [units, 5]: first pair, pairs, first weight, first filter, filters;
    weights: per unit its pairs x 4 fv, k-major, zero past the block's filters)."""
    width = 4 * fv
    table, blobs = [], []
    offset = 0
    for i in range(bl.nblocks):
        _, _, a = bl.block(i)
        f0, rows = int(bl.f_starts[i]), int(bl.f_starts[i + 1] - bl.f_starts[i])
        k0, kk = int(bl.k_starts[i]), a.shape[1]
        for r in range(0, rows, width):
            nf = min(width, rows - r)
            panel = np.zeros((kk, width), np.float32)
            panel[:, :nf] = a[r : r + nf].T
            table.append((k0, kk, offset, f0 + r, nf))
            blobs.append(panel.reshape(-1))
            offset += panel.size
    weights = np.concatenate(blobs) if blobs else np.zeros(0, np.float32)
    return np.asarray(table, np.int64).reshape(-1, 5), weights


def _fill_block(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    g = _conv_geom(layer, graph)
    assert g is not None and layer.sparsity is not None
    bl = _block_layout(g.weight, layer.sparsity, 8)
    fv = _filter_vectors(bl, variant)
    units, weights = block_units(bl, fv)
    taps = g.KH * g.KW
    dc = digits(g.C - 1)
    pairs = encode(bl.channels[:, None], dc)
    if taps > 1:
        ky, kx = np.divmod(bl.positions.astype(np.int64), g.KW)
        shifts = np.stack([ky * g.DH, kx * g.DW], axis=1)
        if shifts.size and shifts.max() >= DIGIT:
            raise NotImplementedError(f"{layer.name}: kernel extent beyond {DIGIT} pixels")
        pairs = np.concatenate([pairs, shifts.astype(np.float32)], axis=1)
    du = digits(int(units.max()) if units.size else 0)
    flat = (g.KH, g.KW, g.SH, g.SW) == (1, 1, 1, 1) and not _padded(g)
    px = variant.param("px") or (4 if flat else _row_pixels(g.OW))
    ntx = -(-g.OW // px)
    nt = -(-g.P // px) if flat else g.OH * ntx
    lx = _group(nt, variant.param("group", _GROUP))
    nunits = max(1, units.shape[0])
    if not units.size:  # nothing kept: one unit of no pairs still writes the epilogue
        units = np.asarray([(0, 0, 0, 0, g.F)], np.int64)
    params = dict(
        C=g.C, H=g.H, W=g.W, F=g.F, OH=g.OH, OW=g.OW, SH=g.SH, SW=g.SW, PT=g.PT, PL=g.PL,
        PX=px, NT=nt, NTX=ntx, flat=flat, pad=_padded(g), taps=taps, FV=fv, DU=du, DC=dc,
        PS=pairs.shape[1], residual=g.residual is not None, act=act_cl(layer.epilogue.act, "v"),
    )  # fmt: skip
    blobs = (
        np.concatenate([weights, np.zeros(4 * fv, np.float32)]),
        pairs.reshape(-1),
        encode(units, du).reshape(-1),
        _bias(g.bias, g.F, 4 * fv),
    )
    launch = (round_up(nt, lx), nunits, g.N), (lx, 1, 1)
    return _finish_conv(layer, g, variant, "opencl/sparse_block.cl.j2", params, launch, blobs,
                        tile=(4 * fv, px))  # fmt: skip


# ---------------------------------------------------------------------------------------------
# DENSE (Gemm)

_MAX_ROWS = 4  # input rows per work-item: each weight loaded once feeds them all
_STEPS_PER_LANE = 16


def _lanes(steps: int, want: int) -> int:
    """Work-items sharing a unit's kept columns: enough that each takes ~16 steps."""
    lanes = 1
    while lanes < want and lanes * _STEPS_PER_LANE < steps:
        lanes *= 2
    return lanes


def _fill_fc(layer: Layer, graph: Graph, isa: Isa, variant: Variant) -> LayerKernel:
    x, weight, bias, residual, m = _dense_operands(layer, graph)
    sp = layer.sparsity
    assert sp is not None and sp.mask is not None
    f, c = weight.shape
    dc = digits(c - 1)
    block = sp.scheme != "unstructured"
    if block:
        bl = _block_layout(weight, sp, 8)
        fv = _filter_vectors(bl, variant)
        units, wblob = block_units(bl, fv)
        steps = int(units[:, 1].max()) if units.size else 0
        if not units.size:
            units = np.asarray([(0, 0, 0, 0, f)], np.int64)
        du = digits(int(units.max()))
        weights: tuple[np.ndarray, ...] = (
            np.concatenate([wblob, np.zeros(4 * fv, np.float32)]),
            encode(bl.channels[:, None], dc).reshape(-1),
            encode(units, du).reshape(-1),
            _bias(bias, f, 4 * fv),
        )
        tile_rows = 4 * fv
    else:
        fv = 1
        kl = lay.csr_reorder(pack(np.where(sp.mask, weight, 0).astype(np.float32), sp))
        counts = kl.counts.astype(np.int64)
        source, quad_start, quad_kc = interleave_quads(
            counts, np.concatenate([[0], np.cumsum(counts)])
        )
        real = source >= 0
        cols = np.zeros(source.size, np.int64)
        vals = np.zeros(source.size, np.float32)
        cols[real] = kl.columns[source[real]]
        vals[real] = kl.weights[source[real], 0]
        steps_cols = encode(cols.reshape(-1, 4), dc)  # [steps, 4 * dc]
        entries = np.concatenate([steps_cols, vals.reshape(-1, 4)], axis=1)
        nq = quad_kc.size
        fq = np.full(nq * 4, f, np.int64)
        fq[:f] = kl.filters
        units = np.concatenate([(quad_start // 4)[:, None], quad_kc[:, None], fq.reshape(nq, 4)],
                               axis=1)  # fmt: skip
        steps = int(quad_kc.max()) if nq else 0
        du = digits(int(units.max()))
        weights = (entries.reshape(-1), encode(units, du).reshape(-1), _bias(bias, f, 4))
        tile_rows = 4
    mb = min(m, _MAX_ROWS)
    lr = _lanes(steps, variant.param("group", _GROUP))
    params = dict(
        M=m, C=c, F=f, MB=mb, LR=lr, FV=fv, DU=du, DC=dc, block=block,
        residual=residual is not None, act=act_cl(layer.epilogue.act, "v"),
    )  # fmt: skip
    return finish_variant(
        variant,
        op_token="dense",
        template="opencl/sparse_fc.cl.j2",
        params=params,
        inputs=(x, residual) if residual else (x,),
        launch=((lr, units.shape[0], -(-m // mb)), (lr, 1, 1)),
        epilogue=layer.epilogue,
        weights=weights,
        macs=m * f * c,
        tile=(tile_rows, mb),
    )


# ---------------------------------------------------------------------------------------------
# Manifest entries (conv.py lists them first in CONV2D_MANIFEST / DENSE_MANIFEST)


# Tunables: group = work-items per work-group (conv: along the pixels; dense: the most work-items
# that split a unit's columns); px = output pixels per work-item (1, 2 or 4) and fv = float4
# filter vectors per work-item of the block kernels (1 or 2), 0 = chosen per layer.
_CONV_PARAMS = (("group", _GROUP), ("px", 0))
_BLOCK_PARAMS = (("group", _GROUP), ("px", 0), ("fv", 0))
_FC_PARAMS = (("group", _GROUP), ("fv", 0))


def _variant(
    scheme: str,
    fill: Callable[..., LayerKernel],
    ok: Callable[[str], Any],
    params: tuple[tuple[str, Any], ...],
) -> Variant:
    return Variant(SCHEME_TOKENS[scheme], ISAS, fill, ok(scheme), params=params)


CONV2D_VARIANTS: tuple[Variant, ...] = (
    _variant("pattern", _fill_direct, _conv_ok, _CONV_PARAMS),
    _variant("block-punched", _fill_block, _conv_ok, _BLOCK_PARAMS),
    _variant("block", _fill_block, _conv_ok, _BLOCK_PARAMS),
    _variant("unstructured", _fill_direct, _conv_ok, _CONV_PARAMS),
)

DENSE_VARIANTS: tuple[Variant, ...] = tuple(
    _variant(scheme, _fill_fc, _fc_ok, _FC_PARAMS)
    for scheme in ("block-punched", "block", "unstructured")
)
