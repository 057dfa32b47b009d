"""OpenCL elementwise kernels on the OpenCL device here (PoCL in CI), on the host tier's cases
(every unary op with its edge values, every binary broadcast form with constant operands and
fused activations, channel affine) against the same numpy references, plus what only the
OpenCL kernels spell: POW's exponent table, a residual epilogue, an operand used twice. A
representative subset runs again with fp16 storage. Each test asserts the OpenCL kernel ran."""

from __future__ import annotations

import numpy as np
import opencl_support as S
import pytest
import test_kernels_elementwise as EW

from npas.ir.attrs import Epilogue
from npas.ir.ops import Op

H = S.H
UNARY_CASES = [(op, shape) for op in EW.UNARY for shape in EW.UNARY_SHAPES]
# fp16 storage: ops whose outputs stay within half's range on the edge inputs (exp(87) does not).
FP16_UNARY = (Op.RELU, Op.CLIP, Op.HARDSWISH, Op.SIGMOID, Op.SILU, Op.TANH)
FP16_BINARY = ("add_same_big_relu", "mul_chan_se", "add_bias_const", "prelu_chan", "max_rows")


def _unary_id(case) -> str:
    op, shape = case
    return f"{op.value}-{'x'.join(map(str, shape))}"


@pytest.mark.parametrize("case", UNARY_CASES, ids=_unary_id)
def test_unary(case) -> None:
    layer, graph, x, ref = EW._unary_case(*case)
    H.expect_kernel(S.lower(layer, graph), "opencl", case[0].value.replace("_", ""))
    (y,) = S.run(layer, graph, [x])
    S.check(y, ref, what=layer.op.value)


@pytest.mark.parametrize("op", FP16_UNARY, ids=lambda o: o.value)
def test_unary_fp16(op: Op) -> None:
    layer, graph, x, ref = EW._unary_case(op, EW.UNARY_SHAPES[1])
    (y,) = S.run(layer, graph, [x], fp16=True)
    S.check(y, ref, fp16=True, what=op.value)


@pytest.mark.parametrize("name", list(EW.BINARY))
def test_binary(name: str) -> None:
    op, sa, sb, const, act, token = EW.BINARY[name]
    layer, graph, feeds, ref = EW._binary_case(op, sa, sb, const, act)
    kernel = S.lower(layer, graph)
    info = H.expect_kernel(kernel, "opencl")
    if token:
        assert info["op"] == token, kernel.kernel
    if act is not None:
        assert info["epilogue"] == (act.op.value,), kernel.kernel
    assert len(kernel.weights) == (1 if const else 0)
    (y,) = S.run(layer, graph, feeds)
    S.check(y, ref, what=name)


@pytest.mark.parametrize("name", FP16_BINARY)
def test_binary_fp16(name: str) -> None:
    op, sa, sb, const, act, _ = EW.BINARY[name]
    layer, graph, feeds, ref = EW._binary_case(op, sa, sb, const, act)
    (y,) = S.run(layer, graph, feeds, fp16=True)
    S.check(y, ref, fp16=True, what=name)


@pytest.mark.parametrize("exponent", [0.0, 0.5, -1.0, 3.0, 1.7])
def test_pow_exponents(exponent: float) -> None:
    # Table exponents have their own spelling (sqrt, 1/x, x*x*x, ...), others go through pow().
    rng = np.random.default_rng(2)
    a = (np.abs(rng.standard_normal((3, 37))) + 0.1).astype(np.float32)
    layer, graph = H.one_layer_graph(
        Op.POW, [("a", a.shape), ("b", np.array(exponent, np.float32))], [("y", a.shape)]
    )
    H.expect_kernel(S.lower(layer, graph), "opencl", "powscalar")
    (y,) = S.run(layer, graph, [a])
    S.check(y, a.astype(np.float64) ** exponent, what=f"pow {exponent}")


def test_binary_residual_epilogue() -> None:
    # act(a * b + r): the residual is the layer's last input, read at the output's index.
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    b = rng.standard_normal((2, 6, 1, 1)).astype(np.float32)
    r = rng.standard_normal((2, 6, 5, 7)).astype(np.float32)
    act, act_ref = H.ACTIVATIONS["hswish"]
    layer, graph = H.one_layer_graph(
        Op.MUL, [("a", a.shape), ("b", b.shape), ("r", r.shape)], [("y", a.shape)],
        epilogue=Epilogue(residual=True, act=act),
    )  # fmt: skip
    info = H.expect_kernel(S.lower(layer, graph), "opencl", "mulchan")
    assert info["epilogue"] == ("res", "hswish")
    (y,) = S.run(layer, graph, [a, b, r])
    S.check(y, act_ref(a.astype(np.float64) * b + r))


def test_binary_same_operand_twice() -> None:
    x = np.random.default_rng(5).standard_normal((3, 11)).astype(np.float32)
    layer, graph = H.one_layer_graph(Op.MUL, [("x", x.shape)], [("y", x.shape)])
    layer = layer.with_(inputs=("x", "x"))
    (y,) = S.run(layer, graph, [x, x])
    S.check(y, x.astype(np.float64) ** 2)


def test_binary_with_both_operands_constant_is_refused() -> None:
    # Constant folding removes these; a layer that still has one gets a clear error.
    a = np.ones((2, 3), np.float32)
    layer, graph = H.one_layer_graph(Op.ADD, [("a", a), ("b", a)], [("y", a.shape)])
    with pytest.raises(NotImplementedError, match="add"):
        S.lower(layer, graph)


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_channel_affine(fp16: bool) -> None:
    layer, graph, x, ref = EW._affine_case()
    H.expect_kernel(S.lower(layer, graph), "opencl", "channelaffine")
    (y,) = S.run(layer, graph, [x], fp16=fp16)
    S.check(y, ref, fp16=fp16)
