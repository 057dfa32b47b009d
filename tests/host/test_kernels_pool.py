"""Host pooling kernels against ONNX Runtime (the contract): pads, ceil_mode,
count_include_pad, dilation, strides, batch, odd sizes; and the global pools."""

from __future__ import annotations

import kernel_harness as H
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from npas.ir.attrs import PoolAttrs
from npas.ir.ops import Op

ISAS = [*H.vector_isas(), "scalar"]


def ort_run(op: str, x: np.ndarray, **attrs) -> np.ndarray:
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


# name -> (op, input shape, kernel, stride, pads, dilation, ceil_mode, count_include_pad)
POOLS = {
    "max3x3s2p1_stem": (Op.MAXPOOL, (1, 8, 23, 23), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0, 0),
    "max2x2s2_batch2": (Op.MAXPOOL, (2, 3, 9, 12), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0, 0),
    "max3x3s2_ceil": (Op.MAXPOOL, (1, 4, 10, 11), (3, 3), (2, 2), (0, 0, 0, 0), (1, 1), 1, 0),
    "max3x3_d2_asym": (Op.MAXPOOL, (1, 3, 12, 13), (3, 3), (1, 2), (1, 0, 2, 1), (2, 2), 0, 0),
    "max5x5s1p2": (Op.MAXPOOL, (1, 2, 7, 40), (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 0, 0),
    "avg3x3s1p1_excl": (Op.AVGPOOL, (1, 5, 9, 11), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0, 0),
    "avg3x3s1p1_incl": (Op.AVGPOOL, (1, 5, 9, 11), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 0, 1),
    "avg2x2s2": (Op.AVGPOOL, (2, 4, 8, 10), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), 0, 0),
    "avg3x3s2_ceil_incl": (Op.AVGPOOL, (1, 3, 10, 9), (3, 3), (2, 2), (1, 1, 0, 0), (1, 1), 1, 1),
    "avg3x3s2_ceil_excl": (Op.AVGPOOL, (1, 3, 10, 9), (3, 3), (2, 2), (0, 1, 1, 0), (1, 1), 1, 0),
    "avg3x2_d2_asym_incl": (Op.AVGPOOL, (1, 2, 11, 12), (3, 2), (2, 1), (2, 0, 1, 1), (2, 2), 1, 1),
    "avg7x7_global_like": (Op.AVGPOOL, (1, 16, 7, 7), (7, 7), (1, 1), (0, 0, 0, 0), (1, 1), 0, 0),
}


def _pool_case(name: str):
    op, shape, k, s, p, d, ceil, cip = POOLS[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    onnx_op = "MaxPool" if op is Op.MAXPOOL else "AveragePool"
    extra = {"count_include_pad": cip} if op is Op.AVGPOOL else {}
    ref = ort_run(
        onnx_op, x, kernel_shape=list(k), strides=list(s), pads=[p[0], p[1], p[2], p[3]],
        dilations=list(d), ceil_mode=ceil, **extra,
    )  # fmt: skip
    layer, graph = H.one_layer_graph(
        op, [("x", shape)], [("y", ref.shape)], PoolAttrs(k, s, p, d, bool(ceil), bool(cip))
    )
    return layer, graph, x, ref


GLOBALS = [
    (Op.GLOBAL_AVGPOOL, (2, 5, 7, 7)),
    (Op.GLOBAL_AVGPOOL, (1, 64, 1, 3)),
    (Op.GLOBAL_MAXPOOL, (1, 3, 13, 11)),
    (Op.GLOBAL_MAXPOOL, (2, 4, 1, 5)),
]


def _global_case(op: Op, shape: tuple[int, ...]):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) - 3
    onnx_op = "GlobalAveragePool" if op is Op.GLOBAL_AVGPOOL else "GlobalMaxPool"
    ref = ort_run(onnx_op, x)
    layer, graph = H.one_layer_graph(op, [("x", shape)], [("y", ref.shape)])
    return layer, graph, x, ref


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for isa in ISAS:
        kernels += [H.lower(*_pool_case(n)[:2], isa) for n in POOLS]
        kernels += [H.lower(*_global_case(*g)[:2], isa) for g in GLOBALS]
    H.prebuild(kernels)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(POOLS))
def test_pool(name: str, isa: str) -> None:
    layer, graph, x, ref = _pool_case(name)
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, layer.op.value)
    for threads in (1, 2):
        (y,) = H.run(kernel, [x], [ref.shape], threads)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize(("op", "shape"), GLOBALS, ids=lambda v: str(v))
def test_global_pool(op: Op, shape: tuple[int, ...], isa: str) -> None:
    layer, graph, x, ref = _global_case(op, shape)
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, op.value.replace("_", ""))
    (y,) = H.run(kernel, [x], [ref.shape], 2)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
