"""OpenCL sparse kernels (pattern, block-punched, block, unstructured; CONV2D and DENSE) on the
OpenCL device here (PoCL) against numpy on the masked weights: every edge case of the host tier
(tests/host/test_kernels_sparse.py, imported) in fp32, OpenCL-only shapes (groups, depthwise,
dilated patterns, wide strides, narrow outputs, index tables past one digit), every fused
activation, a subset in fp16 storage; the packed tables read back against the weights; the
NPAS_SPARSE knob and the auto rule. Every kernel test asserts from the kernel name that the
OpenCL sparse kernel of the layer's scheme ran."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import onnxruntime as ort
import opencl_support as S
import pytest
from test_kernels_sparse import (
    ACT_CASE,
    CONV_CASES,
    DENSE_CASES,
    P1,
    SparseConv,
    _dense_case,
    sparse_mode,
)

import npas
from npas import zoo
from npas.codegen.host.conv import conv_geom
from npas.codegen.host.sparse_conv import SCHEME_TOKENS
from npas.codegen.naming import parse_kernel_name
from npas.codegen.opencl import sparse_conv as sc
from npas.codegen.target import OPENCL
from npas.errors import NpasError
from npas.ir.attrs import Conv2dAttrs
from npas.ir.ops import Op
from npas.passes.prune import project

H = S.H
ACTS = H.ACTIVATIONS


@dataclass(frozen=True)
class GroupedConv:
    """A pruned conv with groups (pattern and unstructured allow them; the host cases have
    none): W[F, C / G, kh, kw] projected per scheme, the reference per group."""

    n: int
    c: int
    h: int
    w: int
    f: int
    groups: int
    scheme: str
    rate: float
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    residual: bool = False
    act: str | None = None
    k: tuple[int, int] = (3, 3)

    def build(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((self.f, self.c // self.groups, *self.k)).astype(np.float32)
        sp = project(w, self.scheme, self.rate, self.groups)
        w = np.where(sp.mask, w, 0).astype(np.float32)
        b = rng.standard_normal(self.f).astype(np.float32)
        x = rng.standard_normal((self.n, self.c, self.h, self.w)).astype(np.float32)
        ref = H.conv2d_ref(x, w, b, self.stride, self.pads, (1, 1), self.groups)
        layer, graph, feeds, ref = H.epilogue_graph(
            Op.CONV2D, [("x", x.shape), ("w", w), ("b", b)], [x], ref,
            Conv2dAttrs(self.k, self.stride, self.pads, (1, 1), self.groups),
            rng=rng, residual=self.residual, act=self.act,
        )  # fmt: skip
        layer = layer.with_(sparsity=sp)
        graph.layers = [layer]
        return layer, graph, feeds, ref


# OpenCL-only shapes: what the host kernels do not serve (groups, dilated patterns) and what
# changes the OpenCL tiling (pixels per work-item 4/2/1, the flat 1x1 path, 2-digit indices).
CL_CASES = {
    "pattern_groups_res": GroupedConv(
        1, 12, 9, 10, 10, 2, "pattern", 4.0, pads=P1, residual=True, act="leaky"
    ),
    "pattern_depthwise_s2": GroupedConv(2, 9, 11, 8, 9, 9, "pattern", 2.25, (2, 2), P1),
    "csr_groups_s2": GroupedConv(
        1, 8, 10, 11, 6, 2, "unstructured", 3.0, (2, 2), P1, act="hsigmoid"
    ),
    "pattern_d2": SparseConv(
        1, 7, 12, 13, 9, (3, 3), "pattern", 4.0, dilation=(2, 2), pads=(2, 2, 2, 2), act="tanh"
    ),
    "pattern_s3_px2": SparseConv(1, 6, 13, 17, 5, (3, 3), "pattern", 3.0, (3, 3), P1),
    "pattern_ow2": SparseConv(1, 5, 6, 4, 6, (3, 3), "pattern", 3.0, pads=(1, 0, 1, 0)),
    "pattern_ow1_res": SparseConv(2, 4, 5, 3, 7, (3, 3), "pattern", 3.0, residual=True),
    "bp_1x1_pad": SparseConv(1, 10, 5, 6, 11, (1, 1), "block-punched", 2.0, pads=P1, act="clip"),
    "bp_3x1_s2x1": SparseConv(
        1,
        9,
        10,
        7,
        12,
        (3, 1),
        "block-punched",
        3.0,
        (2, 1),
        (1, 0, 1, 0),
        params={"bf": 4, "bc": 2},
    ),
    "block_1x1_s2_bf16": SparseConv(
        2, 20, 9, 10, 30, (1, 1), "block", 3.0, (2, 2), params={"bf": 16}
    ),
    "block_1x1_tiny": SparseConv(1, 8, 1, 3, 5, (1, 1), "block", 2.0, act="sigmoid"),
    # more than 2047 channels: channel indices and unit offsets take two digits
    "block_1x1_c2100": SparseConv(1, 2100, 2, 3, 9, (1, 1), "block", 4.0, residual=True),
    "pattern_c2100": SparseConv(1, 2100, 3, 5, 5, (3, 3), "pattern", 6.0, pads=P1),
    "csr_1x1_s2_nobias": SparseConv(
        1, 9, 7, 9, 13, (1, 1), "unstructured", 4.0, (2, 2), bias=False
    ),
    "csr_1x3": SparseConv(
        1, 6, 5, 9, 7, (1, 3), "unstructured", 2.0, pads=(0, 1, 0, 1), act="silu"
    ),
}
ALL_CASES = {**CONV_CASES, **CL_CASES}
FP16_CASES = (
    "pattern_s2_batch2_res", "pattern_5entry", "pattern_groups_res", "bp_3x3_s2_res",
    "block_1x1_res_big", "block_1x1_c2100", "pattern_c2100", "csr_3x3_d2",
)  # fmt: skip
# Dense: the host cases, plus enough kept columns to split them over a work-group (local
# reduction) and more rows than one work-item takes.
CL_DENSE_CASES = {
    "fc_block_wide_rows5": (5, 900, 21, "block", {}, True, True),
    "fc_bp_wide": (1, 1200, 40, "block-punched", {"bf": 8, "bc": 4}, False, True),
    "fc_csr_wide_rows6": (6, 800, 11, "unstructured", {}, True, True),
    "fc_csr_c2100": (2, 2100, 6, "unstructured", {}, False, True),
}
ALL_DENSE = {**DENSE_CASES, **CL_DENSE_CASES}
FP16_DENSE = ("fc_block_batch3_res", "fc_csr_wide_rows6", "fc_csr_c2100")


def _lower(layer, graph):
    with sparse_mode("sparse"):
        return S.lower(layer, graph)


def _run(kernel, feeds, ref, fp16: bool = False) -> np.ndarray:
    (y,) = S.CL.run(kernel, feeds, [ref.shape], fp16=fp16)
    return y


def expect_sparse(kernel, scheme: str) -> dict:
    """The OpenCL sparse kernel of `scheme` ran, not a dense one."""
    info = parse_kernel_name(kernel.kernel)
    assert (info["scheme"], info["isa"]) == (SCHEME_TOKENS[scheme], "opencl"), kernel.kernel
    assert kernel.cl is not None
    return info


def _conv(name: str, fp16: bool = False) -> None:
    case = ALL_CASES[name]
    layer, graph, feeds, ref = case.build()
    kernel = _lower(layer, graph)
    info = expect_sparse(kernel, case.scheme)
    assert info["kernel"] == case.k, kernel.kernel
    S.check(_run(kernel, feeds, ref, fp16), ref, fp16=fp16, what=kernel.kernel)


@pytest.mark.parametrize("name", list(ALL_CASES))
def test_conv(name: str) -> None:
    _conv(name)


@pytest.mark.parametrize("name", FP16_CASES)
def test_conv_fp16(name: str) -> None:
    _conv(name, fp16=True)


@pytest.mark.parametrize("act", list(ACTS))
def test_every_activation(act: str) -> None:
    case = replace(ACT_CASE, act=act)
    layer, graph, feeds, ref = case.build()
    kernel = _lower(layer, graph)
    info = expect_sparse(kernel, "pattern")
    assert info["epilogue"][0] == "res" and len(info["epilogue"]) == 2, kernel.kernel
    S.check(_run(kernel, feeds, ref), ref, what=kernel.kernel)


@pytest.mark.parametrize("scheme", ["block-punched", "unstructured"])
def test_activation_on_other_schemes(scheme: str) -> None:
    case = SparseConv(1, 9, 7, 8, 10, (3, 3), scheme, 3.0, pads=P1, residual=True, act="hswish")
    layer, graph, feeds, ref = case.build()
    kernel = _lower(layer, graph)
    expect_sparse(kernel, scheme)
    S.check(_run(kernel, feeds, ref), ref, what=kernel.kernel)


@pytest.mark.parametrize(
    ("name", "params", "tile"),
    [
        ("pattern_blocks", (("group", 8), ("px", 1)), (4, 1)),
        ("csr_3x3_s2", (("group", 16), ("px", 2)), (4, 2)),
        ("bp_3x3_s2_res", (("group", 32), ("px", 2), ("fv", 1)), (4, 2)),
        ("bp_1x1_direct_tail", (("group", 4), ("px", 1), ("fv", 2)), (8, 1)),
    ],
)
def test_tunables(name: str, params: tuple, tile: tuple[int, int]) -> None:
    # What a tuner changes through the variant's params: every choice stays correct.
    case = ALL_CASES[name]
    layer, graph, feeds, ref = case.build()
    with sparse_mode("sparse"):
        (v,) = [v for v in sc.CONV2D_VARIANTS if v.serves(layer, graph, OPENCL)]
    v = replace(v, params=params)
    kernel = v.fill(layer, graph, OPENCL, v)
    info = expect_sparse(kernel, case.scheme)
    assert (info["mr"], info["nr"]) == tile, kernel.kernel
    assert kernel.cl.local_size[0] == dict(params)["group"], kernel.cl
    S.check(_run(kernel, feeds, ref), ref, what=kernel.kernel)


def _dense(name: str, fp16: bool = False) -> None:
    spec = ALL_DENSE[name]
    layer, graph, feeds, ref = _dense_case(*spec)
    kernel = _lower(layer, graph)
    info = expect_sparse(kernel, spec[3])
    assert info["op"] == "dense", kernel.kernel
    S.check(_run(kernel, feeds, ref, fp16), ref, fp16=fp16, what=kernel.kernel)


@pytest.mark.parametrize("name", list(ALL_DENSE))
def test_dense(name: str) -> None:
    _dense(name)


@pytest.mark.parametrize("name", FP16_DENSE)
def test_dense_fp16(name: str) -> None:
    _dense(name, fp16=True)


def test_wide_dense_splits_columns_over_a_work_group() -> None:
    layer, graph, _, _ = _dense_case(*ALL_DENSE["fc_csr_wide_rows6"])
    kernel = _lower(layer, graph)
    lanes, _, row_blocks = kernel.cl.global_size
    assert lanes > 1 and kernel.cl.local_size == (lanes, 1, 1) and row_blocks == 2, kernel.cl


def test_everything_pruned_leaves_the_epilogue() -> None:
    # A layer whose mask keeps nothing: the kernels run no step and write bias + residual.
    case = CONV_CASES["bp_1x1_direct_tail"]
    layer, graph, feeds, _ = case.build()
    w = graph.const(layer.inputs[1])
    sp = replace(layer.sparsity, mask=np.zeros(w.shape, bool))
    graph.values[layer.inputs[1]] = replace(graph.values[layer.inputs[1]], data=np.zeros_like(w))
    layer = layer.with_(sparsity=sp)
    graph.layers = [layer]
    kernel = _lower(layer, graph)
    expect_sparse(kernel, "block-punched")
    b = graph.const(layer.inputs[2])
    want = np.maximum(b.reshape(1, -1, 1, 1) + feeds[1], 0)
    S.check(_run(kernel, feeds, want), want)


# ---- packed tables read back (no device) ----


def test_index_digits_round_trip_through_half() -> None:
    values = np.array([0, 1, 2047, 2048, 2049, 4_194_303, 4_194_304, 8_589_934_591 // 2048])
    for d in (1, 2, 3):
        keep = values < sc.DIGIT**d
        enc = sc.encode(values[keep][:, None], d)
        assert enc.max() < sc.DIGIT
        # the storage conversion of fp16 models keeps every digit exact
        np.testing.assert_array_equal(sc.decode(enc.astype(np.float16), d), values[keep])
    assert [sc.digits(v) for v in (0, 2047, 2048, 2048**2 - 1, 2048**2)] == [1, 1, 2, 2, 3]
    with pytest.raises(NotImplementedError, match="index tables"):
        sc.digits(2048**3)


@pytest.mark.parametrize("name", ["pattern_groups_res", "csr_groups_s2", "pattern_blocks"])
def test_direct_tables_hold_the_masked_weights(name: str) -> None:
    case = ALL_CASES[name]
    layer, graph, _, _ = case.build()
    g = conv_geom(layer, graph)
    tables = sc.direct_tables(g, layer.sparsity)
    kernel = _lower(layer, graph)
    for got, want in zip(kernel.weights[:2], tables.blobs(), strict=True):
        np.testing.assert_array_equal(got, want)
    # the digits read back as the kernel reads them
    quads = sc.decode(kernel.weights[1], tables.dq).reshape(-1, 6)
    np.testing.assert_array_equal(quads, tables.quads)
    taps = g.KH * g.KW
    rebuilt = np.zeros((g.F, g.C, taps), np.float32)
    for e0, kc, *filters in quads:
        for k in range(kc):
            for j, f in enumerate(filters):
                i = e0 + 4 * k + j
                if f == g.F:  # no filter: a padding entry
                    assert not tables.weights[i].any()
                    continue
                pos = list(tables.library[tables.pattern_ids[i]])
                rebuilt[f, tables.channels[i], pos] += tables.weights[i]
    want = np.zeros_like(rebuilt)
    for f in range(g.F):  # grouped: filter f's channel c is input channel group * Cg + c
        grp = f // g.Fg
        want[f, grp * g.Cg : (grp + 1) * g.Cg] = g.weight[f].reshape(g.Cg, taps)
    np.testing.assert_array_equal(rebuilt, want)
    filters = quads[:, 2:].reshape(-1)
    assert sorted(filters[filters < g.F]) == list(range(g.F))


def test_interleaved_quads_pad_little() -> None:
    counts = np.array([9, 9, 8, 7, 7, 7, 3, 2, 1])
    starts = np.concatenate([[0], np.cumsum(counts)])
    source, quad_start, quad_kc = sc.interleave_quads(counts, starts)
    np.testing.assert_array_equal(quad_kc, [9, 7, 1])
    np.testing.assert_array_equal(quad_start, [0, 36, 64])
    assert np.array_equal(np.sort(source[source >= 0]), np.arange(counts.sum()))
    # entry (quad, k, j) holds kernel k of slot 4 q + j
    assert source[36 + 4 * 2 + 2] == starts[6] + 2 and source[36 + 4 * 2 + 3] == -1


# ---- selection: the knob and the auto rule ----


def _schemes_serving(layer, graph, mode: str) -> list[str]:
    with sparse_mode(mode):
        return [v.scheme for v in sc.CONV2D_VARIANTS if v.serves(layer, graph, OPENCL)]


def test_knob_and_auto_rule() -> None:
    layer, graph, _, _ = SparseConv(1, 16, 8, 8, 16, (3, 3), "pattern", 6.0, pads=P1).build()
    assert _schemes_serving(layer, graph, "auto") == ["pattern"]
    assert _schemes_serving(layer, graph, "sparse") == ["pattern"]
    assert _schemes_serving(layer, graph, "dense") == []
    with sparse_mode("sometimes"), pytest.raises(NpasError, match="NPAS_SPARSE"):
        sc.CONV2D_VARIANTS[0].serves(layer, graph, OPENCL)
    # auto: kept fraction against each scheme's bound (pattern 2.25x keeps 0.44 > 1/3)
    for scheme, rate, served in (("pattern", 2.25, False), ("block-punched", 1.5, False),
                                 ("block-punched", 2.5, True), ("unstructured", 6.0, False),
                                 ("unstructured", 10.0, True)):  # fmt: skip
        layer, graph, _, _ = SparseConv(1, 16, 6, 6, 16, (3, 3), scheme, rate, pads=P1).build()
        want = [SCHEME_TOKENS[scheme]] if served else []
        assert _schemes_serving(layer, graph, "auto") == want, (scheme, rate)
        assert _schemes_serving(layer, graph, "sparse") == [SCHEME_TOKENS[scheme]]
    layer, graph, _, _ = _dense_case(2, 64, 32, "unstructured", {}, False, True)
    dense_serving = lambda: [v.scheme for v in sc.DENSE_VARIANTS if v.serves(layer, graph, OPENCL)]  # noqa: E731
    with sparse_mode("auto"):  # 3x keeps 1/3, within the fully connected CSR bound 2/5
        assert dense_serving() == ["unstructured"]
    with sparse_mode("dense"):
        assert dense_serving() == []


def test_annotations_that_do_not_fit_stay_dense() -> None:
    # weights outside the mask (changed after annotation): a sparse kernel would drop them
    layer, graph, _, _ = CONV_CASES["bp_3x3"].build()
    w = graph.const(layer.inputs[1]).copy()
    w[~layer.sparsity.mask] = 1.0
    graph.values[layer.inputs[1]] = replace(graph.values[layer.inputs[1]], data=w)
    assert _schemes_serving(layer, graph, "sparse") == []
    # unstructured 5x5: past the one-entry-pattern switch, left to the dense kernel
    layer, graph, _, _ = SparseConv(1, 4, 9, 9, 4, (5, 5), "unstructured", 3.0).build()
    assert _schemes_serving(layer, graph, "sparse") == []
    # a pattern annotation on another scheme's variant never matches
    layer, graph, _, _ = CONV_CASES["pattern_odd"].build()
    assert _schemes_serving(layer, graph, "sparse") == ["pattern"]


# ---- whole pruned models through the OpenCL executor ----


# Every scheme at 2x, 5x and 10x (fp32), and half storage once.
MODEL_CASES = [
    *((scheme, rate, False) for scheme in ("pattern", "block-punched", "block", "unstructured",
                                           "filter") for rate in (2.0, 5.0, 10.0)),
    ("block-punched", 4.0, True),
]  # fmt: skip


@pytest.mark.parametrize(("scheme", "rate", "fp16"), MODEL_CASES)
def test_pruned_model_on_opencl(
    scheme: str, rate: float, fp16: bool, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ResNet-18 pruned one-shot, compiled for the opencl target and run by the executor (its
    # buffers, offsets and half conversion, not the test harness's), against ONNX Runtime.
    pruned = tmp_path / f"resnet18-{scheme}.onnx"
    npas.prune_onnx(str(zoo.get("resnet18", input_size=32)), scheme=scheme, rate=rate,
                    out=pruned)  # fmt: skip
    monkeypatch.setenv("NPAS_SPARSE", "sparse")
    cm = npas.compile(str(pruned), target="opencl", fp16=fp16)
    x = np.random.default_rng(0).standard_normal(cm.input_shapes[0], dtype=np.float32)
    got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
    sess = ort.InferenceSession(str(pruned), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {cm.input_names[0]: x})[0]
    S.check(got, ref, fp16=fp16, what=f"resnet18 {scheme}")
    ran = [parse_kernel_name(la["kernel"]) for la in cm.layers if la["op"] in ("conv2d", "dense")]
    assert all(k["isa"] == "opencl" for k in ran), ran
    if scheme == "filter":  # a graph rewrite: smaller dense layers, no sparse kernel
        dense = npas.compile(str(zoo.get("resnet18", input_size=32)), target="opencl")
        assert cm.macs < 0.75 * dense.macs, (cm.macs, dense.macs)
        return
    sparse = [k for k in ran if k["scheme"] == SCHEME_TOKENS[scheme]]
    # block prunes only 1x1 convs and the classifier; the other schemes every conv but the stem
    assert len(sparse) >= (4 if scheme == "block" else 10), ran
