"""Pruned zoo models (npas.prune_onnx per scheme and rate) compile for the host, match ONNX
Runtime on the same pruned ONNX, and run the sparse kernels the layers' schemes call for: with
NPAS_SPARSE=sparse every pruned layer a sparse kernel can serve runs it; with the default
(auto) exactly the layers the cost model expects to gain do, and lightly pruned ones stay
dense. Kernels are read back from the compiled model's layer table (its kernel names)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import npas
from npas import zoo
from npas.codegen.host import sparse_conv as sc
from npas.codegen.host import winograd
from npas.codegen.host.conv import conv_geom
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import host_isa
from npas.frontend import load_onnx
from npas.ir.ops import Op
from npas.passes import run_pipeline

RTOL, ATOL = 1e-3, 1e-4
INPUT_SIZE = 64

# (model, scheme, rate, NPAS_SPARSE)
CASES = [
    ("resnet18", "pattern", 2.0, "sparse"),
    ("resnet18", "pattern", 5.0, "auto"),
    ("resnet18", "pattern", 10.0, "sparse"),
    ("resnet18", "block-punched", 5.0, "sparse"),
    ("resnet18", "block", 5.0, "sparse"),
    ("resnet18", "unstructured", 10.0, "sparse"),
    ("mobilenet_v2", "block-punched", 2.0, "sparse"),
    ("mobilenet_v2", "block-punched", 10.0, "auto"),
    ("mobilenet_v2", "block", 5.0, "sparse"),
    ("mobilenet_v2", "unstructured", 5.0, "auto"),
    # lightly pruned: the cost model keeps what would not gain dense
    ("resnet18", "unstructured", 1.5, "auto"),
    ("resnet18", "block-punched", 1.5, "auto"),
]


def _id(case: tuple) -> str:
    model, scheme, rate, mode = case
    return f"{model}-{scheme}-{rate:g}x-{mode}"


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return {name: zoo.get(name, input_size=INPUT_SIZE) for name in {c[0] for c in CASES}}


def _served(layer, graph) -> bool:
    """Whether a sparse kernel exists for this layer's annotation and geometry."""
    sp = layer.sparsity
    if sp is None or sp.scheme not in sc.SCHEME_TOKENS:
        return False
    if layer.op is Op.DENSE:
        return sp.scheme != "pattern"
    g = conv_geom(layer, graph)
    return sc._geometry_ok(g, sp.scheme)


def _expected(layer, graph, mode: str) -> str:
    """The scheme token of the kernel this layer must run."""
    isa = host_isa()
    if mode == "dense" or not _served(layer, graph):
        return "dense"
    sp = layer.sparsity
    if mode == "auto":
        if layer.op is Op.DENSE:
            m = graph.value(layer.inputs[0]).size // sp.mask.shape[1]
            f, c = sp.mask.shape
            gain = sc.sparse_fc_seconds(m, sp, isa) < sc._MARGIN * sc.dense_fc_seconds(m, f, c, isa)
        else:
            gain = sc.prefers_sparse_conv(conv_geom(layer, graph), sp, isa)
        if not gain:
            return "dense"
    return sc.SCHEME_TOKENS[sp.scheme]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_pruned_model(case: tuple, models: dict[str, Path], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    model, scheme, rate, mode = case
    if host_isa().name == "scalar":
        pytest.fail("the sparse kernels need an AVX2 or AVX-512 host")
    pruned = tmp_path / "pruned.onnx"
    result = npas.prune_onnx(str(models[model]), scheme=scheme, rate=rate, out=pruned)
    assert result.layers, "nothing was pruned"
    monkeypatch.setenv("NPAS_SPARSE", mode)
    cm = npas.compile(str(pruned), target="host")

    x = np.random.default_rng(0).standard_normal(cm.input_shapes[0], dtype=np.float32)
    got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
    sess = ort.InferenceSession(str(pruned), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {cm.input_names[0]: x})[0]
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)

    graph = run_pipeline(load_onnx(str(pruned)))
    by_name = {layer.name: layer for layer in graph.layers}
    ran = {
        row["name"]: parse_kernel_name(row["kernel"])
        for row in cm.layers
        if row["op"] in ("conv2d", "dense")
    }
    sparse = 0
    for name, info in ran.items():
        layer = by_name[name]
        if layer.op not in (Op.CONV2D, Op.DENSE):
            continue
        want = _expected(layer, graph, mode)
        if want == "dense":
            assert info["scheme"] not in sc.SCHEME_TOKENS.values(), (name, info)
        else:
            assert (info["scheme"], info["isa"]) == (want, host_isa().name), (name, info)
            sparse += 1
    if mode == "sparse":
        assert sparse >= 3, f"only {sparse} sparse kernels ran"
    if rate == 1.5 and scheme == "unstructured":
        assert sparse == 0
    if rate == 1.5 and scheme == "block-punched":
        # Where Winograd serves, it beats 2/3 of the MACs on the block kernel.
        winograds = 0
        for name, info in ran.items():
            layer = by_name[name]
            if layer.op is Op.CONV2D and winograd.choose(conv_geom(layer, graph), host_isa()):
                assert info["scheme"] != "blockpunched", (name, info)
                winograds += 1
        assert winograds > 0
    if case in (("resnet18", "pattern", 5.0, "auto"), ("mobilenet_v2", "block-punched", 10.0,
                                                          "auto")):  # fmt: skip
        assert sparse >= 3, "the cost model chose no sparse kernel on a heavily pruned model"


def test_knob_is_part_of_the_compile_cache_key(
    models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pruned = tmp_path / "pruned.onnx"
    npas.prune_onnx(str(models["resnet18"]), scheme="block-punched", rate=5.0, out=pruned,
                    layers="*stages.2*")  # fmt: skip
    schemes = {}
    for mode in ("dense", "sparse"):
        monkeypatch.setenv("NPAS_SPARSE", mode)
        cm = npas.compile(str(pruned), target="host")
        schemes[mode] = {
            parse_kernel_name(r["kernel"])["scheme"] for r in cm.layers if r["op"] == "conv2d"
        }
    assert "blockpunched" in schemes["sparse"] and "blockpunched" not in schemes["dense"]
    assert os.environ["NPAS_SPARSE"] == "sparse"
