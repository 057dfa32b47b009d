"""Model zoo: every model exports, checks, runs in onnxruntime and matches its PyTorch module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import npas.zoo
from npas.errors import NpasError
from npas.zoo.registry import MODELS

# VGG-16 at 224 is 553 MB of weights and ~15 s to export; at 64 its fc1 shrinks to 2048 inputs.
SIZES = {name: spec.input_shape[2] for name, spec in MODELS.items()} | {"vgg16": 64}

BN = {"BatchNormalization"}
EXPECTED_OPS = {
    "resnet18": BN | {"Conv", "Relu", "Add", "MaxPool", "GlobalAveragePool", "Gemm"},
    "resnet50": BN | {"Conv", "Relu", "Add", "MaxPool", "GlobalAveragePool", "Gemm"},
    "mobilenet_v2": BN | {"Conv", "Clip", "Add", "GlobalAveragePool", "Gemm"},  # ReLU6 = Clip
    "mobilenet_v3_large": BN | {"Conv", "HardSwish", "HardSigmoid", "Mul", "Relu", "Add", "Gemm"},
    "mobilenet_v3_small": BN | {"Conv", "HardSwish", "HardSigmoid", "Mul", "Relu", "Add", "Gemm"},
    "efficientnet_b0": BN | {"Conv", "Sigmoid", "Mul", "Add", "GlobalAveragePool", "Gemm"},
    "vgg16": {"Conv", "Relu", "MaxPool", "Flatten", "Gemm"},
    "squeezenet": {"Conv", "Relu", "MaxPool", "Concat", "GlobalAveragePool"},
    "encdec": BN | {"Conv", "Relu", "ConvTranspose", "Resize", "Concat"},
}
DEPTHWISE = {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "efficientnet_b0"}


def test_tables_cover_every_model() -> None:
    assert set(EXPECTED_OPS) == set(npas.zoo.list_models()) == set(SIZES)


@pytest.mark.parametrize("name", list(MODELS))
def test_model(name: str, tmp_path: Path) -> None:
    import torch

    from npas.zoo import exporter

    path = tmp_path / f"{name}.onnx"
    assert npas.zoo.export(name, path, input_size=SIZES[name]) == path
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    graph = model.graph
    assert model.opset_import[0].version == 17

    # Symbolic batch named "N" on the single input and output, static everything else.
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == ("input", "output")
    in_dims, out_dims = inp.type.tensor_type.shape.dim, out.type.tensor_type.shape.dim
    assert in_dims[0].dim_param == "N" and out_dims[0].dim_param == "N"
    assert [d.dim_value for d in in_dims[1:]] == [3, SIZES[name], SIZES[name]]

    ops = {n.op_type for n in graph.node}
    missing = EXPECTED_OPS[name] - ops
    assert not missing, f"{name}: missing {missing}; graph has {sorted(ops)}"
    if name in DEPTHWISE:
        groups = [
            onnx.helper.get_node_attr_value(n, "group") for n in graph.node if n.op_type == "Conv"
        ]
        assert any(g > 1 for g in groups)
    if name == "encdec":
        modes = {
            onnx.helper.get_node_attr_value(n, "mode") for n in graph.node if n.op_type == "Resize"
        }
        assert modes == {b"linear", b"nearest"}
    if "BatchNormalization" in EXPECTED_OPS[name]:
        _check_bn_nontrivial(graph)

    # Batch 3 differs from the export's example batch, so a baked-in batch would fail here.
    h = w = SIZES[name]
    x = np.random.default_rng(1).standard_normal((3, 3, h, w)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"input": x})
    assert np.isfinite(y).all()
    assert 0.1 <= y.std() <= 100, f"{name}: output std {y.std()}"

    # Rebuilding with the same seed must give the exported weights (so also: determinism).
    module = exporter.build(MODELS[name], (h, w), seed=0)
    with torch.no_grad():
        ref = module(torch.from_numpy(x)).numpy()
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-4)


def _check_bn_nontrivial(graph: onnx.GraphProto) -> None:
    """Every BN has non-identity scale, shift, mean and variance, so folding it matters."""
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    bns = [n for n in graph.node if n.op_type == "BatchNormalization"]
    assert bns
    for node in bns:
        scale, bias, mean, var = (inits[i] for i in node.input[1:])
        assert len(node.output) == 1  # inference form, not training
        assert np.ptp(scale) > 0.1 and np.abs(bias).max() > 0.01
        assert np.abs(mean).max() > 0.01 and np.ptp(var) > 0 and not np.allclose(var, 1)


def test_export_is_deterministic(tmp_path: Path) -> None:
    a = npas.zoo.export("mobilenet_v3_small", tmp_path / "a.onnx", seed=3, input_size=64)
    b = npas.zoo.export("mobilenet_v3_small", tmp_path / "b.onnx", seed=3, input_size=64)
    c = npas.zoo.export("mobilenet_v3_small", tmp_path / "c.onnx", seed=4, input_size=64)

    def weights(p: Path) -> list[bytes]:
        return [t.raw_data for t in onnx.load(str(p)).graph.initializer]

    assert weights(a) == weights(b)
    assert weights(a) != weights(c)


def test_get_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPAS_CACHE_DIR", str(tmp_path))
    first = npas.zoo.get("encdec", input_size=32)
    assert first.parent == tmp_path / "zoo" and first.exists()
    stamp = first.stat().st_mtime_ns
    again = npas.zoo.get("encdec", input_size=(32, 32))
    assert again == first and again.stat().st_mtime_ns == stamp
    assert npas.zoo.get("encdec", input_size=32, seed=1) != first
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir() if p.name.startswith(".")) == []


def test_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        npas.zoo.export("encdec", tmp_path / "m.onnx", input_size=32)
    assert list(tmp_path.iterdir()) == []


def test_unknown_name() -> None:
    for call in (
        lambda: npas.zoo.describe("resnet17"),
        lambda: npas.zoo.export("resnet17", "x.onnx"),
        lambda: npas.zoo.get("resnet17"),
    ):
        with pytest.raises(NpasError, match="resnet17") as err:
            call()
        assert all(name in str(err.value) for name in npas.zoo.list_models())


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(NpasError, match="multiples of 32"):
        npas.zoo.export("resnet18", tmp_path / "m.onnx", input_size=100)
    with pytest.raises(NpasError, match="opset"):
        npas.zoo.export("resnet18", tmp_path / "m.onnx", opset=9)
    assert list(tmp_path.iterdir()) == []


def test_describe_and_list() -> None:
    names = npas.zoo.list_models()
    assert len(names) == len(set(names)) == 9
    for name in names:
        assert "input 1x3x" in npas.zoo.describe(name)


def test_import_does_not_need_torch() -> None:
    code = "import sys, npas, npas.zoo; npas.zoo.list_models(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
