"""Filter pruning as a graph rewrite (shrink_filters): zero filters and the input channels they
feed disappear wherever the graph's function allows, and the outputs stay what they were
(numpy interpreter and ONNX Runtime)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from prune_helpers import CONV1X1, CONV3X3, DEPTHWISE, FIRST, UNNAMED, run_ort, tiny_cnn

import npas
from npas import zoo
from npas.frontend import load_onnx
from npas.ir import Graph
from npas.ir.interp import run_graph
from npas.ir.verify import verify
from npas.passes import DEFAULT_PIPELINE, run_pipeline, shrink_filters

RTOL, ATOL = 1e-4, 1e-5
BEFORE = [p for p in DEFAULT_PIPELINE if p is not shrink_filters]


def weight_shapes(g: Graph) -> dict[str, tuple[int, ...]]:
    return {
        layer.name: g.shape(layer.inputs[1])
        for layer in g.layers
        if layer.op.value in ("conv2d", "dense")
    }


def shrink_and_check(m: onnx.ModelProto, x: np.ndarray, name: str = "x") -> tuple[Graph, Graph]:
    """The graph before and after the rewrite; both compute what ONNX Runtime computes."""
    before = run_pipeline(load_onnx(m), BEFORE, verify=True)
    after = shrink_filters(before)
    verify(after)
    assert run_pipeline(load_onnx(m), verify=True).layers == after.layers  # it is in the pipeline
    ref = run_ort(m, {name: x})
    for g in (before, after):
        (y,) = run_graph(g, {name: x}).values()
        np.testing.assert_allclose(y, ref, rtol=RTOL, atol=ATOL)
    return before, after


def conv(name: str, x: str, w: str, b: str | None, out: str, **attrs) -> onnx.NodeProto:
    return helper.make_node("Conv", [x, w, *([b] if b else [])], [out], name=name, **attrs)


def model(nodes: Sequence[onnx.NodeProto], inits: dict[str, np.ndarray], c: int = 4,
          hw: int = 6, out: str = "y") -> onnx.ModelProto:  # fmt: skip
    g = helper.make_graph(
        list(nodes),
        "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


X4 = rand(1, 4, 6, 6, seed=99)


def test_filter_pruned_cnn_shrinks_through_bn_and_depthwise() -> None:
    m = npas.prune_onnx(tiny_cnn(), scheme="filter", rate=2).model
    x = rand(1, 3, 12, 12)
    before, after = shrink_and_check(m, x)
    assert weight_shapes(before)[CONV3X3] == (24, 16, 3, 3)
    assert weight_shapes(after) == {
        FIRST: (16, 3, 3, 3),  # not pruned
        CONV3X3: (12, 16, 3, 3),
        CONV1X1: (10, 12, 1, 1),
        DEPTHWISE: (10, 1, 3, 3),  # its inputs' removed channels take its filters along
        UNNAMED: (20, 10, 1, 1),  # absorbs the depthwise's constant outputs in its bias
        "fc": (10, 20),  # the graph output keeps its shape
    }
    dw = next(layer for layer in after.layers if layer.name == DEPTHWISE)
    assert dw.attrs.groups == 10
    # the shrunk layers are plain dense layers now; the output layer keeps its zero filters
    assert {layer.name for layer in after.layers if layer.sparsity is not None} == {"fc"}


def test_nonzero_constant_needs_an_unpadded_reader() -> None:
    """Torch-style pruning zeroes weights only: the removed filter outputs relu(bias) != 0."""
    w = rand(6, 4, 3, 3)
    w[[1, 4]] = 0
    b = np.abs(rand(6, seed=1)) + 0.1
    for k, removable in ((1, True), (3, False)):
        nodes = [
            conv("a", "x", "w", "b", "h", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["h"], ["r"], name="relu"),
            conv("c", "r", "w2", "b2", "y", pads=[k // 2] * 4),
        ]
        inits = {"w": w, "b": b, "w2": rand(5, 6, k, k, seed=2), "b2": rand(5, seed=3)}
        _, after = shrink_and_check(model(nodes, inits), X4)
        assert weight_shapes(after)["a"][0] == (4 if removable else 6), k


def test_through_an_unfolded_batchnorm_and_a_channel_constant() -> None:
    """conv -> relu -> BN (after the activation: no conv absorbs it) -> mul by a per-channel
    constant -> 1x1 conv: the removed channels' constant reaches the 1x1 conv's bias."""
    w = rand(6, 4, 3, 3)
    w[[0, 5]] = 0
    c = 6
    bn = [np.abs(rand(c, seed=s)) + 0.5 for s in (1, 2)] + [rand(c, seed=3),
          np.abs(rand(c, seed=4)) + 0.5]  # fmt: skip
    nodes = [
        conv("a", "x", "w", None, "h", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("BatchNormalization", ["r", "s", "t", "mu", "var"], ["n"], name="bn"),
        helper.make_node("Mul", ["n", "k"], ["m"], name="mul"),
        conv("c", "m", "w2", "b2", "y"),
    ]
    inits = {"w": w, "s": bn[0], "t": bn[1], "mu": bn[2], "var": bn[3], "k": rand(c, 1, 1, seed=5),
             "w2": rand(3, c, 1, 1, seed=6), "b2": rand(3, seed=7)}  # fmt: skip
    before, after = shrink_and_check(model(nodes, inits), X4)
    assert any(layer.op.value == "channel_affine" for layer in before.layers)
    assert weight_shapes(after) == {"a": (4, 4, 3, 3), "c": (3, 4, 1, 1)}


def residual_model(zero_shortcut: bool) -> onnx.ModelProto:
    w2 = rand(6, 6, 3, 3, seed=4)
    ws = rand(6, 4, 1, 1, seed=5)
    w2[2] = 0
    if zero_shortcut:
        ws[2] = 0
    nodes = [
        conv("c1", "x", "w1", None, "h1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        conv("c2", "r1", "w2", None, "h2", pads=[1, 1, 1, 1]),
        conv("short", "x", "ws", None, "s"),
        helper.make_node("Add", ["h2", "s"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        conv("c3", "r", "w3", "b3", "y"),
    ]
    inits = {"w1": rand(6, 4, 3, 3, seed=6), "w2": w2, "ws": ws, "w3": rand(3, 6, 1, 1, seed=7),
             "b3": rand(3, seed=8)}  # fmt: skip
    return model(nodes, inits)


@pytest.mark.parametrize("both", [True, False])
def test_residual_add_only_when_both_sides_agree(both: bool) -> None:
    _, after = shrink_and_check(residual_model(both), X4)
    shapes = weight_shapes(after)
    if both:
        assert shapes["c2"][0] == shapes["short"][0] == shapes["c3"][1] == 5
    else:
        assert shapes["c2"][0] == shapes["short"][0] == shapes["c3"][1] == 6


def test_concat_and_flatten() -> None:
    wa, wb = rand(3, 4, 3, 3, seed=9), rand(5, 4, 1, 1, seed=10)
    wa[0] = 0
    wb[[1, 3]] = 0
    nodes = [
        conv("a", "x", "wa", None, "ha", pads=[1, 1, 1, 1]),
        conv("b", "x", "wb", None, "hb"),
        helper.make_node("Concat", ["ha", "hb"], ["cat"], name="cat", axis=1),
        helper.make_node("Relu", ["cat"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    m = model(nodes, {"wa": wa, "wb": wb, "wf": rand(7, 8 * 9, seed=11)})
    _, after = shrink_and_check(m, X4)
    assert weight_shapes(after) == {"a": (2, 4, 3, 3), "b": (3, 4, 1, 1), "fc": (7, 5 * 9)}


def test_graph_outputs_and_dense_graphs_stay() -> None:
    w = rand(6, 4, 3, 3)
    w[0] = 0
    m = model([conv("a", "x", "w", None, "y", pads=[1, 1, 1, 1])], {"w": w})
    _, after = shrink_and_check(m, X4)
    assert weight_shapes(after)["a"] == (6, 4, 3, 3)
    g = run_pipeline(load_onnx(tiny_cnn()), BEFORE)
    assert shrink_filters(g) is g


def test_a_value_keeps_at_least_one_channel() -> None:
    nodes = [
        conv("a", "x", "w", None, "h", pads=[1, 1, 1, 1]),
        conv("b", "h", "w2", "b2", "y"),
    ]
    m = model(nodes, {"w": np.zeros((3, 4, 3, 3), np.float32), "w2": rand(2, 3, 1, 1),
                      "b2": rand(2, seed=1)})  # fmt: skip
    _, after = shrink_and_check(m, X4)
    assert weight_shapes(after)["a"] == (1, 4, 3, 3)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_zoo_models_shrink_and_keep_their_outputs(name: str) -> None:
    src = str(zoo.get(name, input_size=64))
    m = npas.prune_onnx(src, scheme="filter", rate=2.0).model
    x = rand(1, 3, 64, 64, seed=12)
    g = run_pipeline(load_onnx(m), verify=True)
    np.testing.assert_allclose(run_graph(g, {"input": x})["output"], run_ort(m, {"input": x}),
                               rtol=1e-3, atol=1e-4)  # fmt: skip
    dense = sum(int(np.prod(s)) for s in weight_shapes(run_pipeline(load_onnx(src))).values())
    kept = sum(int(np.prod(s)) for s in weight_shapes(g).values())
    assert kept < 0.6 * dense, (kept, dense)
