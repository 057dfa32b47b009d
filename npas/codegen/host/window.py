"""The shared filler of windowed per-channel kernels (window.cpp.j2): depthwise convolution,
max pooling and average pooling are one algorithm over padded phase planes, differing in the
tap reduction (fma with a weight, max, sum) and the epilogue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from npas.codegen.host.common import Variant, finish
from npas.codegen.kernel import LayerKernel
from npas.codegen.target import Isa
from npas.ir.attrs import Epilogue


def _round_up(a: int, b: int) -> int:
    return -(-a // b) * b


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Planes:
    Hq: int
    Wq: int
    phases: tuple[int, ...]  # flattened (a, b) pairs of the used phases
    tap_off: tuple[int, ...]  # per tap (ky, kx): plane offset within one channel's planes
    PC: int  # floats of one channel's planes (rounded up to a cache line)


def plan_planes(OH: int, OW: int, KH: int, KW: int, SH: int, SW: int, DH: int, DW: int) -> Planes:
    Hp = (OH - 1) * SH + (KH - 1) * DH + 1
    Wp = (OW - 1) * SW + (KW - 1) * DW + 1
    Hq, Wq = _ceil(Hp, SH), _ceil(Wp, SW)
    taps = [(ky, kx) for ky in range(KH) for kx in range(KW)]
    used = sorted({((ky * DH) % SH, (kx * DW) % SW) for ky, kx in taps})
    index = {ph: i for i, ph in enumerate(used)}
    tap_off = tuple(
        index[((ky * DH) % SH, (kx * DW) % SW)] * Hq * Wq + ((ky * DH) // SH) * Wq + (kx * DW) // SW
        for ky, kx in taps
    )
    flat = tuple(v for ph in used for v in ph)
    return Planes(Hq, Wq, flat, tap_off, _round_up(len(used) * Hq * Wq, 16))


@dataclass(frozen=True)
class WindowGeom:
    N: int
    C: int
    H: int
    W: int
    OH: int
    OW: int
    KH: int
    KW: int
    SH: int
    SW: int
    DH: int
    DW: int
    PT: int
    PL: int
    PB: int
    PR: int

    def params(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.__dict__.items()}


def avg_divisors(g: WindowGeom, count_include_pad: bool) -> tuple[list[float], list[float]]:
    """1/count per output row and column: the count of a window is separable. With
    count_include_pad, taps in the padding count but taps past it (ceil_mode) do not, as in
    ONNX Runtime."""

    def counts(out: int, size: int, k: int, s: int, d: int, pb: int, pe: int) -> list[float]:
        lo, hi = (-pb, size + pe) if count_include_pad else (0, size)
        inv = []
        for o in range(out):
            n = sum(1 for t in range(k) if lo <= o * s + t * d - pb < hi)
            inv.append(1.0 / n if n else float("nan"))
        return inv

    rows = counts(g.OH, g.H, g.KH, g.SH, g.DH, g.PT, g.PB)
    cols = counts(g.OW, g.W, g.KW, g.SW, g.DW, g.PL, g.PR)
    return rows, cols


def _plane_params(
    g: WindowGeom, pl: Planes, mode: str, inputs: Any, act: str, used: int, plane_floats: int
) -> dict[str, Any]:
    """Template parameters both window kernels (q-space and row-blocked) share."""
    return dict(
        g.params(),
        mode=mode,
        Hq=pl.Hq,
        Wq=pl.Wq,
        phases=pl.phases,
        PLANES_USED=used,
        PLANE_FLOATS=plane_floats,
        pad_value=float("-inf") if mode == "max" else 0.0,
        residual=len(inputs) > 1,
        act=act,
        units=g.N * g.C,
        parallel=g.N * g.C > 1,
    )


def fill_window(
    *,
    op_token: str,
    mode: str,  # conv | max | avg
    geom: WindowGeom,
    variant: Variant,
    isa: Isa,
    inputs: tuple[str, ...],
    weights: tuple[np.ndarray, ...] = (),
    epilogue: Epilogue | None = None,
    act: str = "v",
    count_include_pad: bool = False,
    macs: int = 0,
) -> LayerKernel:
    g = geom
    L = isa.vector_floats
    pl = plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
    if variant.param("rows", 0):
        return _fill_window_rows(
            op_token=op_token, mode=mode, g=g, pl=pl, variant=variant, isa=isa, inputs=inputs,
            weights=weights, epilogue=epilogue, act=act, count_include_pad=count_include_pad,
            macs=macs,
        )  # fmt: skip
    qn = g.OH * pl.Wq
    U = max(1, min(variant.param("unroll", 4), -(-qn // L)))
    qn_pad = _round_up(qn, U * L)
    used = len(pl.phases) // 2 * pl.Hq * pl.Wq
    reach = max(pl.tap_off) + qn_pad  # furthest float the q loop reads
    plane_floats = _round_up(max(used, reach) + L, 16)
    params = _plane_params(g, pl, mode, inputs, act, used, plane_floats)
    params.update(rows=False, U=U, tap_off=pl.tap_off, QN_PAD=qn_pad)
    if mode == "avg":
        rows, cols = avg_divisors(g, count_include_pad)
        params.update(inv_row=rows, inv_col=cols + [0.0] * L)
    return finish(
        op_token=op_token,
        variant=variant,
        isa=isa,
        template="host/window.cpp.j2",
        params=params,
        epilogue=epilogue,
        weights=weights,
        inputs=inputs,
        scratch_bytes_per_thread=4 * (plane_floats + qn_pad + L),
        macs=macs,
    )


def row_block(
    g: WindowGeom, pl: Planes, mode: str, isa: Isa, rows: int, unroll: int
) -> tuple[int, int]:
    """(RB, U): output rows x vectors per step of the row-blocked schedule, at most the
    variant's, within the output and within the vector registers (accumulators, the conv
    weights, a few loaded vectors)."""
    L = isa.vector_floats
    taps = g.KH * g.KW
    weight_regs = 0 if mode != "conv" else (-(-taps // L) if isa.lane_fma else taps)
    budget = max(1, isa.registers - weight_regs - 4)
    U = max(1, min(unroll, -(-g.OW // L)))
    RB = max(1, min(rows, g.OH))
    while RB * U > budget and RB > 1:
        RB -= 1
    while RB * U > budget and U > 1:
        U -= 1
    return RB, U


def _fill_window_rows(
    *,
    op_token: str,
    mode: str,
    g: WindowGeom,
    pl: Planes,
    variant: Variant,
    isa: Isa,
    inputs: tuple[str, ...],
    weights: tuple[np.ndarray, ...],
    epilogue: Epilogue | None,
    act: str,
    count_include_pad: bool,
    macs: int,
) -> LayerKernel:
    """The row-blocked schedule of the window algorithm: RB output rows x U vectors per step,
    straight from the phase planes to the output. Output row r of a step reads plane offset
    r*Wq + tap_off[tap] past the step's origin, so rows share plane vectors (a 3x3 stride-1
    window: (RB + 2) * 3 distinct vectors for RB * 9 taps); each distinct vector is loaded
    once and feeds every (row, tap) that reads it, and the epilogue runs in registers."""
    L = isa.vector_floats
    RB, U = row_block(g, pl, mode, isa, variant.param("rows"), variant.param("unroll", 4))
    uses: dict[int, list[tuple[int, int]]] = {}
    for r in range(RB):
        for tap, off in enumerate(pl.tap_off):
            uses.setdefault(r * pl.Wq + off, []).append((r, tap))
    loads = sorted(uses.items())
    groups = _ceil(g.OH, RB)
    last_ox0 = (g.OW - 1) // (U * L) * (U * L)
    reach = (groups - 1) * RB * pl.Wq + last_ox0 + loads[-1][0] + U * L
    used = len(pl.phases) // 2 * pl.Hq * pl.Wq
    plane_floats = _round_up(max(used, reach), 16)
    params = _plane_params(g, pl, mode, inputs, act, used, plane_floats)
    params.update(rows=True, RB=RB, U=U, loads=loads, WREGS=-(-(g.KH * g.KW) // L))
    if mode == "avg":
        inv_rows, inv_cols = avg_divisors(g, count_include_pad)
        params.update(inv_row=inv_rows, inv_col=inv_cols + [0.0] * (U * L))
    return finish(
        op_token=op_token,
        variant=variant,
        isa=isa,
        template="host/window.cpp.j2",
        params=params,
        epilogue=epilogue,
        weights=weights,
        inputs=inputs,
        scratch_bytes_per_thread=4 * plane_floats,
        macs=macs,
    )
