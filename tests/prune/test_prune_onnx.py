"""npas.prune_onnx on the ONNX forms weights come in: Gemm with and without transB, MatMul,
1-D Conv, Constant nodes, shared weights; filter pruning silences BN; nothing half-written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from prune_helpers import CONV1X1, CONV3X3, initializers, run_ort, tiny_cnn

import npas
from npas.errors import NpasError
from npas.frontend import load_onnx
from npas.passes import DEFAULT_PIPELINE, run_pipeline, shrink_filters

BEFORE = [p for p in DEFAULT_PIPELINE if p is not shrink_filters]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def mlp() -> onnx.ModelProto:
    """x[2, 32] -> Gemm (W stored [C, F], no transB) -> MatMul (W [C, F]) -> Gemm (transB)
    whose weight is a Constant node -> y; plus a 1-D conv branch on x2[1, 8, 16]."""
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="g1"),
        helper.make_node("Relu", ["h1"], ["r1"], name="r1"),
        helper.make_node("MatMul", ["r1", "w2"], ["h2"], name="mm"),
        helper.make_node("Constant", [], ["w3"], name="k3",
                         value=numpy_helper.from_array(rand(24, 40, seed=3), "w3")),
        helper.make_node("Gemm", ["h2", "w3"], ["y"], name="g3", transB=1),
        helper.make_node("Conv", ["x2", "wc"], ["y2"], name="conv1d", pads=[1, 1]),
    ]  # fmt: skip
    g = helper.make_graph(
        nodes,
        "mlp",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 32]),
            helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, 8, 16]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, None),
        ],
        [
            numpy_helper.from_array(rand(32, 48, seed=1), "w1"),
            numpy_helper.from_array(rand(48, seed=4), "b1"),
            numpy_helper.from_array(rand(48, 40, seed=2), "w2"),
            numpy_helper.from_array(rand(16, 8, 3, seed=5), "wc"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("scheme", ["block", "block-punched", "unstructured", "filter"])
def test_weight_layouts(scheme: str) -> None:
    m = mlp()
    res = npas.prune_onnx(m, scheme=scheme, rate=4.0, layers="*")
    names = {x.name for x in res.layers}
    # conv1d reads the graph input: the first conv, left dense by a glob
    assert names == {"g1", "mm", "g3"} and dict(res.skipped)["conv1d"].startswith("first conv")
    g = run_pipeline(load_onnx(res.model), BEFORE)
    found = {layer.name: layer.sparsity for layer in g.layers}
    for x in res.layers:
        assert found[x.name] is not None and found[x.name].scheme == scheme, x.name
        assert dict(found[x.name].params) == x.params
    feeds = {"x": rand(2, 32, seed=6), "x2": rand(1, 8, 16, seed=7)}
    assert np.isfinite(run_ort(res.model, feeds)).all()
    # the ONNX tensors got the zeros in their own layout
    w1 = initializers(res.model)["w1"]  # [C, F]: the IR's W is its transpose
    assert np.array_equal(w1.T == 0, ~found["g1"].mask)


def test_conv1d_named_and_pattern_on_it_fails() -> None:
    res = npas.prune_onnx(mlp(), scheme="unstructured", rate=2.0, layers="conv1d")
    wc = initializers(res.model)["wc"]
    assert wc.shape == (16, 8, 3) and (wc == 0).mean() == pytest.approx(0.5, abs=0.01)
    with pytest.raises(NpasError, match=r"conv1d.*3x3"):
        npas.prune_onnx(mlp(), scheme="pattern", rate=2.0, layers="conv1d")


def test_shared_weights_are_left_alone() -> None:
    m = tiny_cnn()
    extra = helper.make_node("Conv", ["r1", "w2"], ["c2b"], name="twin")
    m.graph.node.insert(6, extra)
    m.graph.output.append(helper.make_tensor_value_info("c2b", TensorProto.FLOAT, None))
    res = npas.prune_onnx(m, scheme="block", rate=2.0, layers=CONV1X1)
    assert not res.layers and "shared" in dict(res.skipped)[CONV1X1]
    assert np.array_equal(initializers(res.model)["w2"], initializers(m)["w2"])


def test_filter_pruning_silences_batchnorm(tmp_path: Path) -> None:
    m = tiny_cnn()
    res = npas.prune_onnx(m, scheme="filter", rate=2.0, layers=CONV1X1)
    w = initializers(res.model)
    removed = ~w["w2"].reshape(20, -1).any(axis=1)
    assert removed.sum() == 10
    assert (w["bn2.scale"][removed] == 0).all() and (w["bn2.bias"][removed] == 0).all()
    assert (w["bn2.scale"][~removed] != 0).all()
    # the removed channels are exactly zero after BN in ONNX Runtime
    probe = onnx.ModelProto()
    probe.CopyFrom(res.model)
    probe.graph.output.append(helper.make_tensor_value_info("n2", TensorProto.FLOAT, None))
    sess_out = run_ort_all(probe, {"x": rand(1, 3, 12, 12)})
    assert (sess_out["n2"][0, removed] == 0).all()


def run_ort_all(m: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds), strict=True))


def test_input_untouched_output_atomic(tmp_path: Path) -> None:
    m = tiny_cnn()
    before = m.SerializeToString()
    out = tmp_path / "sub" / "p.onnx"
    res = npas.prune_onnx(m, scheme="pattern", rate=6.0, out=out)
    assert m.SerializeToString() == before
    assert res.out == out and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["p.onnx"]
    assert onnx.load(str(out)).SerializeToString() == res.model.SerializeToString()
    assert [x.name for x in res.layers] == [CONV3X3]
    assert "1 layer(s) pruned" in res.summary()
