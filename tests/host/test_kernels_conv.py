"""Host conv-like kernels (CONV2D dense/grouped/depthwise, DENSE, MATMUL, CONV_TRANSPOSE2D) on
edge shapes, every vector ISA of this machine and the scalar reference, against numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import kernel_harness as H
import numpy as np
import pytest

from npas.codegen.host import conv as conv_family
from npas.ir.attrs import Conv2dAttrs, ConvTranspose2dAttrs
from npas.ir.ops import Op

ISAS = [*H.vector_isas(), "scalar"]
ACTS = H.ACTIVATIONS


@dataclass(frozen=True)
class Conv:
    n: int
    c: int
    h: int
    w: int
    f: int
    k: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    residual: bool = False
    act: str | None = None
    bias: bool = True
    family: str = ""  # the intended vector kernel family; "" = the default rule below
    isas: tuple[str, ...] = field(default=tuple(ISAS))

    def expected_family(self, isa: str, layer, graph) -> str:
        """dwconv for depthwise; GEMM reading x directly (conv/gconv) for 1x1 stride-1
        unpadded; implicit GEMM over phase planes (iconv/igconv) when its plane-wide rows cost
        at most 10% more column tiles and a q block's planes stay L2-sized, unless strided
        with many pixels and channels; else im2col GEMM (conv/gconv). References keep the
        plain family name."""
        if self.groups > 1 and self.c == self.groups == self.f:
            return "dwconv"
        base = "conv" if self.groups == 1 else "gconv"
        if isa == "scalar" or self.family:
            return self.family if isa != "scalar" and self.family else base
        if self.k == (1, 1) and self.stride == (1, 1) and not any(self.pads):
            return base
        g = conv_family.conv_geom(layer, graph)
        if self.stride != (1, 1) and g.Cg >= 16 and g.P >= 256:
            return base
        pl = conv_family.plan_planes(g.OH, g.OW, g.KH, g.KW, g.SH, g.SW, g.DH, g.DW)
        nr = 32 if isa == "avx512" else 16
        tiles_q, tiles_p = -(-g.OH * pl.Wq // nr), -(-g.P // nr)
        fits = conv_family._implicit_block(g, pl, nr) is not None
        return "i" + base if tiles_q <= 1.10 * tiles_p and fits else base

    def build(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((self.f, self.c // self.groups, *self.k)).astype(np.float32)
        b = rng.standard_normal(self.f).astype(np.float32) if self.bias else None
        x = rng.standard_normal((self.n, self.c, self.h, self.w)).astype(np.float32)
        ref = H.conv2d_ref(x, w, b, self.stride, self.pads, self.dilation, self.groups)
        ins = [("x", x.shape), ("w", w)] + ([("b", b)] if b is not None else [])
        return H.epilogue_graph(
            Op.CONV2D, ins, [x], ref,
            Conv2dAttrs(self.k, self.stride, self.pads, self.dilation, self.groups),
            rng=rng, residual=self.residual, act=self.act,
        )  # fmt: skip


P1 = (1, 1, 1, 1)
CONV_CASES = {
    # 1x1 stride 1 (direct B packing): K below / at / above the tile and KC block, F and
    # pixels not multiples of the tile or the vector width.
    "1x1_k3": Conv(1, 3, 5, 7, 5, (1, 1)),
    "1x1_k12": Conv(1, 12, 8, 8, 12, (1, 1)),
    "1x1_k700_kblocked": Conv(1, 700, 6, 6, 40, (1, 1), residual=True, act="relu"),
    "1x1_f33_p49_batch2": Conv(2, 16, 7, 7, 33, (1, 1), residual=True, act="relu"),
    "1x1_s2": Conv(1, 16, 9, 9, 24, (1, 1), (2, 2)),
    "1x1_pad": Conv(1, 8, 5, 6, 16, (1, 1), pads=(1, 0, 0, 2)),
    # 3x3: strides, pads, dilation, asymmetric pads, odd sizes
    "3x3_s1": Conv(1, 16, 13, 11, 20, (3, 3), pads=P1),
    "3x3_s1_wide": Conv(1, 16, 5, 62, 20, (3, 3), pads=P1),
    "3x3_s2_odd": Conv(1, 17, 15, 13, 30, (3, 3), (2, 2), P1, act="relu6"),
    "3x3_d2": Conv(1, 8, 12, 12, 16, (3, 3), pads=(2, 2, 2, 2), dilation=(2, 2)),
    "3x3_asym": Conv(2, 5, 9, 10, 7, (3, 3), (2, 1), (0, 1, 2, 0), residual=True),
    "3x3_nopad_nobias": Conv(1, 6, 8, 9, 12, (3, 3), bias=False, act="hswish"),
    "3x3_k_above_kc": Conv(1, 64, 7, 7, 24, (3, 3), pads=P1),
    # planes of a q block too big for L2: im2col GEMM (packed B blocks, K blocked)
    "3x3_s2_im2col_kblocked": Conv(1, 600, 24, 24, 16, (3, 3), (2, 2), P1, family="conv"),
    "5x3_s2x1_d1x2": Conv(1, 4, 11, 12, 6, (5, 3), (2, 1), (2, 1, 1, 2), (1, 2)),
    "7x7_s2_stem": Conv(1, 3, 32, 30, 16, (7, 7), (2, 2), (3, 3, 3, 3), act="relu"),
    # grouped (per-group GEMM)
    "grouped_2": Conv(1, 8, 9, 9, 12, (3, 3), pads=P1, groups=2),
    "grouped_4_res": Conv(2, 16, 6, 7, 8, (1, 1), groups=4, residual=True),
    "grouped_mult": Conv(1, 4, 7, 7, 8, (3, 3), (2, 2), P1, groups=4),
    # depthwise (direct window kernel)
    "dw3x3_s1": Conv(1, 16, 9, 11, 16, (3, 3), pads=P1, groups=16, act="relu6"),
    "dw3x3_s2": Conv(2, 7, 10, 13, 7, (3, 3), (2, 2), P1, groups=7),
    "dw5x5_d2_asym": Conv(
        1,
        5,
        13,
        10,
        5,
        (5, 5),
        (2, 2),
        (0, 1, 2, 1),
        (2, 2),
        groups=5,
        residual=True,
    ),
    "dw3x3_wide": Conv(1, 3, 5, 40, 3, (3, 3), pads=P1, groups=3),
    "dw7x7_s1x2": Conv(1, 4, 12, 12, 4, (7, 1), (1, 2), (3, 0, 3, 0), groups=4),
}
# every epilogue activation on the GEMM conv and the depthwise conv
for _name in ACTS:
    CONV_CASES[f"act_{_name}"] = Conv(1, 6, 6, 6, 13, (3, 3), pads=P1, residual=True, act=_name)
    CONV_CASES[f"dwact_{_name}"] = Conv(1, 6, 6, 6, 6, (3, 3), pads=P1, groups=6, act=_name)
# What another target's case list must keep to cover every activation.
ACT_CASES = {f"{kind}_{a}" for kind in ("act", "dwact") for a in ACTS}


def _params(cases):
    return [
        pytest.param(name, case, isa, id=f"{name}-{isa}")
        for name, case in cases.items()
        for isa in case.isas
    ]


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for case in CONV_CASES.values():
        layer, graph, _, _ = case.build()
        kernels += [H.lower(layer, graph, isa) for isa in case.isas]
    for case in DENSE_CASES.values():
        layer, graph, _, _ = case()
        kernels += [H.lower(layer, graph, isa) for isa in ISAS]
    for case in CONVT_CASES.values():
        layer, graph, _, _ = case.build()
        kernels += [H.lower(layer, graph, isa) for isa in ISAS]
    H.prebuild(kernels)


def _check(kernel, feeds, ref, threads=(1, 2), rtol=1e-4, atol=1e-4):
    scale = max(1.0, float(np.abs(ref).max()))
    for t in threads:
        (y,) = H.run(kernel, feeds, [ref.shape], threads=t)
        np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol * scale, err_msg=f"threads={t}")


@pytest.mark.parametrize(("name", "case", "isa"), _params(CONV_CASES))
def test_conv2d(name: str, case: Conv, isa: str) -> None:
    layer, graph, feeds, ref = case.build()
    kernel = H.lower(layer, graph, isa)
    info = H.expect_kernel(kernel, isa, case.expected_family(isa, layer, graph))
    assert info["kernel"] == case.k and info["stride"] == case.stride
    assert kernel.inputs == (("x", "r") if case.residual else ("x",))
    assert kernel.macs == np.prod(ref.shape) * case.c // case.groups * case.k[0] * case.k[1]
    _check(kernel, feeds, ref)


def test_identical_layers_share_one_translation_unit() -> None:
    a = CONV_CASES["3x3_s1"].build(seed=0)
    b = CONV_CASES["3x3_s1"].build(seed=1)  # other weights, same shapes
    isa = ISAS[0]
    ka, kb = H.lower(a[0], a[1], isa), H.lower(b[0], b[1], isa)
    assert ka.entry == kb.entry and ka.sources == kb.sources
    assert not np.array_equal(ka.weights[0], kb.weights[0])
    assert ka.entry.startswith(ka.kernel + "_")
    assert list(ka.sources) == [ka.entry + ".cpp"]


def test_manifest_order_reference_last() -> None:
    for manifest in (
        conv_family.CONV2D_MANIFEST,
        conv_family.DENSE_MANIFEST,
        conv_family.MATMUL_MANIFEST,
        conv_family.CONV_TRANSPOSE_MANIFEST,
    ):
        assert manifest[-1].scheme == "ref" and manifest[-1].isas == ("*",)
        assert all(v.scheme != "ref" for v in manifest[:-1])


# ---- DENSE ----


def _dense(m: int, c: int, f: int, bias=True, residual=False, act=None, lead=()):
    def build():
        rng = np.random.default_rng(3)
        x = rng.standard_normal((*lead, m, c)).astype(np.float32)
        w = rng.standard_normal((f, c)).astype(np.float32)
        b = rng.standard_normal(f).astype(np.float32)
        ref = x.astype(np.float64) @ w.T.astype(np.float64) + (b if bias else 0)
        ins = [("x", x.shape), ("w", w)] + ([("b", b)] if bias else [])
        return H.epilogue_graph(Op.DENSE, ins, [x], ref, rng=rng, residual=residual, act=act)

    return build


DENSE_CASES = {
    "fc_m1": _dense(1, 300, 100),
    "fc_m1_wide": _dense(1, 64, 1000, act="relu"),
    "fc_m2": _dense(2, 17, 35, residual=True),
    "fc_m13": _dense(13, 40, 70, bias=False, act="sigmoid"),
    "fc_m5_lead": _dense(5, 9, 33, lead=(3,)),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(DENSE_CASES))
def test_dense(name: str, isa: str) -> None:
    layer, graph, feeds, ref = DENSE_CASES[name]()
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, "dense")
    _check(kernel, feeds, ref)


# ---- MATMUL ----


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(
    ("sa", "sb", "const_b"),
    [
        ((5, 7), (7, 9), False),
        ((2, 3, 13, 20), (2, 3, 20, 33), False),
        ((2, 1, 4, 8), (3, 8, 17), False),  # batch broadcast both ways
        ((4, 6, 8), (8, 5), True),  # constant right operand, broadcast over batch
        ((7,), (3, 7, 18), False),  # 1-D left operand
    ],
)
def test_matmul(sa: tuple, sb: tuple, const_b: bool, isa: str) -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    layer, graph = H.one_layer_graph(
        Op.MATMUL, [("a", sa), ("b", b if const_b else sb)], [("y", ref.shape)]
    )
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, "matmul")
    _check(kernel, [a] if const_b else [a, b], ref)


# ---- CONV_TRANSPOSE2D ----


@dataclass(frozen=True)
class ConvT:
    n: int
    c: int
    h: int
    w: int
    f: int
    k: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    output_padding: tuple[int, int] = (0, 0)
    residual: bool = False
    act: str | None = None

    def build(self):
        rng = np.random.default_rng(11)
        fg = self.f // self.groups
        w = rng.standard_normal((self.c, fg, *self.k)).astype(np.float32)
        b = rng.standard_normal(self.f).astype(np.float32)
        x = rng.standard_normal((self.n, self.c, self.h, self.w)).astype(np.float32)
        ref = convt_ref(x, w, b, self)
        return H.epilogue_graph(
            Op.CONV_TRANSPOSE2D, [("x", x.shape), ("w", w), ("b", b)], [x], ref,
            ConvTranspose2dAttrs(
                self.k, self.stride, self.pads, self.dilation, self.groups, self.output_padding
            ),
            rng=rng, residual=self.residual, act=self.act,
        )  # fmt: skip


def convt_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: ConvT) -> np.ndarray:
    N, C, Hh, Ww = x.shape
    _, Fg, KH, KW = w.shape
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = p.stride, p.dilation, p.pads
    OH = (Hh - 1) * sh - pt - pb + dh * (KH - 1) + p.output_padding[0] + 1
    OW = (Ww - 1) * sw - pl - pr + dw * (KW - 1) + p.output_padding[1] + 1
    full = np.zeros((N, p.f, OH + pt + KH * dh + sh, OW + pl + KW * dw + sw))
    cg = C // p.groups
    for c in range(C):
        g = c // cg
        for ky in range(KH):
            for kx in range(KW):
                contrib = np.einsum("nhw,f->nfhw", x[:, c], w[c, :, ky, kx])
                full[
                    :, g * Fg : (g + 1) * Fg,
                    ky * dh : ky * dh + sh * (Hh - 1) + 1 : sh,
                    kx * dw : kx * dw + sw * (Ww - 1) + 1 : sw,
                ] += contrib  # fmt: skip
    out = full[:, :, pt : pt + OH, pl : pl + OW]
    return out + b.reshape(1, -1, 1, 1)


CONVT_CASES = {
    "2x2_s2": ConvT(1, 8, 5, 6, 6, (2, 2), (2, 2)),
    "4x4_s2_p1": ConvT(2, 6, 7, 5, 10, (4, 4), (2, 2), (1, 1, 1, 1), act="relu"),
    "3x3_s1_p1_res": ConvT(1, 5, 6, 6, 7, (3, 3), (1, 1), (1, 1, 1, 1), residual=True),
    "3x3_s2_outpad_asym": ConvT(1, 4, 5, 4, 5, (3, 3), (2, 2), (1, 0, 0, 1), (1, 1), 1, (1, 1)),
    "3x3_d2_groups": ConvT(1, 6, 5, 5, 4, (3, 3), (1, 2), (0, 2, 1, 0), (2, 2), 2),
}


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(CONVT_CASES))
def test_conv_transpose(name: str, isa: str) -> None:
    layer, graph, feeds, ref = CONVT_CASES[name].build()
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, "convt")
    _check(kernel, feeds, ref)
