"""Every converter against ONNX Runtime: a small model per op and opset variant, run through
load_onnx + the reference interpreter (and again after the verified pass pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from ir_helpers import check, model, rand
from onnx import TensorProto, helper

from npas.ir import Op

I64 = np.int64


def n(op: str, ins: list[str], outs: list[str], **attrs: object):
    return helper.make_node(op, ins, outs, name=f"{op}_node", **attrs)


def ops_of(graph) -> list[Op]:
    return [layer.op for layer in graph.layers]


# ---- convolution family ----

CONV_CASES = [
    # (x shape, W shape, attrs)
    ((1, 3, 9, 8), (4, 3, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    ((1, 4, 7, 7), (6, 2, 3, 3), {"group": 2, "dilations": [2, 1], "pads": [2, 1, 2, 1]}),
    ((1, 8, 6, 6), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),  # depthwise
    ((2, 3, 7, 9), (5, 3, 3, 2), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 7, 9), (5, 3, 2, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    ((1, 3, 7, 9), (5, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ((1, 3, 5, 5), (2, 3, 1, 1), {}),
]


@pytest.mark.parametrize("xs, ws, attrs", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_conv(xs, ws, attrs, bias):
    inits = {"W": rand(*ws, seed=1)}
    ins = ["x", "W"]
    if bias:
        inits["B"] = rand(ws[0], seed=2)
        ins.append("B")
    g = check(model([n("Conv", ins, ["y"], **attrs)], {"x": xs}, ["y"], inits), {"x": rand(*xs)})
    assert ops_of(g) == [Op.CONV2D]
    assert g.layers[0].name == "Conv_node"


def test_conv1d():
    m = model(
        [n("Conv", ["x", "W", "B"], ["y"], pads=[1, 2], strides=[2])],
        {"x": [1, 3, 11]},
        ["y"],
        {"W": rand(4, 3, 3, seed=1), "B": rand(4, seed=2)},
    )
    g = check(m, {"x": rand(1, 3, 11)})
    assert Op.CONV2D in ops_of(g)


CONVT_CASES = [
    ((1, 4, 5, 5), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    (
        (1, 4, 5, 5),
        (4, 3, 3, 3),
        {"strides": [2, 2], "output_padding": [1, 1], "pads": [1, 1, 1, 1]},
    ),
    ((1, 4, 4, 6), (4, 2, 3, 2), {"group": 2, "strides": [2, 3], "dilations": [1, 2]}),
    ((1, 2, 4, 4), (2, 3, 4, 4), {"strides": [2, 2], "output_shape": [9, 10]}),
    ((1, 2, 4, 4), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 4, 4), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 3, 3), (2, 2, 3, 3), {"strides": [1, 1], "pads": [0, 1, 2, 0]}),
]


@pytest.mark.parametrize("xs, ws, attrs", CONVT_CASES)
def test_conv_transpose(xs, ws, attrs):
    f = ws[1] * attrs.get("group", 1)
    inits = {"W": rand(*ws, seed=1), "B": rand(f, seed=2)}
    m = model([n("ConvTranspose", ["x", "W", "B"], ["y"], **attrs)], {"x": xs}, ["y"], inits)
    g = check(m, {"x": rand(*xs)})
    assert ops_of(g) == [Op.CONV_TRANSPOSE2D]


@pytest.mark.parametrize(
    "attrs, a_shape, b_shape, c_shape",
    [
        ({}, (3, 5), (5, 4), (4,)),
        ({"transB": 1, "alpha": 0.5, "beta": 2.0}, (3, 5), (4, 5), (1, 4)),
        ({"transA": 1}, (5, 3), (5, 4), None),
        ({"beta": 0.5}, (3, 5), (5, 4), (3, 4)),  # per-row C: an ADD after DENSE
        ({"beta": 0.5}, (3, 5), (5, 4), ()),  # scalar C
    ],
)
def test_gemm_constant_b(attrs, a_shape, b_shape, c_shape):
    inits = {"B": rand(*b_shape, seed=1)}
    ins = ["a", "B"]
    if c_shape is not None:
        inits["C"] = rand(*c_shape, seed=2)
        ins.append("C")
    g = check(
        model([n("Gemm", ins, ["y"], **attrs)], {"a": a_shape}, ["y"], inits), {"a": rand(*a_shape)}
    )
    assert Op.DENSE in ops_of(g)


def test_gemm_runtime_b():
    m = model(
        [n("Gemm", ["a", "b", "c"], ["y"], transB=1, alpha=2.0, beta=0.5)],
        {"a": [3, 5], "b": [4, 5], "c": [3, 4]},
        ["y"],
    )
    g = check(m, {"a": rand(3, 5), "b": rand(4, 5, seed=1), "c": rand(3, 4, seed=2)})
    assert Op.MATMUL in ops_of(g)


@pytest.mark.parametrize("a_shape", [(3, 5), (2, 3, 5)])
def test_matmul_constant_b(a_shape):
    m = model([n("MatMul", ["a", "B"], ["y"])], {"a": a_shape}, ["y"], {"B": rand(5, 4, seed=1)})
    g = check(m, {"a": rand(*a_shape)})
    assert Op.DENSE in ops_of(g)


def test_matmul_runtime():
    m = model([n("MatMul", ["a", "b"], ["y"])], {"a": [2, 3, 5], "b": [5, 4]}, ["y"])
    g = check(m, {"a": rand(2, 3, 5), "b": rand(5, 4, seed=1)})
    assert ops_of(g) == [Op.MATMUL]


def test_batchnorm_alone():
    c = 4
    inits = {
        "s": rand(c, seed=1, lo=0.5, hi=1.5),
        "b": rand(c, seed=2),
        "m": rand(c, seed=3),
        "v": rand(c, seed=4, lo=0.5, hi=2.0),
    }
    m = model(
        [n("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)],
        {"x": [2, c, 3, 3]},
        ["y"],
        inits,
        opset=15,
    )
    g = check(m, {"x": rand(2, c, 3, 3)})
    assert ops_of(g) == [Op.CHANNEL_AFFINE]


# ---- elementwise ----

UNARY = [
    ("Relu", {}, Op.RELU),
    ("LeakyRelu", {"alpha": 0.2}, Op.LEAKY_RELU),
    ("LeakyRelu", {}, Op.LEAKY_RELU),
    ("Elu", {"alpha": 0.7}, Op.ELU),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, Op.HARDSIGMOID),
    ("HardSigmoid", {}, Op.HARDSIGMOID),
    ("HardSwish", {}, Op.HARDSWISH),
    ("Sigmoid", {}, Op.SIGMOID),
    ("Tanh", {}, Op.TANH),
    ("Exp", {}, Op.EXP),
    ("Neg", {}, Op.NEG),
    ("Abs", {}, Op.ABS),
]


@pytest.mark.parametrize("op, attrs, ir_op", UNARY)
def test_unary(op, attrs, ir_op):
    g = check(
        model([n(op, ["x"], ["y"], **attrs)], {"x": [2, 3, 4, 5]}, ["y"], opset=14),
        {"x": rand(2, 3, 4, 5, lo=-4, hi=4)},
    )
    assert ops_of(g) == [ir_op]


@pytest.mark.parametrize(
    "op, ir_op", [("Log", Op.LOG), ("Sqrt", Op.SQRT), ("Reciprocal", Op.RECIPROCAL)]
)
def test_unary_positive(op, ir_op):
    g = check(model([n(op, ["x"], ["y"])], {"x": [2, 7]}, ["y"]), {"x": rand(2, 7, lo=0.5, hi=3)})
    assert ops_of(g) == [ir_op]


@pytest.mark.parametrize(
    "lo, hi, ir_op",
    [
        (0.0, 6.0, Op.CLIP),
        (None, 0.5, Op.CLIP),
        (-0.5, None, Op.CLIP),
        (None, None, Op.CLIP),
        (0.0, None, Op.RELU),
    ],
)
def test_clip11_inputs(lo, hi, ir_op):
    """Opset 11+: min/max are optional inputs (given here as initializers or omitted)."""
    inits, ins = {}, ["x", "", ""]
    if lo is not None:
        inits["lo"] = np.array(lo, np.float32)
        ins[1] = "lo"
    if hi is not None:
        inits["hi"] = np.array(hi, np.float32)
        ins[2] = "hi"
    while ins[-1] == "":
        ins.pop()
    m = model([n("Clip", ins, ["y"])], {"x": [3, 8]}, ["y"], inits, opset=12)
    g = check(m, {"x": rand(3, 8, lo=-8, hi=8)})
    assert ops_of(g) == [ir_op]


def test_clip11_min_from_constant_node():
    """Exporters often feed Clip's bounds from Constant nodes rather than initializers."""
    nodes = [
        n("Constant", [], ["lo"], value=helper.make_tensor("v", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Constant", [], ["hi"], value_float=6.0),
        n("Clip", ["x", "lo", "hi"], ["y"]),
    ]
    g = check(model(nodes, {"x": [3, 8]}, ["y"], opset=11), {"x": rand(3, 8, lo=-8, hi=8)})
    assert ops_of(g) == [Op.CLIP]


@pytest.mark.parametrize("attrs", [{"min": 0.0, "max": 6.0}, {"max": 1.0}, {"min": -1.0}, {}])
def test_clip6_attrs(attrs, monkeypatch):
    """Clip-6 (bounds as attributes) only occurs below opset 11, which npas rejects; widen the
    range to exercise the converter that is registered for it."""
    from npas.frontend import registry

    monkeypatch.setattr(registry, "MIN_OPSET", 10)
    m = model([n("Clip", ["x"], ["y"], **attrs)], {"x": [3, 8]}, ["y"], opset=10)
    check(m, {"x": rand(3, 8, lo=-8, hi=8)})


BINARY = [
    ("Add", Op.ADD),
    ("Sub", Op.SUB),
    ("Mul", Op.MUL),
    ("Div", Op.DIV),
    ("Max", Op.MAX),
    ("Min", Op.MIN),
]


@pytest.mark.parametrize("op, ir_op", BINARY)
@pytest.mark.parametrize(
    "a_shape, b_shape", [((2, 3, 4, 5), (3, 1, 1)), ((1, 3, 1, 5), (2, 1, 4, 1)), ((4,), (3, 4))]
)
def test_binary_broadcast(op, ir_op, a_shape, b_shape):
    m = model([n(op, ["a", "b"], ["y"])], {"a": a_shape, "b": b_shape}, ["y"])
    g = check(m, {"a": rand(*a_shape), "b": rand(*b_shape, seed=1, lo=0.5, hi=2)})
    assert ops_of(g) == [ir_op]


def test_binary_with_constant_operand_first():
    m = model([n("Sub", ["c", "x"], ["y"])], {"x": [2, 3]}, ["y"], {"c": rand(3, seed=1)})
    check(m, {"x": rand(2, 3)})


def test_pow():
    m = model([n("Pow", ["x", "e"], ["y"])], {"x": [2, 5]}, ["y"], {"e": np.array(2.0, np.float32)})
    g = check(m, {"x": rand(2, 5)})
    assert ops_of(g) == [Op.POW]


def test_prelu():
    m = model(
        [n("PRelu", ["x", "s"], ["y"])], {"x": [1, 3, 4, 4]}, ["y"], {"s": rand(3, 1, 1, seed=1)}
    )
    g = check(m, {"x": rand(1, 3, 4, 4)})
    assert ops_of(g) == [Op.PRELU]


@pytest.mark.parametrize("op", ["Sum", "Max", "Min", "Mean"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_variadic(op, count):
    names = [f"x{i}" for i in range(count)]
    m = model([n(op, names, ["y"])], {name: [2, 3] for name in names}, ["y"])
    check(m, {name: rand(2, 3, seed=i) for i, name in enumerate(names)})


# ---- pooling ----

POOL_CASES = [
    {"kernel_shape": [3, 3], "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 0], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "strides": [3, 3], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [2, 1, 0, 2]},
]


@pytest.mark.parametrize("attrs", POOL_CASES)
def test_maxpool(attrs):
    m = model([n("MaxPool", ["x"], ["y"], **attrs)], {"x": [1, 2, 9, 8]}, ["y"], opset=12)
    g = check(m, {"x": rand(1, 2, 9, 8)})
    assert ops_of(g) == [Op.MAXPOOL]


def test_maxpool_dilation():
    m = model(
        [n("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])],
        {"x": [1, 2, 7, 7]},
        ["y"],
        opset=12,
    )
    check(m, {"x": rand(1, 2, 7, 7)})


@pytest.mark.parametrize("attrs", POOL_CASES)
@pytest.mark.parametrize("cip", [0, 1])
def test_avgpool(attrs, cip):
    m = model(
        [n("AveragePool", ["x"], ["y"], count_include_pad=cip, **attrs)],
        {"x": [1, 2, 9, 8]},
        ["y"],
        opset=11,
    )
    g = check(m, {"x": rand(1, 2, 9, 8)})
    assert ops_of(g) == [Op.AVGPOOL]


@pytest.mark.parametrize("cip", [0, 1])
def test_avgpool19_dilation(cip):
    attrs = {"kernel_shape": [2, 2], "dilations": [2, 1], "pads": [1, 1, 1, 1], "ceil_mode": 1}
    m = model(
        [n("AveragePool", ["x"], ["y"], count_include_pad=cip, **attrs)],
        {"x": [1, 2, 7, 7]},
        ["y"],
        opset=19,
    )
    check(m, {"x": rand(1, 2, 7, 7)})


def test_pool1d():
    m = model(
        [n("MaxPool", ["x"], ["y"], kernel_shape=[3], strides=[2], pads=[1, 1])],
        {"x": [1, 2, 9]},
        ["y"],
    )
    check(m, {"x": rand(1, 2, 9)})


@pytest.mark.parametrize(
    "op, ir_op", [("GlobalAveragePool", Op.GLOBAL_AVGPOOL), ("GlobalMaxPool", Op.GLOBAL_MAXPOOL)]
)
def test_global_pool(op, ir_op):
    g = check(model([n(op, ["x"], ["y"])], {"x": [2, 3, 5, 4]}, ["y"]), {"x": rand(2, 3, 5, 4)})
    assert ops_of(g) == [ir_op]


# ---- data movement ----


def test_concat_with_constant():
    m = model(
        [n("Concat", ["a", "c", "b"], ["y"], axis=-3)],
        {"a": [1, 2, 3, 3], "b": [1, 1, 3, 3]},
        ["y"],
        {"c": rand(1, 4, 3, 3, seed=3)},
    )
    g = check(m, {"a": rand(1, 2, 3, 3), "b": rand(1, 1, 3, 3, seed=1)})
    assert ops_of(g) == [Op.CONCAT]


@pytest.mark.parametrize(
    "opset, attrs, split, outs, shape",
    [
        (11, {"axis": 1, "split": [1, 3, 2]}, None, 3, (1, 6, 2, 6)),
        (11, {"axis": 1}, None, 2, (1, 6, 2, 6)),
        (13, {"axis": -1}, [2, 4], 2, (1, 6, 2, 6)),
        (13, {"axis": 1}, None, 3, (1, 6, 2, 6)),
        (18, {"axis": 1, "num_outputs": 4}, None, 4, (1, 7, 2, 6)),  # chunks 2, 2, 2, 1
        (18, {"axis": 1, "num_outputs": 3}, None, 3, (1, 6, 2, 6)),
        (18, {"axis": 3}, [1, 5], 2, (1, 6, 2, 6)),
    ],
)
def test_split(opset, attrs, split, outs, shape):
    inits, ins = {}, ["x"]
    if split is not None:
        inits["split"] = np.array(split, I64)
        ins.append("split")
    names = [f"y{i}" for i in range(outs)]
    m = model([n("Split", ins, names, **attrs)], {"x": shape}, names, inits, opset=opset)
    g = check(m, {"x": rand(*shape)})
    assert ops_of(g) == [Op.SPLIT]


@pytest.mark.parametrize(
    "starts, ends, axes, steps",
    [
        ([1], [3], [1], None),
        ([0, 1], [-1, 100], [2, 3], [1, 2]),
        ([-1], [-100], [3], [-1]),  # reverse the whole axis
        ([4, 3], [0, -6], [2, 3], [-2, -1]),
        ([1], [2], [-3], None),
        ([2], [0], [1], [-1]),
    ],
)
def test_slice(starts, ends, axes, steps):
    inits = {"s": np.array(starts, I64), "e": np.array(ends, I64), "a": np.array(axes, I64)}
    ins = ["x", "s", "e", "a"]
    if steps is not None:
        inits["t"] = np.array(steps, I64)
        ins.append("t")
    m = model([n("Slice", ins, ["y"])], {"x": [1, 3, 5, 6]}, ["y"], inits)
    g = check(m, {"x": rand(1, 3, 5, 6)})
    assert ops_of(g) == [Op.SLICE]


@pytest.mark.parametrize(
    "shape, allowzero", [([0, -1], 0), ([2, 0, 3, -1], 0), ([6, 10], 1), ([-1], 0)]
)
def test_reshape(shape, allowzero):
    m = model(
        [n("Reshape", ["x", "s"], ["y"], allowzero=allowzero)],
        {"x": [2, 5, 6]},
        ["y"],
        {"s": np.array(shape, I64)},
        opset=14,
    )
    g = check(m, {"x": rand(2, 5, 6)})
    assert ops_of(g) == [Op.RESHAPE]


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 4])
def test_flatten(axis):
    g = check(
        model([n("Flatten", ["x"], ["y"], axis=axis)], {"x": [2, 3, 4, 5]}, ["y"]),
        {"x": rand(2, 3, 4, 5)},
    )
    assert set(ops_of(g)) <= {Op.RESHAPE}


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes", [[1, -1], None])
def test_squeeze(opset, axes):
    inits, ins, attrs = {}, ["x"], {}
    if axes is not None and opset >= 13:
        inits["axes"] = np.array(axes, I64)
        ins.append("axes")
    elif axes is not None:
        attrs["axes"] = axes
    m = model([n("Squeeze", ins, ["y"], **attrs)], {"x": [2, 1, 3, 1]}, ["y"], inits, opset=opset)
    check(m, {"x": rand(2, 1, 3, 1)})


@pytest.mark.parametrize("opset", [11, 13])
def test_unsqueeze(opset):
    inits, ins, attrs = {}, ["x"], {}
    if opset >= 13:
        inits["axes"] = np.array([0, -1], I64)
        ins.append("axes")
    else:
        attrs["axes"] = [0, -1]
    m = model([n("Unsqueeze", ins, ["y"], **attrs)], {"x": [2, 3]}, ["y"], inits, opset=opset)
    check(m, {"x": rand(2, 3)})


@pytest.mark.parametrize("perm", [[0, 2, 3, 1], None])
def test_transpose(perm):
    attrs = {} if perm is None else {"perm": perm}
    g = check(
        model([n("Transpose", ["x"], ["y"], **attrs)], {"x": [1, 2, 3, 4]}, ["y"]),
        {"x": rand(1, 2, 3, 4)},
    )
    assert ops_of(g) == [Op.TRANSPOSE]


@pytest.mark.parametrize("opset", [11, 18, 19])
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad(opset, mode):
    pads = [0, 0, 1, 2, 0, 1, 2, 0]
    inits = {"p": np.array(pads, I64)}
    ins = ["x", "p"]
    if mode == "constant":
        inits["v"] = np.array(1.5, np.float32)
        ins.append("v")
    m = model([n("Pad", ins, ["y"], mode=mode)], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=opset)
    g = check(m, {"x": rand(1, 2, 4, 5)})
    assert ops_of(g) == [Op.PAD]


def test_pad18_axes_and_negative():
    inits = {"p": np.array([1, -1, 2, 1], I64), "axes": np.array([-1, 2], I64)}
    m = model(
        [n("Pad", ["x", "p", "", "axes"], ["y"])], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=18
    )
    check(m, {"x": rand(1, 2, 4, 5)})


def test_pad19_wrap():
    inits = {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1], I64)}
    m = model(
        [n("Pad", ["x", "p"], ["y"], mode="wrap")], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=19
    )
    check(m, {"x": rand(1, 2, 4, 5)})


def test_gather_on_activation():
    nodes = [
        n("Gather", ["x", "i"], ["a"], axis=1),
        helper.make_node("Gather", ["x", "j"], ["b"], axis=-1, name="g2"),
    ]
    inits = {"i": np.array(2, I64), "j": np.array([4, 2, 0], I64)}
    m = model(nodes, {"x": [2, 3, 5]}, ["a", "b"], inits)
    check(m, {"x": rand(2, 3, 5)})


def test_expand_activation():
    m = model(
        [n("Expand", ["x", "s"], ["y"])],
        {"x": [1, 3, 1, 1]},
        ["y"],
        {"s": np.array([2, 1, 4, 5], I64)},
    )
    g = check(m, {"x": rand(1, 3, 1, 1)})
    assert ops_of(g) == [Op.MUL]


@pytest.mark.parametrize("op", ["Identity", "Dropout"])
def test_identity_like(op):
    nodes = [n(op, ["x"], ["t"]), helper.make_node("Relu", ["t"], ["y"])]
    g = check(model(nodes, {"x": [2, 3]}, ["y"]), {"x": rand(2, 3)})
    assert ops_of(g) == [Op.RELU]


def test_identity_as_graph_output():
    g = check(model([n("Identity", ["x"], ["y"])], {"x": [2, 3]}, ["y"]), {"x": rand(2, 3)})
    assert ops_of(g) == [Op.IDENTITY]


def test_dropout12_with_training_mode_false():
    inits = {"r": np.array(0.5, np.float32), "t": np.array(False)}
    m = model([n("Dropout", ["x", "r", "t"], ["y"])], {"x": [2, 3]}, ["y"], inits, opset=13)
    check(m, {"x": rand(2, 3)})


# ---- resize ----

# tf_half_pixel_for_nearest (opset 11 only) is gone from ONNX Runtime: tested on its own below
COORD_MODES = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


@pytest.mark.parametrize("coord", COORD_MODES)
@pytest.mark.parametrize("nearest", NEAREST_MODES)
@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.5, 0.75], [1, 1, 1.7, 0.6]])
def test_resize_nearest_scales(coord, nearest, scales):
    inits = {"roi": np.zeros(0, np.float32), "sc": np.array(scales, np.float32)}
    node = n(
        "Resize",
        ["x", "roi", "sc"],
        ["y"],
        mode="nearest",
        coordinate_transformation_mode=coord,
        nearest_mode=nearest,
    )
    g = check(model([node], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=11), {"x": rand(1, 2, 4, 5)})
    assert ops_of(g) == [Op.RESIZE]


@pytest.mark.parametrize("coord", COORD_MODES)
@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.5, 0.75], [1, 1, 1.7, 0.6]])
def test_resize_linear_scales(coord, scales):
    inits = {"sc": np.array(scales, np.float32)}
    node = n("Resize", ["x", "", "sc"], ["y"], mode="linear", coordinate_transformation_mode=coord)
    check(model([node], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=13), {"x": rand(1, 2, 4, 5)})


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("coord", [*COORD_MODES, "half_pixel_symmetric"])
@pytest.mark.parametrize("sizes", [[1, 2, 9, 7], [1, 2, 3, 2], [1, 2, 1, 11]])
def test_resize_sizes(mode, coord, sizes):
    inits = {"sz": np.array(sizes, I64)}
    node = n("Resize", ["x", "", "", "sz"], ["y"], mode=mode, coordinate_transformation_mode=coord)
    check(model([node], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=19), {"x": rand(1, 2, 4, 5)})


@pytest.mark.parametrize("nearest", NEAREST_MODES)
def test_resize_tf_half_pixel_for_nearest(nearest):
    """x_original = (x + 0.5) / scale, then the nearest_mode rounding (hand-computed)."""
    from npas.frontend import load_onnx
    from npas.ir.interp import run_graph

    inits = {"roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 0.6], np.float32)}
    node = n(
        "Resize",
        ["x", "roi", "sc"],
        ["y"],
        mode="nearest",
        nearest_mode=nearest,
        coordinate_transformation_mode="tf_half_pixel_for_nearest",
    )
    x = rand(1, 2, 4, 5)
    got = run_graph(
        load_onnx(model([node], {"x": [1, 2, 4, 5]}, ["y"], inits, opset=11)), {"x": x}
    )["y"]

    def index(o: int, scale: float, size: int) -> int:
        v = (o + 0.5) / scale
        r = {"floor": np.floor(v), "ceil": np.ceil(v)}.get(nearest)
        if r is None:
            tie = v == np.floor(v) + 0.5
            r = (
                (np.floor(v) if nearest == "round_prefer_floor" else np.ceil(v))
                if tie
                else np.round(v)
            )
        return int(min(max(r, 0), size - 1))

    rows = [index(o, 2.0, 4) for o in range(8)]
    cols = [index(o, np.float32(0.6), 5) for o in range(3)]
    np.testing.assert_array_equal(got, x[:, :, rows][:, :, :, cols])


def test_resize18_axes_attr():
    inits = {"sc": np.array([2.0, 1.5], np.float32)}
    node = n("Resize", ["x", "", "sc"], ["y"], mode="linear", axes=[2, 3])
    check(model([node], {"x": [1, 2, 4, 4]}, ["y"], inits, opset=18), {"x": rand(1, 2, 4, 4)})


def test_resize_by_shape_chain():
    """Resize sizes computed from Shape -> Slice -> Concat, the pattern of U-Net style exports."""
    nodes = [
        n("Shape", ["x"], ["shp"]),
        helper.make_node("Slice", ["shp", "s0", "s1"], ["nc"], name="sl"),
        helper.make_node("Concat", ["nc", "hw"], ["sizes"], axis=0, name="cat"),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest", name="rs"),
    ]
    inits = {"s0": np.array([0], I64), "s1": np.array([2], I64), "hw": np.array([8, 10], I64)}
    g = check(model(nodes, {"x": [1, 2, 4, 5]}, ["y"], inits, opset=13), {"x": rand(1, 2, 4, 5)})
    assert ops_of(g) == [Op.RESIZE]


# ---- softmax and reductions ----


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_softmax(opset, axis):
    attrs = {} if axis is None else {"axis": axis}
    m = model([n("Softmax", ["x"], ["y"], **attrs)], {"x": [2, 3, 4]}, ["y"], opset=opset)
    check(m, {"x": rand(2, 3, 4, lo=-3, hi=3)})


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax", "ReduceSum"])
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize(
    "axes, keepdims", [([2, 3], 1), ([-1], 0), (None, 1), (None, 0), ([0, 2], 0)]
)
def test_reduce(op, opset, axes, keepdims):
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    inits, ins, attrs = {}, ["x"], {"keepdims": keepdims}
    if axes is not None:
        if axes_as_input:
            inits["axes"] = np.array(axes, I64)
            ins.append("axes")
        else:
            attrs["axes"] = axes
    m = model([n(op, ins, ["y"], **attrs)], {"x": [2, 3, 4, 5]}, ["y"], inits, opset=opset)
    check(m, {"x": rand(2, 3, 4, 5)})


def test_reduce_noop_with_empty_axes():
    m = model(
        [n("ReduceSum", ["x"], ["y"], noop_with_empty_axes=1)], {"x": [2, 3]}, ["y"], opset=13
    )
    check(m, {"x": rand(2, 3)})


# ---- load-time folding of shape computations ----


def test_shape_gather_unsqueeze_concat_reshape_chain():
    """x.view(x.size(0), -1) as the legacy PyTorch exporter writes it."""
    nodes = [
        n("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0, name="g"),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="u"),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0, name="c"),
        helper.make_node("Reshape", ["x", "shape"], ["y"], name="r"),
    ]
    inits = {"zero": np.array(0, I64), "ax0": np.array([0], I64), "minus1": np.array([-1], I64)}
    g = check(model(nodes, {"x": ["batch", 3, 2, 2]}, ["y"], inits), {"x": rand(1, 3, 2, 2)})
    assert ops_of(g) == [Op.RESHAPE]


def test_constant_of_shape_range_where_equal_cast_expand():
    nodes = [
        helper.make_node("Constant", [], ["k"], value_ints=[2, 3], name="k"),
        helper.make_node(
            "ConstantOfShape",
            ["k"],
            ["ones"],
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
            name="cos",
        ),
        helper.make_node("Range", ["r0", "r1", "r2"], ["rng"], name="rng"),
        helper.make_node("Cast", ["rng"], ["rngf"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("Equal", ["rng", "r2"], ["eq"], name="eq"),
        helper.make_node("Where", ["eq", "rngf", "ones"], ["w"], name="where"),
        helper.make_node("Expand", ["w", "k"], ["we"], name="exp"),
        helper.make_node("Mul", ["x", "we"], ["y"], name="mul"),
    ]
    inits = {"r0": np.array(0, I64), "r1": np.array(3, I64), "r2": np.array(1, I64)}
    g = check(model(nodes, {"x": [2, 3]}, ["y"], inits), {"x": rand(2, 3)})
    assert ops_of(g) == [Op.MUL]


def test_float_constant_subgraph_is_folded():
    """Float ops on constants only (here Relu and Conv) fold at load time too."""
    nodes = [
        n("Relu", ["c"], ["rc"]),
        helper.make_node("Conv", ["cimg", "W"], ["cw"], name="const_conv"),
        helper.make_node("Add", ["x", "rc"], ["t"], name="add"),
        helper.make_node("Add", ["t", "cw"], ["y"], name="add2"),
    ]
    inits = {
        "c": rand(1, 2, 3, 3, seed=1),
        "cimg": rand(1, 2, 3, 3, seed=2),
        "W": rand(2, 2, 1, 1, seed=3),
    }
    g = check(model(nodes, {"x": [1, 2, 3, 3]}, ["y"], inits), {"x": rand(1, 2, 3, 3)})
    assert ops_of(g) == [Op.ADD, Op.ADD]


def test_constant_graph_output():
    nodes = [
        helper.make_node("Constant", [], ["k"], value_float=3.0, name="k"),
        n("Relu", ["x"], ["y"]),
    ]
    check(model(nodes, {"x": [2]}, ["y", "k"]), {"x": rand(2)})


def test_input_shapes_override():
    m = model([n("Relu", ["x"], ["y"])], {"x": ["n", 3, "h", "w"]}, ["y"])
    check(m, {"x": rand(1, 3, 4, 6)}, input_shapes={"x": (1, 3, 4, 6)})


def test_unnamed_nodes_get_op_index_names():
    from npas.frontend import load_onnx

    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["a"], ["y"])]
    g = load_onnx(model(nodes, {"x": [2]}, ["y"]))
    assert [layer.name for layer in g.layers] == ["Relu_0", "Sigmoid_1"]
