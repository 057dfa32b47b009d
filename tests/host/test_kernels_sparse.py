"""Sparse kernels (pattern, block-punched, block, unstructured; CONV2D and DENSE) against numpy on
the masked weights, on edge shapes, every vector ISA of this machine, 1-3 threads; the layouts
they stream (filter-kernel reorder, block packing); and the cost model that decides when they
run. Every kernel test asserts from the kernel name that the sparse kernel of the layer's
scheme ran, not a dense fallback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import kernel_harness as H
import numpy as np
import pytest

from npas.codegen.host import sparse_conv as sc
from npas.codegen.host.conv import conv_geom
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import AVX2, AVX512, Isa
from npas.errors import NpasError
from npas.ir.attrs import Conv2dAttrs, Epilogue
from npas.ir.graph import Sparsity
from npas.ir.ops import Op
from npas.passes import layout as lay
from npas.passes.prune import pack, project

VECTOR_ISAS = H.vector_isas()
ISA_OBJ = {"avx512": AVX512, "avx2": AVX2}
ACTS = H.ACTIVATIONS
P1 = (1, 1, 1, 1)


@contextmanager
def sparse_mode(mode: str) -> Iterator[None]:
    saved = os.environ.get("NPAS_SPARSE")
    os.environ["NPAS_SPARSE"] = mode
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("NPAS_SPARSE", None)
        else:
            os.environ["NPAS_SPARSE"] = saved


@dataclass(frozen=True)
class SparseConv:
    """A pruned conv layer: weights projected to `scheme` at `rate`, the layer annotated."""

    n: int
    c: int
    h: int
    w: int
    f: int
    k: tuple[int, int]
    scheme: str
    rate: float
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    residual: bool = False
    act: str | None = None
    bias: bool = True
    params: dict = field(default_factory=dict)

    def build(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((self.f, self.c, *self.k)).astype(np.float32)
        sp = project(w, self.scheme, self.rate, **self.params)
        w = np.where(sp.mask, w, 0).astype(np.float32)
        b = rng.standard_normal(self.f).astype(np.float32) if self.bias else None
        x = rng.standard_normal((self.n, self.c, self.h, self.w)).astype(np.float32)
        ref = H.conv2d_ref(x, w, b, self.stride, self.pads, self.dilation)
        ins = [("x", x.shape), ("w", w)] + ([("b", b)] if b is not None else [])
        feeds = [x]
        if self.residual:
            r = rng.standard_normal(ref.shape).astype(np.float32)
            ins.append(("r", ref.shape))
            feeds.append(r)
            ref = ref + r
        act = ACTS[self.act] if self.act else (None, lambda v: v)
        layer, graph = H.one_layer_graph(
            Op.CONV2D, ins, [("y", ref.shape)],
            Conv2dAttrs(self.k, self.stride, self.pads, self.dilation, 1),
            Epilogue(self.residual, act[0]),
        )  # fmt: skip
        layer = layer.with_(sparsity=sp)
        graph.layers = [layer]
        return layer, graph, feeds, act[1](ref)


CONV_CASES = {
    # pattern: row tiles (aligned copies) and q-space tiles, strides, pads, odd sizes
    "pattern_odd": SparseConv(1, 5, 9, 11, 7, (3, 3), "pattern", 6.0, pads=P1),
    "pattern_s2_batch2_res": SparseConv(
        2, 13, 20, 37, 19, (3, 3), "pattern", 5.0, (2, 2), P1, residual=True, act="relu"
    ),
    "pattern_nopad_nobias": SparseConv(1, 8, 9, 9, 6, (3, 3), "pattern", 3.0, bias=False),
    "pattern_asym": SparseConv(1, 6, 11, 10, 9, (3, 3), "pattern", 4.0, (2, 1), (0, 2, 1, 0)),
    "pattern_5entry": SparseConv(
        1, 12, 10, 9, 6, (3, 3), "pattern", 3.0, pads=(0, 2, 1, 0), params={"entries": 5}
    ),
    "pattern_7x7": SparseConv(1, 16, 7, 7, 24, (3, 3), "pattern", 6.0, pads=P1),
    # outputs at most half a vector wide: half-vector rows in q-space tiles
    "pattern_narrow": SparseConv(
        1, 12, 9, 4, 10, (3, 3), "pattern", 6.0, pads=P1, residual=True, act="relu"
    ),
    "pattern_narrow_s2": SparseConv(2, 7, 13, 7, 9, (3, 3), "pattern", 5.0, (2, 2), P1),
    "csr_narrow": SparseConv(1, 9, 6, 4, 8, (3, 3), "unstructured", 3.0, pads=P1),
    # 14 rows: two row tiles of 7 (the taller tile that wastes no rows)
    "pattern_14rows": SparseConv(
        1, 10, 14, 14, 9, (3, 3), "pattern", 6.0, pads=P1, residual=True, act="relu"
    ),
    "pattern_blocks": SparseConv(
        1, 96, 16, 40, 20, (3, 3), "pattern", 6.0, pads=P1, residual=True, act="relu6"
    ),
    "pattern_blocks_small": SparseConv(1, 200, 5, 6, 17, (3, 3), "pattern", 2.25, pads=P1),
    # block-punched: any kernel size, F and C not multiples of the 8x4 block
    "bp_3x3": SparseConv(1, 10, 12, 13, 9, (3, 3), "block-punched", 3.0, pads=P1),
    "bp_3x3_s2_res": SparseConv(
        2, 14, 15, 11, 21, (3, 3), "block-punched", 5.0, (2, 2), P1, residual=True, act="hswish"
    ),
    "bp_1x1_direct_tail": SparseConv(
        2, 19, 7, 9, 13, (1, 1), "block-punched", 2.0, residual=True, act="relu"
    ),
    "bp_1x1_s2": SparseConv(1, 16, 9, 9, 24, (1, 1), "block-punched", 4.0, (2, 2)),
    "bp_5x5": SparseConv(1, 6, 9, 8, 10, (5, 5), "block-punched", 2.5, pads=(2, 2, 2, 2)),
    "bp_1x3_bf4": SparseConv(
        1, 9, 6, 11, 7, (1, 3), "block-punched", 2.0, pads=(0, 1, 0, 1), params={"bf": 4, "bc": 2}
    ),
    # block: 1x1, whole columns per block of filters
    "block_1x1": SparseConv(1, 24, 5, 5, 17, (1, 1), "block", 2.0),
    "block_1x1_res_big": SparseConv(
        1, 70, 12, 12, 40, (1, 1), "block", 10.0, residual=True, act="silu"
    ),
    # unstructured: CSR over any kernel, stride and dilation
    "csr_3x3_s2": SparseConv(1, 7, 10, 9, 6, (3, 3), "unstructured", 3.0, (2, 2), P1),
    "csr_1x1": SparseConv(1, 20, 8, 8, 11, (1, 1), "unstructured", 5.0, residual=True),
    "csr_3x3_d2": SparseConv(
        1, 5, 11, 12, 8, (3, 3), "unstructured", 2.0, pads=(2, 2, 2, 2), dilation=(2, 2), act="tanh"
    ),
}


def _kernel(case: SparseConv, isa: str, plan: tuple | None = None, slice_bytes: int = 0):
    """The layer's kernel through lower_layer, or, given a plan (kind, RB, U) and/or a channel
    slice, rendered directly from its manifest variant with those parameters."""
    layer, graph, feeds, ref = case.build()
    with sparse_mode("sparse"):
        kernel = H.lower(layer, graph, isa)
        served = [v for v in sc.SPARSE_VARIANTS if v.serves(layer, graph, ISA_OBJ[isa])]
    if plan or slice_bytes:
        v = served[0]
        extra = (("plan", plan),) if plan else ()
        extra += (("slice", slice_bytes),) if slice_bytes else ()
        v = replace(v, params=(*v.params, *extra))
        kernel = v.fill(layer, graph, ISA_OBJ[isa], v)
    return kernel, feeds, ref


def _check(kernel, feeds, ref, threads=(1, 2, 3)) -> None:
    scale = max(1.0, float(np.abs(ref).max()))
    for t in threads:
        (y,) = H.run(kernel, feeds, [ref.shape], threads=t)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{kernel.kernel}, threads={t}")  # fmt: skip


def expect_sparse(kernel, scheme: str, isa: str) -> dict:
    """The sparse kernel of `scheme` for `isa` ran, not a dense one or the reference."""
    info = parse_kernel_name(kernel.kernel)
    assert (info["scheme"], info["isa"]) == (sc.SCHEME_TOKENS[scheme], isa), kernel.kernel
    return info


DENSE_CASES = {
    "fc_block": (1, 37, 29, "block", {}, False, True),
    "fc_block_batch3_res": (3, 64, 50, "block", {"bf": 16}, True, True),
    "fc_bp": (2, 45, 21, "block-punched", {}, False, False),
    "fc_csr": (2, 100, 13, "unstructured", {}, True, False),
}


def _dense_case(m, c, f, scheme, params, residual, bias, act="relu", seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((f, c)).astype(np.float32)
    sp = project(w, scheme, 3.0, **params)
    w = np.where(sp.mask, w, 0).astype(np.float32)
    x = rng.standard_normal((m, c)).astype(np.float32)
    ref = x.astype(np.float64) @ w.T.astype(np.float64)
    ins = [("x", x.shape), ("w", w)]
    feeds = [x]
    if bias:
        b = rng.standard_normal(f).astype(np.float32)
        ins.append(("b", b))
        ref = ref + b
    if residual:
        r = rng.standard_normal(ref.shape).astype(np.float32)
        ins.append(("r", ref.shape))
        feeds.append(r)
        ref = ref + r
    layer, graph = H.one_layer_graph(Op.DENSE, ins, [("y", ref.shape)], None,
                                     Epilogue(residual, ACTS[act][0]))  # fmt: skip
    layer = layer.with_(sparsity=sp)
    graph.layers = [layer]
    return layer, graph, feeds, ACTS[act][1](ref)


def _conv_params():
    return [pytest.param(n, isa, id=f"{n}-{isa}") for n in CONV_CASES for isa in VECTOR_ISAS]


# Direct kernels (pattern, unstructured) with every tile kind on every ISA, whatever the
# selector would pick: (case, (kind, RB, U), channel slice bytes: small ones force several
# channel blocks, whose partial sums wait in scratch).
PLAN_CASES = {
    "rows_1x1": ("pattern_odd", ("rows", 1, 1), 0),
    "rows_4x2_blocks": ("pattern_blocks", ("rows", 4, 2), 4096),
    "rows_3x3_s2": ("pattern_s2_batch2_res", ("rows", 3, 3), 0),
    "q_4": ("pattern_7x7", ("q", 1, 4), 0),
    "q_2_blocks": ("pattern_blocks_small", ("q", 1, 2), 2048),
    "q_3_asym": ("pattern_asym", ("q", 1, 3), 0),
    "q_5entry": ("pattern_5entry", ("q", 1, 2), 1024),
    "csr_q_d2": ("csr_3x3_d2", ("q", 1, 3), 1024),
    "csr_rows_blocks": ("csr_1x1", ("rows", 2, 2), 1024),
    "qr_2_s2": ("pattern_narrow_s2", ("qr", 1, 2), 0),
    "qr_1_blocks": ("pattern_narrow", ("qr", 1, 1), 1024),
    "csr_qr_blocks": ("csr_narrow", ("qr", 1, 1), 512),
}


def _plan_params():
    return [pytest.param(n, isa, id=f"{n}-{isa}") for n in PLAN_CASES for isa in VECTOR_ISAS]


def _dense_params():
    return [pytest.param(n, isa, id=f"{n}-{isa}") for n in DENSE_CASES for isa in VECTOR_ISAS]


ACT_CASE = SparseConv(1, 9, 8, 9, 10, (3, 3), "pattern", 4.0, pads=P1, residual=True)


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    if not VECTOR_ISAS:
        pytest.fail("the sparse kernels need an AVX2 or AVX-512 host", pytrace=False)
    kernels = [_kernel(CONV_CASES[n], isa)[0] for n, isa in (p.values for p in _conv_params())]
    for n, isa in (p.values for p in _plan_params()):
        case, plan, slice_bytes = PLAN_CASES[n]
        kernels.append(_kernel(CONV_CASES[case], isa, plan, slice_bytes)[0])
    for n, isa in (p.values for p in _dense_params()):
        layer, graph, _, _ = _dense_case(*DENSE_CASES[n])
        with sparse_mode("sparse"):
            kernels.append(H.lower(layer, graph, isa))
    for act in ACTS:
        kernels.append(_kernel(_with(ACT_CASE, act=act), VECTOR_ISAS[0])[0])
    H.prebuild(kernels)


def _with(case: SparseConv, **changes) -> SparseConv:
    return replace(case, **changes)


# ---- kernels ----


@pytest.mark.parametrize(("name", "isa"), _conv_params())
def test_conv(name: str, isa: str) -> None:
    case = CONV_CASES[name]
    kernel, feeds, ref = _kernel(case, isa)
    info = expect_sparse(kernel, case.scheme, isa)
    assert info["family"] == "conv" and info["kernel"] == case.k, kernel.kernel
    _check(kernel, feeds, ref)


@pytest.mark.parametrize(("name", "isa"), _plan_params())
def test_direct_tile_kinds(name: str, isa: str) -> None:
    case_name, plan, slice_bytes = PLAN_CASES[name]
    case = CONV_CASES[case_name]
    kernel, feeds, ref = _kernel(case, isa, plan, slice_bytes)
    info = expect_sparse(kernel, case.scheme, isa)
    assert (info["mr"], info["nr"]) == (plan[1], plan[2] * ISA_OBJ[isa].vector_floats)
    if slice_bytes:
        layer, graph, _, _ = case.build()
        g = conv_geom(layer, graph)
        assert sc.channel_block(g, sc.make_plan(g, ISA_OBJ[isa], *plan), slice_bytes) < case.c
    _check(kernel, feeds, ref)


def test_direct_plan_choice() -> None:
    # Aligned row tiles where they waste few lanes, q-space tiles for small outputs.
    for (c, hw, isa, kind) in [(64, 56, AVX512, "rows"), (256, 14, AVX512, "rows"),
                               (512, 7, AVX512, "qr"), (512, 7, AVX2, "rows")]:  # fmt: skip
        layer, graph, _, _ = SparseConv(1, c, hw, hw, 8, (3, 3), "pattern", 6.0, pads=P1).build()
        plan = sc.direct_plan(conv_geom(layer, graph), 4, isa)
        assert plan.kind == kind, (c, hw, isa.name, plan)
        assert plan.RB * plan.U + 4 + 4 <= isa.registers
        if kind == "rows":
            # 4 rows where they divide the height, else the taller tile wasting fewer rows
            assert plan.RB == (4 if hw % 4 == 0 else 7), (c, hw, isa.name, plan)
    # Half-vector rows need outputs at most half a vector wide.
    layer, graph, _, _ = SparseConv(1, 8, 9, 9, 8, (3, 3), "pattern", 6.0, pads=P1).build()
    with pytest.raises(NpasError, match="at most 4 wide"):
        sc.make_plan(conv_geom(layer, graph), AVX2, "qr", 1, 1)


def test_tile_rows() -> None:
    # The fewest rows (4 by default, at most 7 and the register cap) computing fewest rows
    # past the output.
    cases = {(56, 20): 4, (28, 20): 4, (14, 20): 7, (9, 20): 5, (11, 20): 4, (7, 20): 7,
             (3, 20): 3, (1, 20): 1, (14, 6): 5, (14, 3): 3, (14, 0): 1}  # fmt: skip
    for (oh, cap), rb in cases.items():
        assert sc._tile_rows(oh, cap) == rb, (oh, cap)


@pytest.mark.parametrize("act", list(ACTS))
def test_every_activation(act: str) -> None:
    isa = VECTOR_ISAS[0]
    kernel, feeds, ref = _kernel(_with(ACT_CASE, act=act), isa)
    info = expect_sparse(kernel, "pattern", isa)
    assert info["epilogue"][-1] in (act, "leakyrelu", "hswish", "hsigmoid"), kernel.kernel
    _check(kernel, feeds, ref, threads=(1,))


@pytest.mark.parametrize(("name", "isa"), _dense_params())
def test_dense(name: str, isa: str) -> None:
    layer, graph, feeds, ref = _dense_case(*DENSE_CASES[name])
    with sparse_mode("sparse"):
        kernel = H.lower(layer, graph, isa)
    info = expect_sparse(kernel, DENSE_CASES[name][3], isa)
    assert info["op"] == "dense", kernel.kernel
    _check(kernel, feeds, ref)


def test_weights_outside_the_mask_keep_the_dense_kernel() -> None:
    # A weight the annotation calls pruned but that is not zero (a pass changed the weights
    # after annotation): a sparse kernel would drop it silently.
    layer, graph, _, _ = CONV_CASES["bp_3x3"].build()
    w = graph.const(layer.inputs[1]).copy()
    w[~layer.sparsity.mask] = 1.0
    graph.values[layer.inputs[1]] = graph.values[layer.inputs[1]].__class__(
        layer.inputs[1], w.shape, "float32", w
    )
    with sparse_mode("sparse"):
        kernel = H.lower(layer, graph, VECTOR_ISAS[0])
    assert parse_kernel_name(kernel.kernel)["scheme"] == "dense", kernel.kernel


def test_grouped_and_dilated_patterns_stay_dense() -> None:
    case = CONV_CASES["pattern_odd"]
    layer, graph, _, _ = _with(case, dilation=(2, 2), pads=(2, 2, 2, 2)).build()
    with sparse_mode("sparse"):
        kernel = H.lower(layer, graph, VECTOR_ISAS[0])
    assert parse_kernel_name(kernel.kernel)["scheme"] == "dense", kernel.kernel


# ---- the cost model and the knob ----


def _resnet_layer(c: int, hw: int, f: int, k: int, scheme: str, rate: float, stride: int = 1):
    case = SparseConv(1, c, hw, hw, f, (k, k), scheme, rate, (stride, stride), (k // 2,) * 4)
    layer, graph, _, _ = case.build()
    return layer, graph


@pytest.mark.parametrize("isa", VECTOR_ISAS)
def test_knob_forces_either_way(isa: str) -> None:
    layer, graph = _resnet_layer(64, 14, 64, 1, "block-punched", 5.0)
    with sparse_mode("dense"):
        assert parse_kernel_name(H.lower(layer, graph, isa).kernel)["scheme"] == "dense"
    with sparse_mode("sparse"):
        expect_sparse(H.lower(layer, graph, isa), "block-punched", isa)
    with sparse_mode("auto"):
        expect_sparse(H.lower(layer, graph, isa), "block-punched", isa)  # the model: 5x pays
    with sparse_mode("sometimes"), pytest.raises(NpasError, match="NPAS_SPARSE"):
        H.lower(layer, graph, isa)


def _model_choice(layer, graph, isa: Isa) -> bool:
    return sc.prefers_sparse_conv(conv_geom(layer, graph), layer.sparsity, isa)


@pytest.mark.parametrize("isa", [AVX512, AVX2], ids=["avx512", "avx2"])
def test_cost_model_keeps_lightly_pruned_layers_dense(isa: Isa) -> None:
    # ResNet-50's 3x3 and 1x1 layers: at 1.5x (pattern: 2.25x, its least) only the block
    # kernels, which run the dense GEMM micro-kernel, may still pay (measured: 1x1 layers at
    # 1.5x run ~1.4x faster block-punched); pattern and CSR stay dense; heavily pruned layers
    # go sparse, the 3x3 ones past Winograd.
    layers = [(64, 56, 64, 3), (128, 28, 128, 3), (256, 14, 256, 3), (512, 7, 512, 3)]
    for c, hw, f, k in layers:
        for scheme, rate in (("unstructured", 1.5), ("pattern", 1.5), ("block-punched", 1.5)):
            layer, graph = _resnet_layer(c, hw, f, k, scheme, rate)
            if k == 3 and hw > 7:
                assert not _model_choice(layer, graph, isa), (c, hw, scheme, rate)
        for scheme in ("pattern", "block-punched"):
            layer, graph = _resnet_layer(c, hw, f, k, scheme, 10.0)
            assert _model_choice(layer, graph, isa), (c, hw, scheme)
    for c, hw, f in ((256, 56, 64), (1024, 14, 256), (512, 7, 2048)):
        layer, graph = _resnet_layer(c, hw, f, 1, "unstructured", 1.5)
        assert not _model_choice(layer, graph, isa)
        layer, graph = _resnet_layer(c, hw, f, 1, "block-punched", 5.0)
        assert _model_choice(layer, graph, isa)


def test_sparse_kernels_only_on_vector_isas() -> None:
    layer, graph, feeds, ref = CONV_CASES["bp_3x3"].build()
    with sparse_mode("sparse"):
        kernel = H.lower(layer, graph, "scalar")
    assert parse_kernel_name(kernel.kernel)["scheme"] == "ref"
    (y,) = H.run(kernel, feeds, [ref.shape])
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(ref).max()))


# ---- layouts (no compiler) ----


def _pattern_layer(f=20, c=13, rate=6.0, **params) -> tuple[np.ndarray, Sparsity]:
    w = np.random.default_rng(3).standard_normal((f, c, 3, 3)).astype(np.float32)
    sp = project(w, "pattern", rate, **params)
    return np.where(sp.mask, w, 0).astype(np.float32), sp


@pytest.mark.parametrize("block", [None, 4, 5])
def test_filter_kernel_reorder(block: int | None) -> None:
    w, sp = _pattern_layer()
    packed = pack(w, sp)
    fl = lay.filter_kernel_reorder(packed, block)
    np.testing.assert_array_equal(fl.unpack(), w)
    counts = fl.counts
    assert sorted(fl.filters.tolist()) == list(range(w.shape[0]))
    np.testing.assert_array_equal(counts, packed.kernel_count[fl.filters])
    assert np.all(np.diff(counts) <= 0)  # most kernels first
    for g0, g1 in zip(fl.groups[:-1], fl.groups[1:], strict=True):  # groups: equal counts
        assert len(set(counts[g0:g1].tolist())) == 1
    assert len(set(counts[fl.groups[:-1]].tolist())) == len(fl.groups) - 1
    starts = fl.starts
    for s in range(w.shape[0]):  # within a slot: by channel block, then pattern, then channel
        for b in range(fl.nblocks):
            k0, k1 = starts[s * fl.nblocks + b], starts[s * fl.nblocks + b + 1]
            chans, pats = fl.columns[k0:k1], fl.pattern_ids[k0:k1]
            lo, hi = fl.channel_starts[b], fl.channel_starts[b + 1]
            assert np.all((chans >= lo) & (chans < hi))
            assert np.all(np.diff(pats) >= 0)
            np.testing.assert_array_equal(np.bincount(pats, minlength=fl.runs.shape[2]),
                                          fl.runs[s, b])  # fmt: skip
            for p in np.unique(pats):
                assert np.all(np.diff(chans[pats == p]) > 0)
    assert fl.weights.shape == (int(counts.sum()), 4)


def test_reorder_of_a_5_entry_library_and_csr() -> None:
    w, sp = _pattern_layer(rate=3.0, entries=5)
    fl = lay.filter_kernel_reorder(pack(w, sp), 3)
    assert fl.entries == 5
    np.testing.assert_array_equal(fl.unpack(), w)
    w2 = np.random.default_rng(4).standard_normal((9, 6, 3, 3)).astype(np.float32)
    sp2 = project(w2, "unstructured", 4.0)
    w2 = np.where(sp2.mask, w2, 0).astype(np.float32)
    csr = lay.csr_reorder(pack(w2, sp2), 2)
    assert csr.flat and csr.entries == 1
    np.testing.assert_array_equal(csr.unpack(), w2)
    assert np.all(np.diff(csr.counts) <= 0)


@pytest.mark.parametrize(("shape", "scheme", "params"), [
    ((20, 13, 3, 3), "block-punched", {}),
    ((21, 10, 1, 1), "block-punched", {"bf": 8, "bc": 4}),
    ((21, 10), "block-punched", {}),
    ((19, 30), "block", {"bf": 4}),
    ((19, 30, 1, 1), "block", {}),
])  # fmt: skip
@pytest.mark.parametrize("mr", [8, 4, 3])
def test_block_packing(shape, scheme: str, params: dict, mr: int) -> None:
    w = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    sp = project(w, scheme, 3.0, **params)
    w = np.where(sp.mask, w, 0).astype(np.float32)
    packed = pack(w, sp)
    bl = lay.block_layout(packed, mr) if scheme == "block" else lay.block_punched_layout(packed, mr)
    np.testing.assert_array_equal(bl.unpack(), w)
    taps = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    for i in range(bl.nblocks):
        chans, pos, a = bl.block(i)
        f0, f1 = bl.f_starts[i], bl.f_starts[i + 1]
        keys = chans.astype(np.int64) * taps + pos
        assert np.all(np.diff(keys) > 0)  # ascending (channel, position)
        # every filter of the block keeps exactly these pairs (none outside them)
        m = sp.mask.reshape(shape[0], -1)[f0:f1]
        assert not m[:, np.setdiff1d(np.arange(m.shape[1]), keys)].any()
        np.testing.assert_array_equal(a, w.reshape(shape[0], -1)[f0:f1][:, keys])
