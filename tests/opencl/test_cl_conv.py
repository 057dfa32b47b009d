"""OpenCL conv-like kernels (CONV2D 1x1 GEMM / direct / grouped / depthwise, CONV_TRANSPOSE2D,
DENSE, MATMUL) on this machine's OpenCL device (PoCL in CI) against numpy: every host case
(imported from tests/host/test_kernels_conv.py, not copied) in fp32, a representative subset
in fp16 storage, and the edges of the OpenCL tiling (4 filters x 4 outputs along a row: F, W
and pixel counts that are not multiples of 4, strided odd sizes, groups whose filter count is
not a multiple of 4, K-split GEMMs). Each test asserts the intended OpenCL variant ran."""

from __future__ import annotations

import numpy as np
import opencl_support as S
import pytest
import test_kernels_conv as host
from test_kernels_conv import (
    ACT_CASES,
    CONV_CASES,
    CONVT_CASES,
    DENSE_CASES,
    Conv,
    ConvT,
    _dense,
)

from npas.codegen.naming import parse_kernel_name
from npas.codegen.opencl import conv as cl_conv
from npas.codegen.opencl import sparse_conv
from npas.codegen.target import OPENCL
from npas.ir.attrs import Conv2dAttrs
from npas.ir.ops import Op

H = S.H
CL = S.CL
P1 = (1, 1, 1, 1)


def _host_params(test, argnames: tuple[str, ...]) -> list:
    """The argument tuples of a host test's parametrize mark (its case list lives there)."""
    for mark in test.pytestmark:
        if mark.name == "parametrize" and tuple(mark.args[0]) == argnames:
            return list(mark.args[1])
    raise LookupError(f"{test.__name__} has no parametrize({argnames})")


HOST_MATMUL_CASES = {
    f"{'x'.join(map(str, sa))}_{'x'.join(map(str, sb))}{'_constb' if c else ''}": (sa, sb, c)
    for sa, sb, c in _host_params(host.test_matmul, ("sa", "sb", "const_b"))
}

# The OpenCL tiling's own edges: filters 1/3/5/17 (blocks of 4 with 3/1/3/1 padded filters),
# row widths 1/3/5/9 (partial quads), pixel counts not multiples of 4 (1x1), stride 2 over odd
# sizes, groups whose Fg is not a multiple of 4, channel multipliers, padding wider than a quad.
CL_CONV_CASES = {
    "f1_3x3_w1": Conv(1, 3, 5, 1, 1, (3, 3), pads=P1),
    "f3_3x3_w3": Conv(1, 4, 4, 3, 3, (3, 3), pads=P1, act="relu"),
    "f5_3x3_w5_res": Conv(1, 5, 6, 5, 5, (3, 3), pads=P1, residual=True, act="leaky"),
    "f17_3x3_w9": Conv(2, 6, 5, 9, 17, (3, 3), pads=P1),
    "f5_1x1_p15": Conv(1, 7, 3, 5, 5, (1, 1), residual=True, act="hswish"),
    "f17_1x1_p1": Conv(1, 9, 1, 1, 17, (1, 1), act="relu"),
    "f3_1x1_p9_c1": Conv(1, 1, 3, 3, 3, (1, 1)),
    "s2_odd_w9": Conv(1, 3, 9, 9, 6, (3, 3), (2, 2), P1, residual=True),
    "s2_odd_w11_nopad": Conv(1, 2, 7, 11, 3, (3, 3), (2, 2)),
    "s3_5x5_w13": Conv(1, 3, 13, 13, 5, (5, 5), (3, 3), (2, 1, 0, 2)),
    "g2_fg5": Conv(1, 6, 7, 9, 10, (3, 3), pads=P1, groups=2, act="relu6"),
    "g2_fg3_1x1": Conv(1, 4, 5, 5, 6, (1, 1), groups=2, residual=True),
    "g3_fg7_s2": Conv(1, 9, 8, 7, 21, (3, 3), (2, 2), P1, groups=3),
    "dwmult2": Conv(1, 3, 6, 7, 6, (3, 3), pads=P1, groups=3),
    "wide_pad_1x7": Conv(1, 2, 4, 6, 4, (1, 7), pads=(0, 5, 0, 5)),
    "d3_3x3_w9": Conv(1, 3, 9, 9, 4, (3, 3), pads=(3, 3, 3, 3), dilation=(3, 3)),
    "dw_w1": Conv(1, 3, 5, 1, 3, (3, 3), pads=P1, groups=3),
    "dw_w3_s2": Conv(1, 5, 7, 3, 5, (3, 3), (2, 2), P1, groups=5, act="relu"),
    "dw_w5_res": Conv(2, 4, 5, 5, 4, (3, 3), pads=P1, groups=4, residual=True),
    "dw_w9_5x5_s2": Conv(1, 2, 9, 9, 2, (5, 5), (2, 2), (2, 2, 2, 2), groups=2),
    # batches not a power of 2 on tiny planes: work-groups reach past the last image
    "batch3_3x3": Conv(3, 2, 3, 3, 4, (3, 3), pads=P1),
    "batch3_1x1": Conv(3, 5, 2, 2, 3, (1, 1), residual=True),
    "batch3_dw": Conv(3, 2, 2, 3, 2, (3, 3), pads=P1, groups=2),
}
ALL_CONV_CASES = {**CONV_CASES, **CL_CONV_CASES}

CL_CONVT_CASES = {
    # stride 1 along W (row segments) with row tails; stride 2 with filter tails
    "3x3_s1_w5_f3": ConvT(1, 4, 4, 5, 3, (3, 3), (1, 1), P1, act="relu"),
    "2x3_s2x1_w1_f5": ConvT(1, 3, 3, 1, 5, (2, 3), (2, 1), (0, 1, 1, 0)),
    "3x3_s2_w9_f17_res": ConvT(1, 5, 4, 9, 17, (3, 3), (2, 2), P1, output_padding=(1, 1),
                               residual=True),
    "4x4_s2_g2_fg6": ConvT(1, 4, 3, 3, 12, (4, 4), (2, 2), P1, groups=2),
    "2x2_s2_batch3": ConvT(3, 2, 2, 2, 3, (2, 2), (2, 2)),
}  # fmt: skip
ALL_CONVT_CASES = {**CONVT_CASES, **CL_CONVT_CASES}

CL_DENSE_CASES = {
    # few output tiles: K split over work-group lanes, with K and F tails
    "fc_m1_ksplit": _dense(1, 1027, 10, act="relu"),
    "fc_m3_ksplit_res": _dense(3, 515, 7, residual=True),
    "fc_m6_f1": _dense(6, 33, 1, act="sigmoid"),
}
ALL_DENSE_CASES = {**DENSE_CASES, **CL_DENSE_CASES}

CL_MATMUL_CASES = {
    "ksplit_ntail": ((1, 1030), (1030, 7), False),
    "const_b_batched": ((2, 5, 9), (2, 9, 6), True),
    "const_a": ((3, 4), None, "a"),  # constant left operand, activation right (4, 10)
    "m6_n4_k3": ((6, 3), (3, 4), False),
}


def _matmul_case(sa, sb, const, residual=False, act=None):
    rng = np.random.default_rng(5)
    sb = sb or (sa[-1], 10)
    a = rng.standard_normal(sa).astype(np.float32)
    b = rng.standard_normal(sb).astype(np.float32)
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    ins = [("a", a if const == "a" else sa), ("b", b if const is True else sb)]
    feeds = [x for x, c in ((a, const == "a"), (b, const is True)) if not c]
    return H.epilogue_graph(Op.MATMUL, ins, feeds, ref, rng=rng, residual=residual, act=act)


ALL_MATMUL_CASES = {**HOST_MATMUL_CASES, **CL_MATMUL_CASES}

# fp16 storage: one case per template and path (direct, 1x1, depthwise, grouped, K-split GEMM,
# row-major B, ConvTranspose strided and with row segments).
FP16_CONV = ("3x3_s2_odd", "1x1_f33_p49_batch2", "dw5x5_d2_asym", "g2_fg5")
FP16_OTHER = (
    "dense:fc_m1",
    "matmul:2x3x13x20_2x3x20x33",
    "convt:4x4_s2_p1",
    "convt:3x3_s1_p1_res",
)


def _template(kernel) -> str:
    first = kernel.cl.source.splitlines()[0]
    return first.split(" from ")[1].split(".")[0].removeprefix("opencl/")


def _expect(kernel, family: str, template: str, tile: tuple[int, int] | None) -> dict:
    info = parse_kernel_name(kernel.kernel)
    assert (info["scheme"], info["isa"]) == ("dense", "opencl"), kernel.kernel
    assert info["family"] == family, kernel.kernel
    assert _template(kernel) == template, kernel.cl.source.splitlines()[0]
    if tile is not None:
        assert (info["mr"], info["nr"]) == tile, kernel.kernel
    local = kernel.cl.local_size
    assert local is not None and int(np.prod(local)) <= 64, local
    return info


def _conv_expectation(case: Conv) -> tuple[str, str, tuple[int, int]]:
    if case.groups > 1 and case.c == case.groups == case.f:
        return "dwconv", "conv_dw", (1, 4)
    family = "conv" if case.groups == 1 else "gconv"
    if case.k == (1, 1) and case.stride == (1, 1) and not any(case.pads):
        return family, "conv_1x1", (4, 4)
    return family, "conv_direct", (4, 4)


def _check(got, want, fp16=False, what=""):
    # As the host tier: tolerances relative to the output range (fp32 sums of up to ~6000
    # products differ from float64 in the last bits of the largest outputs).
    scale = max(1.0, float(np.abs(want).max()))
    if fp16:
        S.check(got, want, fp16=True, what=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=what)


@pytest.mark.parametrize("name", list(ALL_CONV_CASES))
def test_conv2d(name: str) -> None:
    case = ALL_CONV_CASES[name]
    layer, graph, feeds, ref = case.build()
    kernel = S.lower(layer, graph)
    info = _expect(kernel, *_conv_expectation(case))
    assert info["kernel"] == case.k and info["stride"] == case.stride
    assert kernel.inputs == (("x", "r") if case.residual else ("x",))
    assert kernel.macs == np.prod(ref.shape) * case.c // case.groups * case.k[0] * case.k[1]
    (y,) = CL.run(kernel, feeds, [ref.shape])
    _check(y, ref, what=kernel.kernel)


def test_every_activation_is_covered() -> None:
    assert ACT_CASES <= set(ALL_CONV_CASES)


@pytest.mark.parametrize("name", list(ALL_DENSE_CASES))
def test_dense(name: str) -> None:
    layer, graph, feeds, ref = ALL_DENSE_CASES[name]()
    kernel = S.lower(layer, graph)
    m = int(np.prod(graph.shape(layer.inputs[0])[:-1]))
    _expect(kernel, "dense", "matmul", (min(m, 4), 4))
    (y,) = CL.run(kernel, feeds, [ref.shape])
    _check(y, ref, what=kernel.kernel)


@pytest.mark.parametrize("name", list(ALL_MATMUL_CASES))
def test_matmul(name: str) -> None:
    layer, graph, feeds, ref = _matmul_case(*ALL_MATMUL_CASES[name])
    kernel = S.lower(layer, graph)
    _expect(kernel, "matmul", "matmul", None)
    (y,) = CL.run(kernel, feeds, [ref.shape])
    _check(y, ref, what=kernel.kernel)


def test_matmul_epilogue() -> None:
    # Residual + activation on a batched matmul with row and column tails.
    layer, graph, feeds, ref = _matmul_case((2, 7, 9), (9, 6), False, residual=True, act="tanh")
    kernel = S.lower(layer, graph)
    _expect(kernel, "matmul", "matmul", (4, 4))
    assert kernel.inputs == ("a", "b", "r")
    (y,) = CL.run(kernel, feeds, [ref.shape])
    _check(y, ref, what=kernel.kernel)


def test_gemm_splits_k_only_for_few_tiles() -> None:
    split = S.lower(*ALL_DENSE_CASES["fc_m1_ksplit"]()[:2])
    whole = S.lower(*ALL_DENSE_CASES["fc_m13"]()[:2])
    assert split.cl.local_size[0] > 1 and split.cl.global_size[0] == split.cl.local_size[0]
    assert whole.cl.local_size[0] == 1


@pytest.mark.parametrize("name", list(ALL_CONVT_CASES))
def test_conv_transpose(name: str) -> None:
    layer, graph, feeds, ref = ALL_CONVT_CASES[name].build()
    kernel = S.lower(layer, graph)
    _expect(kernel, "convt", "conv_transpose", (4, 4))
    (y,) = CL.run(kernel, feeds, [ref.shape])
    _check(y, ref, what=kernel.kernel)


def _fp16_params() -> list:
    out = [pytest.param("conv", n, id=f"conv:{n}") for n in FP16_CONV]
    return out + [pytest.param(*k.split(":"), id=k) for k in FP16_OTHER]


def _build(kind: str, name: str):
    if kind == "conv":
        return ALL_CONV_CASES[name].build()
    if kind == "dense":
        return ALL_DENSE_CASES[name]()
    if kind == "matmul":
        return _matmul_case(*ALL_MATMUL_CASES[name])
    return ALL_CONVT_CASES[name].build()


@pytest.mark.parametrize(("kind", "name"), _fp16_params())
def test_fp16_storage(kind: str, name: str) -> None:
    layer, graph, feeds, ref = _build(kind, name)
    kernel = S.lower(layer, graph)
    assert parse_kernel_name(kernel.kernel)["scheme"] == "dense", kernel.kernel
    (y,) = CL.run(kernel, feeds, [ref.shape], fp16=True)
    _check(y, ref, fp16=True, what=kernel.kernel)


# ---- reference kernels (last in each manifest: the tuner's fallback and on-device oracle) ----

REF_CASES = (
    ("conv", "3x3_asym", cl_conv.CONV2D_MANIFEST),
    ("conv", "dw5x5_d2_asym", cl_conv.CONV2D_MANIFEST),
    ("conv", "grouped_mult", cl_conv.CONV2D_MANIFEST),
    ("convt", "3x3_d2_groups", cl_conv.CONV_TRANSPOSE_MANIFEST),
    ("dense", "fc_m2", cl_conv.DENSE_MANIFEST),
    ("matmul", "2x1x4x8_3x8x17", cl_conv.MATMUL_MANIFEST),
    ("matmul", "const_a", cl_conv.MATMUL_MANIFEST),
)


@pytest.mark.parametrize(("kind", "name", "manifest"), REF_CASES, ids=[c[1] for c in REF_CASES])
def test_reference_kernels(kind: str, name: str, manifest) -> None:
    layer, graph, feeds, ref = _build(kind, name)
    variant = manifest[-1]
    assert variant.serves(layer, graph, OPENCL)
    kernel = variant.fill(layer, graph, OPENCL, variant)
    info = parse_kernel_name(kernel.kernel)
    assert (info["scheme"], info["isa"]) == ("ref", "opencl"), kernel.kernel
    (y,) = CL.run(kernel, feeds, [ref.shape])
    _check(y, ref, what=kernel.kernel)


def test_manifest_order() -> None:
    assert cl_conv.CONV2D_MANIFEST[: len(sparse_conv.CONV2D_VARIANTS)] == (
        sparse_conv.CONV2D_VARIANTS
    )
    assert cl_conv.DENSE_MANIFEST[: len(sparse_conv.DENSE_VARIANTS)] == sparse_conv.DENSE_VARIANTS
    for manifest in (
        cl_conv.CONV2D_MANIFEST,
        cl_conv.DENSE_MANIFEST,
        cl_conv.MATMUL_MANIFEST,
        cl_conv.CONV_TRANSPOSE_MANIFEST,
    ):
        assert all("opencl" in v.isas for v in manifest)
        assert manifest[-1].scheme == "ref"
        assert all(v.scheme != "ref" for v in manifest[:-1])


def test_identical_layers_share_one_kernel() -> None:
    a = CONV_CASES["3x3_s1"].build(seed=0)
    b = CONV_CASES["3x3_s1"].build(seed=1)  # other weights, same shapes
    ka, kb = S.lower(a[0], a[1]), S.lower(b[0], b[1])
    assert ka.cl.function == kb.cl.function and ka.cl.source == kb.cl.source
    assert not np.array_equal(ka.weights[0], kb.weights[0])
    assert ka.cl.function.startswith(ka.kernel + "_")


def test_packed_weights_layout() -> None:
    # One LD4 reads the same tap of 4 consecutive filters of a group; blocks pad with zeros.
    case = CL_CONV_CASES["g2_fg5"]  # F=10, 2 groups of 5 filters, Cg=3, 3x3
    layer, graph, _, _ = case.build()
    kernel = S.lower(layer, graph)
    w = graph.const(layer.inputs[1])
    packed = kernel.weights[0].reshape(2 * 2, 3, 3, 3, 4)  # [G * ceil(Fg/4), Cg, KH, KW, 4]
    np.testing.assert_array_equal(packed[1, :, :, :, 0], w[4])  # group 0, filter 4
    np.testing.assert_array_equal(packed[1, :, :, :, 1:], 0)
    np.testing.assert_array_equal(packed[2, 2, 1, 0], w[5:9, 2, 1, 0])  # group 1, filters 0-3


def test_unserved_layer_is_a_clear_error() -> None:
    # Weights computed at run time: no OpenCL conv variant (nor the host's) serves it.
    layer, graph = H.one_layer_graph(
        Op.CONV2D,
        [("x", (1, 3, 5, 5)), ("w", (4, 3, 3, 3))],
        [("y", (1, 4, 3, 3))],
        Conv2dAttrs((3, 3)),
    )
    with pytest.raises(NotImplementedError, match=r"'layer' \(conv2d\) on opencl"):
        S.lower(layer, graph)
