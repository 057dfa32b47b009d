"""Every zoo model compiles for the host, matches ONNX Runtime, and runs vector kernels."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import npas
from npas import zoo
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import host_isa

RTOL, ATOL = 1e-3, 1e-4
# VGG-16 at 224x224 is 138 M parameters (a 553 MB file): the suite runs it at 64x64, where
# every layer and kernel is the same but the classifier is smaller. benchmarks/ runs 224.
TEST_INPUT_SIZE = {"vgg16": 64}


@pytest.mark.parametrize("name", zoo.list_models())
def test_zoo_model_matches_onnxruntime(name: str) -> None:
    path = zoo.get(name, input_size=TEST_INPUT_SIZE.get(name))
    cm = npas.compile(str(path), target="host")
    rng = np.random.default_rng(0)
    feeds = {
        n: rng.standard_normal(s, dtype=np.float32)
        for n, s in zip(cm.input_names, cm.input_shapes, strict=True)
    }
    got = cm.run(feeds)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, feeds)
    for out_name, expected in zip(cm.output_names, ref, strict=True):
        np.testing.assert_allclose(got[out_name], expected, rtol=RTOL, atol=ATOL)

    # The vector kernels ran, not the scalar fallback: every conv/dense layer's kernel
    # (from the profile of a real run) is built for this CPU's vector ISA.
    isa = host_isa().name
    assert isa != "scalar", "this test needs an AVX2 or AVX-512 host"
    prof = cm.benchmark(repeat=1, warmup=0)
    heavy = [layer for layer in prof.per_layer if layer["op"] in ("conv2d", "dense")]
    assert heavy, "no conv/dense layers in the profile"
    for layer in heavy:
        assert parse_kernel_name(layer["kernel"])["isa"] == isa, layer


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "squeezenet"])
def test_avx2_build_matches_onnxruntime(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The AVX2+FMA kernels end to end, also on hosts whose best ISA is AVX-512.
    if host_isa().name == "scalar":
        pytest.fail("this test needs an AVX2 host (x86-64 with AVX2 and FMA)")
    monkeypatch.setenv("NPAS_ISA", "avx2")
    path = zoo.get(name)
    cm = npas.compile(str(path), target="host")
    assert cm.isa == "avx2"
    x = np.random.default_rng(1).standard_normal(cm.input_shapes[0], dtype=np.float32)
    got = cm.run({cm.input_names[0]: x})[cm.output_names[0]]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(got, sess.run(None, {cm.input_names[0]: x})[0], rtol=RTOL, atol=ATOL)
    prof = cm.benchmark(repeat=1, warmup=0)
    kernels = [layer["kernel"] for layer in prof.per_layer if layer["op"] == "conv2d"]
    assert kernels and all(parse_kernel_name(k)["isa"] == "avx2" for k in kernels), kernels
