"""NEON conv-like kernels (CONV2D dense/implicit/grouped/depthwise, DENSE, MATMUL,
CONV_TRANSPOSE2D) under qemu-aarch64 against numpy: every host case plus tile edges of the
8x12 NEON tile (M rows filling whole lane vectors or not, K below/at/above a step pair, pixels
not a multiple of 12). Each test asserts the NEON variant ran, not a scalar fallback."""

from __future__ import annotations

import arm64_support as A
import numpy as np
import pytest
from test_kernels_conv import ACT_CASES, CONV_CASES, CONVT_CASES, DENSE_CASES, Conv, _dense

from npas.codegen.host import conv as conv_family
from npas.codegen.target import NEON
from npas.ir.ops import Op

H = A.H
P1 = (1, 1, 1, 1)

NEON_CONV_CASES = {
    # M (filters) at / below / above the 8-row tile, in whole lane vectors or not
    "f8_p12_k5": Conv(1, 5, 4, 3, 8, (1, 1)),
    "f12_k1": Conv(1, 1, 7, 5, 12, (1, 1)),
    "f9_3x3": Conv(1, 3, 6, 6, 9, (3, 3), pads=P1, act="relu"),
    "f4_k2": Conv(1, 2, 5, 5, 4, (1, 1), residual=True),
    "f17_3x3_s2": Conv(1, 7, 11, 9, 17, (3, 3), (2, 2), P1),
    "gconv_fg10": Conv(1, 6, 7, 7, 20, (3, 3), pads=P1, groups=2, act="relu6"),
    "1x1_k33_wide": Conv(1, 33, 3, 41, 24, (1, 1), residual=True, act="hswish"),
    "dw3x3_s2_c4": Conv(1, 4, 7, 7, 4, (3, 3), (2, 2), P1, groups=4),
    "dw5x5_s1_c9": Conv(1, 9, 8, 13, 9, (5, 5), pads=(2, 2, 2, 2), groups=9, act="silu"),
}
ALL_CONV_CASES = {**CONV_CASES, **NEON_CONV_CASES}
# A reference-kernel build for arm64 (NPAS_ISA=scalar) per family.
SCALAR_CONV_CASES = ("3x3_s2_odd", "dw3x3_s2", "grouped_2", "1x1_f33_p49_batch2")

NEON_DENSE_CASES = {
    "fc_m4": _dense(4, 37, 29, act="relu"),
    "fc_m8": _dense(8, 13, 24, residual=True),
    "fc_m16_k1": _dense(16, 1, 25),
}
ALL_DENSE_CASES = {**DENSE_CASES, **NEON_DENSE_CASES}

MATMUL_CASES = {
    "5x7x9": ((5, 7), (7, 9), False),
    "batch_13x20x33": ((2, 3, 13, 20), (2, 3, 20, 33), False),
    "bcast_both": ((2, 1, 4, 8), (3, 8, 17), False),
    "const_b": ((4, 6, 8), (8, 5), True),
    "vec_left": ((7,), (3, 7, 18), False),
    "8x3x12": ((8, 3), (3, 12), False),
    "16x1x25": ((16, 1), (1, 25), False),
}


def _winograd_serves(layer, graph) -> bool:
    return any(
        "neon" in v.isas and "winograd" in v.fill.__module__ and v.serves(layer, graph, NEON)
        for v in conv_family.CONV2D_MANIFEST
    )


def neon_conv_family(case: Conv, layer, graph) -> str | None:
    """The NEON kernel family the manifest rules pick: the host tier's rule with the 8x12
    tile's 12 columns (so a host case that forces im2col by its L2 footprint may well be an
    implicit GEMM here); None when a Winograd variant serves (its own tests name it)."""
    if case.groups > 1 and case.c == case.groups == case.f:
        return "dwconv"
    if _winograd_serves(layer, graph):
        return None
    base = "conv" if case.groups == 1 else "gconv"
    if case.k == (1, 1) and case.stride == (1, 1) and not any(case.pads):
        return base
    g = conv_family.conv_geom(layer, graph)
    if case.stride != (1, 1) and g.Cg >= 16 and g.P >= 256:
        return base
    pl = conv_family.plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
    nr = 12
    tiles_q, tiles_p = -(-g.OH * pl.Wq // nr), -(-g.P // nr)
    fits = conv_family._implicit_block(g, pl, nr) is not None
    return "i" + base if tiles_q <= 1.10 * tiles_p and fits else base


def _matmul_case(sa, sb, const_b):
    rng = np.random.default_rng(5)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    layer, graph = H.one_layer_graph(
        Op.MATMUL, [("a", sa), ("b", b if const_b else sb)], [("y", ref.shape)]
    )
    return layer, graph, ([a] if const_b else [a, b]), ref


def _conv_params():
    out = [pytest.param(n, c, "neon", id=f"{n}-neon") for n, c in ALL_CONV_CASES.items()]
    out += [pytest.param(n, CONV_CASES[n], "scalar", id=f"{n}-scalar") for n in SCALAR_CONV_CASES]
    return out


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for param in _conv_params():
        _, case, isa = param.values
        layer, graph, _, _ = case.build()
        kernels.append(A.lower(layer, graph, isa))
    for build in ALL_DENSE_CASES.values():
        kernels.append(A.lower(*build()[:2]))
    for spec in MATMUL_CASES.values():
        kernels.append(A.lower(*_matmul_case(*spec)[:2]))
    for case in CONVT_CASES.values():
        kernels.append(A.lower(*case.build()[:2]))
    A.prebuild(kernels)


@pytest.mark.parametrize(("name", "case", "isa"), _conv_params())
def test_conv2d(name: str, case: Conv, isa: str) -> None:
    layer, graph, feeds, ref = case.build()
    kernel = A.lower(layer, graph, isa)
    family = neon_conv_family(case, layer, graph) if isa == "neon" else None
    info = H.expect_kernel(kernel, isa, family)
    assert info["kernel"] == case.k and info["stride"] == case.stride
    if isa == "neon":
        tile = (8, 8) if info["family"] == "dwconv" else (8, 12)  # rows x columns per step
        assert (info["mr"], info["nr"]) == tile, kernel.kernel
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)


def test_every_activation_is_covered() -> None:
    # The act_* / dwact_* cases of the host list run above on NEON: one per fused activation.
    assert ACT_CASES <= set(ALL_CONV_CASES)


@pytest.mark.parametrize("name", list(ALL_DENSE_CASES))
def test_dense(name: str) -> None:
    layer, graph, feeds, ref = ALL_DENSE_CASES[name]()
    kernel = A.lower(layer, graph)
    info = H.expect_kernel(kernel, "neon", "dense")
    m = int(np.prod(graph.shape(layer.inputs[0])[:-1]))
    assert info["mr"] == min(m, 8), kernel.kernel
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)


@pytest.mark.parametrize("name", list(MATMUL_CASES))
def test_matmul(name: str) -> None:
    layer, graph, feeds, ref = _matmul_case(*MATMUL_CASES[name])
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "neon", "matmul")
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)


@pytest.mark.parametrize("name", list(CONVT_CASES))
def test_conv_transpose(name: str) -> None:
    layer, graph, feeds, ref = CONVT_CASES[name].build()
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "neon", "convt")
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)
