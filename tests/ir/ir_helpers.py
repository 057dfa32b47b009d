"""Shared helpers of the IR tier: build small ONNX models, run them through ONNX Runtime and
through load_onnx + the reference interpreter (before and after the pass pipeline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from npas.frontend import load_onnx
from npas.ir import Graph
from npas.ir.interp import run_graph
from npas.passes import run_pipeline

RTOL, ATOL = 1e-4, 1e-5


def model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Mapping[str, Sequence[Any] | None],
    outputs: Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    opset: int = 13,
    input_types: Mapping[str, int] | None = None,
) -> onnx.ModelProto:
    """A one-graph model; `inputs` maps name -> shape (None entries/strings are symbolic)."""
    types = dict(input_types or {})
    graph = helper.make_graph(
        list(nodes),
        "test",
        [
            helper.make_tensor_value_info(n, types.get(n, TensorProto.FLOAT), s)
            for n, s in inputs.items()
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def rand(*shape: int, seed: int = 0, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)


def run_ort(m: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(feeds)), strict=False))


def check(
    m: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    rtol: float = RTOL,
    atol: float = ATOL,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Graph:
    """Assert npas (frontend + interpreter, and again after the verified pipeline) matches ONNX
    Runtime on every output; returns the frontend's graph."""
    want = run_ort(m, feeds)
    graph = load_onnx(m, input_shapes=input_shapes)
    for stage, g in (("frontend", graph), ("pipeline", run_pipeline(graph, verify=True))):
        got = run_graph(g, feeds)
        assert set(got) == set(want), (stage, sorted(got), sorted(want))
        for name, ref in want.items():
            assert got[name].shape == ref.shape, (stage, name, got[name].shape, ref.shape)
            np.testing.assert_allclose(
                got[name], ref, rtol=rtol, atol=atol, err_msg=f"{stage}: output {name}"
            )
    return graph


def node(op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}0", **attrs)


class GraphBuilder:
    """Hand-built IR graphs for pass tests: shapes come from infer_shapes."""

    def __init__(self, name: str = "t") -> None:
        from npas.ir import Graph

        self.g = Graph(name, [], [], [], {}, 13)

    def input(self, name: str, *shape: int) -> str:
        from npas.ir import Value

        self.g.values[name] = Value(name, tuple(shape))
        self.g.inputs.append(name)
        return name

    def const(self, name: str, data: Any) -> str:
        from npas.ir import Value

        arr = np.array(data, dtype=np.float32)
        self.g.values[name] = Value(name, arr.shape, "float32", arr)
        return name

    def layer(self, op: Any, name: str, inputs: Sequence[str], outputs: str | Sequence[str],
              attrs: Any = None, epilogue: Any = None) -> str:  # fmt: skip
        from npas.ir import Epilogue, Layer, NoAttrs, Value
        from npas.ir.shapes import infer_shapes

        outs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        layer = Layer(op, name, tuple(inputs), outs, attrs or NoAttrs(), epilogue or Epilogue())
        for o, s in zip(outs, infer_shapes(layer, self.g), strict=False):
            self.g.values[o] = Value(o, s)
        self.g.layers.append(layer)
        return outs[0]

    def build(self, *outputs: str) -> Graph:
        from npas.ir.verify import verify

        self.g.outputs = list(outputs)
        verify(self.g)
        return self.g


def same_numbers(a: Graph, b: Graph, seed: int = 0) -> None:
    """Both graphs compute the same outputs on random inputs (reference interpreter)."""
    rng = np.random.default_rng(seed)
    feeds = {n: rng.uniform(-4, 4, a.shape(n)).astype(np.float32) for n in a.inputs}
    want, got = run_graph(a, feeds), run_graph(b, feeds)
    assert set(want) == set(got)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-5, err_msg=k)
