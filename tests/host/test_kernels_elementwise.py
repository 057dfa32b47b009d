"""Host elementwise kernels: every unary op, binary ops with each broadcast form, constant
operands and fused activations, and CHANNEL_AFFINE, on every ISA of this machine."""

from __future__ import annotations

import kernel_harness as H
import numpy as np
import pytest

from npas.ir.attrs import Activation, Epilogue, UnaryAttrs
from npas.ir.ops import Op

ISAS = [*H.vector_isas(), "scalar"]


def _sig(v):
    return 1 / (1 + np.exp(-v))


# op -> (attrs, numpy reference in float64, input domain)
UNARY = {
    Op.RELU: (UnaryAttrs(), lambda v: np.maximum(v, 0), "any"),
    Op.CLIP: (UnaryAttrs(-1.5, 2.25), lambda v: np.clip(v, -1.5, 2.25), "any"),
    Op.LEAKY_RELU: (UnaryAttrs(0.2), lambda v: np.where(v >= 0, v, 0.2 * v), "any"),
    Op.ELU: (UnaryAttrs(1.3), lambda v: np.where(v > 0, v, 1.3 * np.expm1(v)), "any"),
    Op.HARDSWISH: (UnaryAttrs(), lambda v: v * np.clip(v + 3, 0, 6) / 6, "any"),
    Op.HARDSIGMOID: (UnaryAttrs(0.2, 0.5), lambda v: np.clip(0.2 * v + 0.5, 0, 1), "any"),
    Op.SIGMOID: (UnaryAttrs(), _sig, "any"),
    Op.TANH: (UnaryAttrs(), np.tanh, "any"),
    Op.SILU: (UnaryAttrs(), lambda v: v * _sig(v), "any"),
    Op.EXP: (UnaryAttrs(), np.exp, "any"),
    Op.LOG: (UnaryAttrs(), np.log, "positive"),
    Op.SQRT: (UnaryAttrs(), np.sqrt, "positive"),
    Op.NEG: (UnaryAttrs(), np.negative, "any"),
    Op.ABS: (UnaryAttrs(), np.abs, "any"),
    Op.RECIPROCAL: (UnaryAttrs(), lambda v: 1 / v, "positive"),
}
# Small and large: a masked tail only, and vector body + tail + several parallel units.
UNARY_SHAPES = [(3, 5), (2, 3, 97, 131)]


def _unary_input(shape: tuple[int, ...], domain: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    flat = x.reshape(-1)
    # Edge values: the polynomial seams (0.625 for tanh), exp's range ends, tiny values.
    special = np.array([0, -0.0, 0.625, -0.625, 1e-6, -1e-6, 20, -20, 87, -87, -100, 3, -3])
    n = min(flat.size, special.size)
    flat[:n] = special[:n]
    if domain == "positive":
        x = np.abs(x) + np.float32(1e-3)
    return x


def _unary_case(op: Op, shape: tuple[int, ...]):
    attrs, ref, domain = UNARY[op]
    x = _unary_input(shape, domain)
    layer, graph = H.one_layer_graph(op, [("x", shape)], [("y", shape)], attrs)
    return layer, graph, x, ref(x.astype(np.float64))


def _binary_case(op: Op, sa, sb, const: str = "", act: Activation | None = None):
    rng = np.random.default_rng(1)
    a = np.asarray(rng.standard_normal(sa), np.float32)
    b = np.asarray(rng.standard_normal(sb), np.float32)
    if op in (Op.DIV,):
        b = np.asarray(np.sign(b) * (np.abs(b) + 0.5), np.float32)
    if op is Op.POW:
        a = np.asarray(np.abs(a) + 0.1, np.float32)
        b = np.asarray(2.0 if b.size == 1 else b, np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = {
        Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide,
        Op.MAX: np.maximum, Op.MIN: np.minimum, Op.POW: np.power,
        Op.PRELU: lambda x, s: np.where(x >= 0, x, x * s),
    }[op](a64, b64)  # fmt: skip
    if act is not None:
        ref = {Op.RELU: lambda v: np.maximum(v, 0), Op.SIGMOID: _sig}[act.op](ref)
    ins = [("a", a if const == "a" else sa), ("b", b if const == "b" else sb)]
    layer, graph = H.one_layer_graph(op, ins, [("y", ref.shape)], epilogue=Epilogue(act=act))
    feeds = [v for v, name in ((a, "a"), (b, "b")) if name != const]
    return layer, graph, feeds, ref


BINARY = {
    "add_same": (Op.ADD, (2, 3, 5, 7), (2, 3, 5, 7), "", None, ""),
    "add_same_big_relu": (Op.ADD, (1, 64, 56, 56), (1, 64, 56, 56), "", Activation(Op.RELU), ""),
    "mul_chan_se": (Op.MUL, (2, 24, 9, 11), (2, 24, 1, 1), "", None, "mulchan"),
    "mul_chan_const": (Op.MUL, (1, 24, 9, 11), (1, 24, 1, 1), "b", None, "mulchan"),
    "sub_scalar_left_const": (Op.SUB, (1,), (2, 3, 4, 5), "a", None, "subscalar"),
    "div_scalar": (Op.DIV, (2, 3, 4, 5), (), "b", None, "divscalar"),
    "add_bias_const": (Op.ADD, (4, 10), (10,), "b", Activation(Op.SIGMOID), "addbcast"),
    "max_rows": (Op.MAX, (2, 1, 5, 6), (2, 3, 5, 6), "", None, "maxbcast"),
    "min_general": (Op.MIN, (3, 1, 7), (1, 4, 1), "", None, "minchan"),
    "prelu_chan": (Op.PRELU, (2, 6, 5, 5), (6, 1, 1), "b", None, "preluchan"),
    "pow_sq": (Op.POW, (3, 33), (), "b", None, "powscalar"),
}


def _cases():
    out = []
    for op in UNARY:
        for shape in UNARY_SHAPES:
            out.append(("unary", (op, shape)))
    for name in BINARY:
        out.append(("binary", name))
    return out


def _build(kind: str, spec):
    if kind == "unary":
        layer, graph, x, ref = _unary_case(*spec)
        return layer, graph, [x], ref
    op, sa, sb, const, act, _ = BINARY[spec]
    return _binary_case(op, sa, sb, const, act)


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for kind, spec in _cases():
        layer, graph, _, _ = _build(kind, spec)
        kernels += [H.lower(layer, graph, isa) for isa in ISAS]
    for isa in ISAS:
        kernels.append(H.lower(*_affine_case()[:2], isa))
        kernels.append(H.lower(*_binary_case(Op.POW, (3, 5), (), "b")[:2], isa))
    H.prebuild(kernels)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape", UNARY_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", list(UNARY), ids=lambda o: o.value)
def test_unary(op: Op, shape: tuple[int, ...], isa: str) -> None:
    layer, graph, x, ref = _unary_case(op, shape)
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, op.value.replace("_", ""))
    for threads in (1, 2):
        (y,) = H.run(kernel, [x], [shape], threads)
        # ~1e-6 relative for the polynomial exp/log/tanh family; exact for the rest.
        np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary(name: str, isa: str) -> None:
    op, sa, sb, const, act, token = BINARY[name]
    layer, graph, feeds, ref = _binary_case(op, sa, sb, const, act)
    kernel = H.lower(layer, graph, isa)
    info = H.expect_kernel(kernel, isa)
    if token:
        assert info["op"] == token
    if act is not None:
        assert info["epilogue"] == (act.op.value,)
    assert len(kernel.weights) == (1 if const else 0)
    for threads in (1, 2):
        (y,) = H.run(kernel, feeds, [ref.shape], threads)
        np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("isa", ISAS)
def test_pow_general_exponent_uses_reference(isa: str) -> None:
    # A non-constant or unusual exponent has no exact vector spelling: the reference serves.
    rng = np.random.default_rng(2)
    a = (np.abs(rng.standard_normal((3, 5))) + 0.1).astype(np.float32)
    layer, graph = H.one_layer_graph(
        Op.POW, [("a", a.shape), ("b", np.array(1.7, np.float32))], [("y", a.shape)]
    )
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, "scalar")
    (y,) = H.run(kernel, [a], [a.shape])
    np.testing.assert_allclose(y, a.astype(np.float64) ** 1.7, rtol=1e-6)


def _affine_case():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 7, 9)).astype(np.float32)
    s = rng.standard_normal(5).astype(np.float32)
    t = rng.standard_normal(5).astype(np.float32)
    layer, graph = H.one_layer_graph(
        Op.CHANNEL_AFFINE, [("x", x.shape), ("s", s), ("t", t)], [("y", x.shape)]
    )
    ref = x * s.reshape(1, 5, 1, 1).astype(np.float64) + t.reshape(1, 5, 1, 1)
    return layer, graph, x, ref


@pytest.mark.parametrize("isa", ISAS)
def test_channel_affine(isa: str) -> None:
    layer, graph, x, ref = _affine_case()
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, "channelaffine")
    (y,) = H.run(kernel, [x], [x.shape])
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


def test_elementwise_kernels_are_in_place_safe() -> None:
    # The emitter may run an elementwise layer in place (output buffer == input buffer).
    layer, graph, x, ref = _unary_case(Op.SILU, (2, 3, 97, 131))
    kernel = H.lower(layer, graph, H.vector_isas()[0] if H.vector_isas() else "scalar")
    runner = H.Runner(kernel, [x], [x.shape], threads=2)
    runner.outs[0] = runner.ins[0]
    import ctypes

    fp = ctypes.POINTER(ctypes.c_float)
    out_ptrs = (fp * 1)(runner.ins[0].ctypes.data_as(fp))
    args = list(runner._args)
    args[3] = out_ptrs
    runner._args = tuple(args)
    (y,) = runner()
    np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-7)
