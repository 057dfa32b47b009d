"""Winograd F(m, 3) conv kernels: the exact transforms, every variant of every vector ISA of this
machine on edge shapes against numpy, the per-layer choice, and that small layers stay on the
direct kernels."""

from __future__ import annotations

from fractions import Fraction

import kernel_harness as H
import numpy as np
import pytest

from npas.codegen.host import winograd as wg
from npas.codegen.host.common import Variant
from npas.codegen.naming import kernel_name, parse_kernel_name
from npas.codegen.target import AVX2, AVX512
from npas.ir.attrs import Conv2dAttrs
from npas.ir.ops import Op

VECTOR_ISAS = H.vector_isas()
ISA_OBJ = {"avx512": AVX512, "avx2": AVX2}
P1 = (1, 1, 1, 1)
ACTS = {k: v for k, v in H.ACTIVATIONS.items() if k != "clip"}  # relu6 covers clip


# ---- the transforms (no compiler) ----


@pytest.mark.parametrize("m", sorted(wg.POINTS))
def test_transforms_are_exact_minimal_filtering(m: int) -> None:
    tr = wg.transforms(m)
    a = tr.alpha
    rng = np.random.default_rng(m)
    for _ in range(5):
        g = [Fraction(int(v)) for v in rng.integers(-9, 10, 3)]
        d = [Fraction(int(v)) for v in rng.integers(-9, 10, a)]
        gg = [sum(tr.G[i][k] * g[k] for k in range(3)) for i in range(a)]
        dd = [sum(tr.BT[i][j] * d[j] for j in range(a)) for i in range(a)]
        y = [sum(tr.AT[i][j] * gg[j] * dd[j] for j in range(a)) for i in range(m)]
        assert y == [sum(g[k] * d[i + k] for k in range(3)) for i in range(m)]


@pytest.mark.parametrize("m", sorted(wg.POINTS))
def test_programs_compute_the_matrices(m: int) -> None:
    tr = wg.transforms(m)
    at, _, bt = tr.as_float()
    x = np.random.default_rng(1).standard_normal((tr.alpha, 7))
    for mat, exact in ((bt, tr.BT), (at, tr.AT)):
        steps = wg.program(exact)
        np.testing.assert_allclose(wg.run_program(steps, x, mat.shape[0]), mat @ x, atol=1e-12)
        plain = sum(max(0, sum(v != 0 for v in row) - 1) for row in exact)
        ops = sum(max(0, len(s.terms) - 1) for s in steps)
        assert ops < plain if m > 2 else ops <= plain, (ops, plain)  # +-p pairs are shared


def test_filter_transform_2d() -> None:
    # The 2-D algorithm on one tile, with the kernel's float64 filter transform.
    tr = wg.transforms(6)
    at, _, bt = tr.as_float()
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 3, 3, 3))
    d = rng.standard_normal((3, 8, 8))
    u = wg.filter_transform(w, tr).astype(np.float64).reshape(8, 8, 2, 3)
    v = np.einsum("ij,cjk,lk->cil", bt, d, bt)
    y = np.einsum("pi,ilfc,cil,ql->fpq", at, u, v, at)
    ref = np.array([[[np.sum(w[f, :, :, :] * d[:, i : i + 3, k : k + 3]) for k in range(6)]
                     for i in range(6)] for f in range(2)])  # fmt: skip
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


# ---- kernels ----


def _conv3x3_ref(x, w, b, pads):
    """Stride-1 3x3 conv in float64, a BLAS product per tap (the layers here are large)."""
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh, ow = xp.shape[2] - 2, xp.shape[3] - 2
    w64 = w.astype(np.float64)
    out = sum(
        np.tensordot(w64[:, :, ky, kx], xp[:, :, ky : ky + oh, kx : kx + ow], axes=([1], [1]))
        for ky in range(3)
        for kx in range(3)
    )
    out = np.moveaxis(out, 0, 1)
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def _build(n, c, h, w, f, pads=P1, residual=False, act=None, bias=True, seed=0):
    rng = np.random.default_rng(seed)
    wt = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32) if bias else None
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    ref = _conv3x3_ref(x, wt, b, pads)
    ins = [("x", x.shape), ("w", wt)] + ([("b", b)] if b is not None else [])
    return H.epilogue_graph(
        Op.CONV2D, ins, [x], ref, Conv2dAttrs((3, 3), (1, 1), pads, (1, 1), 1),
        rng=rng, residual=residual, act=act,
    )  # fmt: skip


def _check(kernel, feeds, ref, threads=(1, 2)):
    scale = max(1.0, float(np.abs(ref).max()))
    for t in threads:
        (y,) = H.run(kernel, feeds, [ref.shape], threads=t)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=f"threads={t}")


def _variants(isa: str) -> list[Variant]:
    return [v for v in wg.WINOGRAD_VARIANTS if isa in v.isas]


def _vid(v: Variant) -> str:
    return f"f{v.param('m')}-{v.mr}x{v.nr}"


# Edge shapes, run through every Winograd variant directly (the cost model would keep most of
# them on the direct kernels): partial tiles at the right and bottom, any pads, batch, F and C
# below/between vector widths and tiles, F below one panel.
EDGE = {
    "odd_13x11_f20": dict(n=1, c=8, h=13, w=11, f=20),
    "nopad_9x16_res_relu": dict(n=1, c=5, h=9, w=16, f=7, pads=(0,) * 4, residual=True, act="relu"),
    "asym_pads_batch2": dict(n=2, c=6, h=10, w=9, f=13, pads=(0, 2, 1, 0), residual=True),
    "big_pads_nobias": dict(n=1, c=3, h=5, w=7, f=33, pads=(2, 3, 2, 1), bias=False),
    "one_pixel_out": dict(n=1, c=4, h=3, w=3, f=5, pads=(0, 0, 0, 0), act="relu6"),
}


def _edge_params():
    return [
        pytest.param(isa, v, name, id=f"{name}-{_vid(v)}-{isa}")
        for isa in VECTOR_ISAS
        for v in _variants(isa)
        for name in EDGE
    ]


# Small blocks: many tile blocks per image (the work split over blocks and over filter
# chunks) and several product blocks per item.
def _small_blocks(v: Variant) -> Variant:
    return Variant(v.scheme, v.isas, v.fill, v.can_serve, v.mr, v.nr,
                   (*v.params, ("v_block", 4096), ("m_block", 4096)))  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for isa, v, name in (p.values for p in _edge_params()):
        layer, graph, _, _ = _build(**EDGE[name])
        kernels.append(v.fill(layer, graph, ISA_OBJ[isa], v))
    for isa in VECTOR_ISAS:
        for v in _variants(isa):
            layer, graph, _, _ = _build(**BLOCKED)
            kernels.append(v.fill(layer, graph, ISA_OBJ[isa], _small_blocks(v)))
        for shape in CHOSEN.values():
            layer, graph, _, _ = _build(**shape)
            kernels.append(H.lower(layer, graph, isa))
    isa = VECTOR_ISAS[0]
    for i, act in enumerate(ACTS):
        layer, graph, _, _ = _build(1, 6, 8, 9, 10, residual=True, act=act)
        v = _variants(isa)[i % len(_variants(isa))]
        kernels.append(v.fill(layer, graph, ISA_OBJ[isa], v))
    H.prebuild(kernels)


@pytest.mark.parametrize(("isa", "variant", "name"), _edge_params())
def test_edge_shapes(isa: str, variant: Variant, name: str) -> None:
    layer, graph, feeds, ref = _build(**EDGE[name])
    kernel = variant.fill(layer, graph, ISA_OBJ[isa], variant)
    info = H.expect_kernel(kernel, isa, f"wino{variant.param('m')}conv")
    assert (info["kernel"], info["stride"], info["mr"], info["nr"]) == (
        (3, 3), (1, 1), variant.mr, variant.nr)  # fmt: skip
    _check(kernel, feeds, ref)


BLOCKED = dict(n=2, c=9, h=61, w=59, f=30, pads=(1, 0, 2, 1), residual=True, act="relu")


@pytest.mark.parametrize("isa", VECTOR_ISAS)
def test_many_blocks_and_filter_chunks(isa: str) -> None:
    layer, graph, feeds, ref = _build(**BLOCKED)
    for v in _variants(isa):
        small = _small_blocks(v)
        kernel = v.fill(layer, graph, ISA_OBJ[isa], small)
        src = next(iter(kernel.sources.values()))
        nblocks = -(-_tiles(BLOCKED, v.param("m")) // int(_const(src, "NTB")))
        assert nblocks >= 3 and int(_const(src, "FB")) == v.mr, _vid(v)
        _check(kernel, feeds, ref, threads=(1, 2, 3))


def _tiles(shape: dict, m: int) -> int:
    pt, pl, pb, pr = shape["pads"]
    oh, ow = shape["h"] + pt + pb - 2, shape["w"] + pl + pr - 2
    return -(-oh // m) * -(-ow // m)


def _const(src: str, name: str) -> str:
    for line in src.splitlines():
        for part in line.split(","):
            part = part.replace("constexpr int", "").strip()
            if part.startswith(f"{name} = "):
                return part.split("=")[1].split(";")[0].strip()
    raise AssertionError(f"{name} not in the kernel source")


# The epilogue is ISA-generic code (npas/simd.h): every activation on the best ISA.
@pytest.mark.parametrize("act", list(ACTS))
def test_fused_activations(act: str) -> None:
    isa = VECTOR_ISAS[0]
    layer, graph, feeds, ref = _build(1, 6, 8, 9, 10, residual=True, act=act)
    v = _variants(isa)[list(ACTS).index(act) % len(_variants(isa))]
    kernel = v.fill(layer, graph, ISA_OBJ[isa], v)
    assert parse_kernel_name(kernel.kernel)["epilogue"][0] == "res"
    _check(kernel, feeds, ref, threads=(1,))


# ---- selection: the cost model ----

# Layers where Winograd pays on this machine's cores (ResNet/VGG-like channel counts and
# sizes), through the manifest as a compiled model selects.
CHOSEN = {
    "r18_64_at_56": dict(n=1, c=64, h=56, w=56, f=64, residual=True, act="relu"),
    "r50_256_at_14": dict(n=1, c=256, h=14, w=14, f=256, act="relu"),
    "batch2_128_at_28": dict(n=2, c=128, h=28, w=28, f=96, residual=True),
}


@pytest.mark.parametrize("name", list(CHOSEN))
@pytest.mark.parametrize("isa", VECTOR_ISAS)
def test_cost_model_chooses_winograd(isa: str, name: str) -> None:
    layer, graph, feeds, ref = _build(**CHOSEN[name])
    kernel = H.lower(layer, graph, isa)
    info = H.expect_kernel(kernel, isa)
    assert info["family"] in ("wino4conv", "wino6conv"), kernel.kernel
    _check(kernel, feeds, ref)


# Layers whose transforms would not amortise: few channels (the stem's 3 too), few filters,
# few tiles (the GEMM's columns would be mostly padding, the transformed filters stream from
# memory for little work).
DIRECT = {
    "few_channels_8": dict(n=1, c=8, h=56, w=56, f=8),
    "stem_like_3_to_64": dict(n=1, c=3, h=56, w=56, f=64),
    "few_filters_8": dict(n=1, c=256, h=28, w=28, f=8),
    "r50_512_at_7": dict(n=1, c=512, h=7, w=7, f=512),
    "tiny_image_4x4": dict(n=1, c=128, h=4, w=4, f=128),
}


@pytest.mark.parametrize("name", list(DIRECT))
@pytest.mark.parametrize("isa", VECTOR_ISAS)
def test_cost_model_keeps_small_layers_direct(isa: str, name: str) -> None:
    layer, graph, _, _ = _build(**DIRECT[name])
    info = parse_kernel_name(H.lower(layer, graph, isa).kernel)
    assert info["family"] in ("conv", "iconv"), info


@pytest.mark.parametrize(
    "attrs",
    [
        Conv2dAttrs((3, 3), (2, 2), P1, (1, 1), 1),
        Conv2dAttrs((3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
        Conv2dAttrs((3, 3), (1, 1), P1, (1, 1), 2),
        Conv2dAttrs((5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
    ],
    ids=["stride2", "dilated", "grouped", "5x5"],
)
def test_only_dense_3x3_stride1(attrs: Conv2dAttrs) -> None:
    c = 128
    rng = np.random.default_rng(0)
    w = rng.standard_normal((128, c // attrs.groups, *attrs.kernel)).astype(np.float32)
    oh = 56 + 2 * attrs.pads[0] - attrs.dilation[0] * (attrs.kernel[0] - 1) - 1
    oh = oh // attrs.stride[0] + 1
    layer, graph = H.one_layer_graph(
        Op.CONV2D, [("x", (1, c, 56, 56)), ("w", w)], [("y", (1, 128, oh, oh))], attrs
    )
    for isa in VECTOR_ISAS:
        assert not parse_kernel_name(H.lower(layer, graph, isa).kernel)["family"].startswith("wino")


def test_scalar_isa_gives_the_reference() -> None:
    # NPAS_ISA=scalar: the plain reference, also for a layer Winograd serves on vector ISAs.
    layer, graph, _, _ = _build(**CHOSEN["r18_64_at_56"])
    H.expect_kernel(H.lower(layer, graph, "scalar"), "scalar", "conv")


@pytest.mark.parametrize("m", [4, 6])
def test_kernel_name_parses_back(m: int) -> None:
    name = kernel_name(f"wino{m}conv3x3s1", "dense", "avx2", (6, 16), ("res", "relu"))
    info = parse_kernel_name(name)
    assert (info["family"], info["kernel"], info["stride"], info["dilation"]) == (
        f"wino{m}conv", (3, 3), (1, 1), (1, 1))  # fmt: skip
    assert info["epilogue"] == ("res", "relu") and (info["mr"], info["nr"]) == (6, 16)
    assert parse_kernel_name("npas_f32_conv13x3s1_dense_6x16__avx2")["kernel"] == (13, 3)
