"""NEON sparse kernels (pattern, block-punched, block, unstructured; CONV2D and DENSE) under
qemu-aarch64 against numpy: the host tier's cases, a subset (emulation is slow), both tile kinds
of the direct kernels, and one pruned model end to end through npas.load(device="qemu"). Each
test asserts from the kernel name that the NEON sparse kernel of the layer's scheme ran."""

from __future__ import annotations

from dataclasses import replace

import arm64_support as A
import numpy as np
import onnxruntime as ort
import pytest
from test_kernels_sparse import (
    CONV_CASES,
    DENSE_CASES,
    _dense_case,
    expect_sparse,
    sparse_mode,
)

import npas
from npas import zoo
from npas.codegen.host import sparse_conv as sc
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import NEON

H = A.H
CONV = (
    "pattern_odd", "pattern_s2_batch2_res", "pattern_5entry", "pattern_blocks", "bp_3x3",
    "bp_3x3_s2_res", "bp_1x1_direct_tail", "bp_5x5", "block_1x1", "csr_3x3_s2", "csr_3x3_d2",
)  # fmt: skip
# Direct kernels with a forced tile kind: (case, (kind, RB, U), channel slice bytes).
PLANS = {
    "q_4": ("pattern_7x7", ("q", 1, 4), 0),
    "rows_4x3_blocks": ("pattern_blocks", ("rows", 4, 3), 2048),
    "q_csr": ("csr_1x1", ("q", 1, 3), 512),
}
DENSE = ("fc_block", "fc_bp", "fc_csr")


def _kernel(case_name: str, plan: tuple | None = None, slice_bytes: int = 0):
    layer, graph, feeds, ref = CONV_CASES[case_name].build()
    with sparse_mode("sparse"):
        kernel = A.lower(layer, graph)
        served = [v for v in sc.SPARSE_VARIANTS if v.serves(layer, graph, NEON)]
    if plan:
        v = served[0]
        v = replace(v, params=(*v.params, ("plan", plan), ("slice", slice_bytes or 48 * 1024)))
        kernel = v.fill(layer, graph, NEON, v)
    return kernel, feeds, ref


def _dense_kernel(name: str):
    layer, graph, feeds, ref = _dense_case(*DENSE_CASES[name])
    with sparse_mode("sparse"):
        return A.lower(layer, graph), feeds, ref


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = [_kernel(n)[0] for n in CONV]
    kernels += [_kernel(c, p, s)[0] for c, p, s in PLANS.values()]
    kernels += [_dense_kernel(n)[0] for n in DENSE]
    A.prebuild(kernels)


@pytest.mark.parametrize("name", CONV)
def test_conv(name: str) -> None:
    kernel, feeds, ref = _kernel(name)
    expect_sparse(kernel, CONV_CASES[name].scheme, "neon")
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)


@pytest.mark.parametrize("name", list(PLANS))
def test_direct_tile_kinds(name: str) -> None:
    case, plan, slice_bytes = PLANS[name]
    kernel, feeds, ref = _kernel(case, plan, slice_bytes)
    info = expect_sparse(kernel, CONV_CASES[case].scheme, "neon")
    assert (info["mr"], info["nr"]) == (plan[1], plan[2] * NEON.vector_floats)
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True, threads=(1, 3))


@pytest.mark.parametrize("name", DENSE)
def test_dense(name: str) -> None:
    kernel, feeds, ref = _dense_kernel(name)
    expect_sparse(kernel, DENSE_CASES[name][3], "neon")
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)


def test_pruned_model_on_qemu(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    A.require_tools()
    pruned = tmp_path / "resnet18-pattern.onnx"
    npas.prune_onnx(str(zoo.get("resnet18", input_size=32)), scheme="pattern", rate=5.0,
                    out=pruned)  # fmt: skip
    monkeypatch.setenv("NPAS_SPARSE", "sparse")
    built = npas.compile(str(pruned), target="arm64")
    cm = npas.load(built.path, device="qemu")
    x = np.random.default_rng(0).standard_normal(cm.input_shapes[0], dtype=np.float32)
    got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
    sess = ort.InferenceSession(str(pruned), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {cm.input_names[0]: x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
    assert cm.last_report is not None
    ran = [parse_kernel_name(la["kernel"]) for la in cm.last_report["layers"]
           if la["op"] == "conv2d"]  # fmt: skip
    patterns = [k for k in ran if k["scheme"] == "pattern"]
    assert len(patterns) >= 10 and all(k["isa"] == "neon" for k in patterns), ran
