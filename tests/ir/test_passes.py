"""Each pass on a small hand-built graph: the printed IR after the pass is what we expect, the
result verifies, and both graphs compute the same numbers (reference interpreter)."""

# ruff: noqa: E501 - expected IR text and node lists read best one item per line

from __future__ import annotations

import textwrap

import numpy as np
from ir_helpers import GraphBuilder, rand, same_numbers

from npas.ir import (
    Activation,
    AxisAttrs,
    Conv2dAttrs,
    ConvTranspose2dAttrs,
    Epilogue,
    Graph,
    Op,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ReshapeAttrs,
    UnaryAttrs,
)
from npas.ir.printer import format_graph
from npas.ir.verify import verify
from npas.passes import (
    eliminate_dead_code,
    fold_batchnorm,
    fold_constants,
    fold_pad,
    fuse_activation,
    fuse_residual_add,
    merge_reshapes,
    recognize_hardswish,
    recognize_silu,
    reduce_to_global_pool,
    remove_identities,
    run_pipeline,
)


def conv3x3(pads: tuple[int, int, int, int] = (1, 1, 1, 1), groups: int = 1) -> Conv2dAttrs:
    return Conv2dAttrs((3, 3), (1, 1), pads, (1, 1), groups)


def expect(graph: Graph, text: str) -> None:
    assert format_graph(graph) == textwrap.dedent(text).lstrip("\n")


def applied(p, graph: Graph) -> Graph:
    """Run one pass, verify, and check it computes what the input graph computed."""
    out = p(graph)
    verify(out)
    same_numbers(graph, out)
    return out


def conv_graph(name: str = "t") -> GraphBuilder:
    b = GraphBuilder(name)
    b.input("x", 1, 2, 5, 5)
    b.const("W", rand(3, 2, 3, 3, seed=1))
    b.const("B", rand(3, seed=2))
    return b


# ---- folding ----


def test_fold_constants():
    b = GraphBuilder()
    b.input("x", 2, 3)
    b.const("a", [1.0, 2.0, 3.0])
    b.const("c", [0.5, 0.5, 0.5])
    b.layer(Op.ADD, "add", ["a", "c"], "s")
    b.layer(Op.RELU, "relu", ["s"], "r")
    b.layer(Op.MUL, "mul", ["x", "r"], "y")
    out = applied(fold_constants, b.build("y"))
    expect(
        out,
        """
        graph t (opset 13)
          inputs: x[2,3]
          mul: mul(x[2,3], @r[3]) -> y[2,3]
          outputs: y[2,3]
        """,
    )
    np.testing.assert_allclose(out.const("r"), [1.5, 2.5, 3.5])


def test_fold_batchnorm_into_conv():
    b = conv_graph()
    b.const("s", rand(3, seed=3))
    b.const("t", rand(3, seed=4))
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", conv3x3())
    b.layer(Op.CHANNEL_AFFINE, "bn", ["c", "s", "t"], "a")
    b.layer(Op.RELU, "relu", ["a"], "y")
    expect(
        applied(fold_batchnorm, b.build("y")),
        """
        graph t (opset 13)
          inputs: x[1,2,5,5]
          conv: conv2d(x[1,2,5,5], @conv/W_bn[3,2,3,3], @conv/B_bn[3]) -> a[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1
          relu: relu(a[1,3,5,5]) -> y[1,3,5,5]
          outputs: y[1,3,5,5]
        """,
    )


def test_fold_batchnorm_into_dense_and_grouped_conv_transpose():
    b = GraphBuilder()
    b.input("v", 2, 5)
    b.const("Wd", rand(4, 5, seed=1))
    b.const("Bd", rand(4, seed=2))
    b.const("sd", rand(4, seed=3))
    b.const("td", rand(4, seed=4))
    b.layer(Op.DENSE, "fc", ["v", "Wd", "Bd"], "d")
    b.layer(Op.CHANNEL_AFFINE, "bn1", ["d", "sd", "td"], "yd")
    b.input("x", 1, 4, 3, 3)
    b.const("Wt", rand(4, 3, 3, 3, seed=5))  # C=4, F/g=3, groups=2 -> F=6
    b.const("Bt", rand(6, seed=6))
    b.const("st", rand(6, seed=7))
    b.const("tt", rand(6, seed=8))
    attrs = ConvTranspose2dAttrs((3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2, (1, 1))
    b.layer(Op.CONV_TRANSPOSE2D, "up", ["x", "Wt", "Bt"], "u", attrs)
    b.layer(Op.CHANNEL_AFFINE, "bn2", ["u", "st", "tt"], "yu")
    out = applied(fold_batchnorm, b.build("yd", "yu"))
    assert [layer.op for layer in out.layers] == [Op.DENSE, Op.CONV_TRANSPOSE2D]


def test_fold_batchnorm_keeps_shared_or_activated_conv():
    b = conv_graph()
    b.const("s", rand(3, seed=3))
    b.const("t", rand(3, seed=4))
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", conv3x3())
    b.layer(Op.CHANNEL_AFFINE, "bn", ["c", "s", "t"], "a")
    b.layer(Op.ADD, "add", ["a", "c"], "y")  # c has two readers
    b.layer(Op.CONV2D, "conv2", ["x", "W", "B"], "c2", conv3x3(), Epilogue(act=Activation(Op.RELU)))
    b.layer(Op.CHANNEL_AFFINE, "bn2", ["c2", "s", "t"], "y2")  # after an activation
    g = b.build("y", "y2")
    assert format_graph(applied(fold_batchnorm, g)) == format_graph(g)


def test_fold_pad_into_conv_and_count_include_pad_pool():
    b = conv_graph()
    pad = PadAttrs((0, 0, 1, 0, 0, 0, 2, 1))
    b.layer(Op.PAD, "pad", ["x"], "p", pad)
    b.layer(Op.CONV2D, "conv", ["p", "W", "B"], "c", conv3x3((0, 1, 0, 1)))
    b.layer(Op.PAD, "pad2", ["c"], "p2", pad)
    b.layer(Op.AVGPOOL, "pool", ["p2"], "y", PoolAttrs((2, 2), (2, 2), count_include_pad=True))
    b.layer(Op.PAD, "pad3", ["c"], "p3", pad)
    b.layer(Op.AVGPOOL, "pool2", ["p3"], "y2", PoolAttrs((2, 2), (2, 2)))  # excludes pads: keep
    b.layer(Op.PAD, "pad4", ["x"], "p4", PadAttrs((0, 0, 1, 1, 0, 0, 1, 1), "reflect"))
    b.layer(Op.CONV2D, "conv2", ["p4", "W", "B"], "y3", conv3x3((0, 0, 0, 0)))
    expect(
        applied(fold_pad, b.build("y", "y2", "y3")),
        """
        graph t (opset 13)
          inputs: x[1,2,5,5]
          conv: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> c[1,3,6,6]  k=3x3 s=1x1 p=1,1,2,2
          pool: avgpool(c[1,3,6,6]) -> y[1,3,4,3]  k=2x2 s=2x2 p=1,0,2,1 count_include_pad=1
          pad3: pad(c[1,3,6,6]) -> p3[1,3,9,7]  p=0,0,1,0,0,0,2,1
          pool2: avgpool(p3[1,3,9,7]) -> y2[1,3,4,3]  k=2x2 s=2x2 p=0,0,0,0
          pad4: pad(x[1,2,5,5]) -> p4[1,2,7,7]  p=0,0,1,1,0,0,1,1 mode=reflect
          conv2: conv2d(p4[1,2,7,7], @W[3,2,3,3], @B[3]) -> y3[1,3,5,5]  k=3x3 s=1x1 p=0,0,0,0
          outputs: y[1,3,4,3], y2[1,3,4,3], y3[1,3,5,5]
        """,
    )


# ---- recognition ----


def _hardswish_forms() -> Graph:
    b = GraphBuilder()
    b.input("x", 1, 2, 3, 3)
    b.const("three", 3.0)
    b.const("six", 6.0)
    b.const("sixth", 1.0 / 6.0)
    relu6 = UnaryAttrs(0.0, 6.0)
    # (a) x * clip(x + 3, 0, 6) / 6
    b.layer(Op.ADD, "a_add", ["x", "three"], "a1")
    b.layer(Op.CLIP, "a_clip", ["a1"], "a2", relu6)
    b.layer(Op.MUL, "a_mul", ["x", "a2"], "a3")
    b.layer(Op.DIV, "a_div", ["a3", "six"], "ya")
    # (b) x * (relu6(3 + x) * 1/6)
    b.layer(Op.ADD, "b_add", ["three", "x"], "b1")
    b.layer(Op.CLIP, "b_clip", ["b1"], "b2", relu6)
    b.layer(Op.MUL, "b_scale", ["b2", "sixth"], "b3")
    b.layer(Op.MUL, "b_mul", ["b3", "x"], "yb")
    # (c) x * hardsigmoid(x; 1/6, 1/2)
    b.layer(Op.HARDSIGMOID, "c_hs", ["x"], "c1", UnaryAttrs(1.0 / 6.0, 0.5))
    b.layer(Op.MUL, "c_mul", ["x", "c1"], "yc")
    # (d) (x * clip(x + 3, 0, 6)) * (1/6)
    b.layer(Op.ADD, "d_add", ["x", "three"], "d1")
    b.layer(Op.CLIP, "d_clip", ["d1"], "d2", relu6)
    b.layer(Op.MUL, "d_mul", ["d2", "x"], "d3")
    b.layer(Op.MUL, "d_scale", ["sixth", "d3"], "yd")
    # (e) a lone hard-sigmoid: clip(x + 3, 0, 6) / 6 read by something else
    b.layer(Op.ADD, "e_add", ["x", "three"], "e1")
    b.layer(Op.CLIP, "e_clip", ["e1"], "e2", relu6)
    b.layer(Op.DIV, "e_div", ["e2", "six"], "ye")
    # (f) not hard-swish: the clip result is read twice
    b.layer(Op.ADD, "f_add", ["x", "three"], "f1")
    b.layer(Op.CLIP, "f_clip", ["f1"], "f2", relu6)
    b.layer(Op.MUL, "f_mul", ["x", "f2"], "f3")
    b.layer(Op.DIV, "f_div", ["f3", "six"], "yf")
    return b.build("ya", "yb", "yc", "yd", "ye", "yf", "f2")


def test_recognize_hardswish_forms():
    expect(
        applied(recognize_hardswish, _hardswish_forms()),
        """
        graph t (opset 13)
          inputs: x[1,2,3,3]
          a_div: hardswish(x[1,2,3,3]) -> ya[1,2,3,3]
          b_mul: hardswish(x[1,2,3,3]) -> yb[1,2,3,3]
          c_mul: hardswish(x[1,2,3,3]) -> yc[1,2,3,3]
          d_scale: hardswish(x[1,2,3,3]) -> yd[1,2,3,3]
          e_div: hardsigmoid(x[1,2,3,3]) -> ye[1,2,3,3]  alpha=0.166667 beta=0.5
          f_add: add(x[1,2,3,3], @three[]) -> f1[1,2,3,3]
          f_clip: clip(f1[1,2,3,3]) -> f2[1,2,3,3]  min=0 max=6
          f_mul: mul(x[1,2,3,3], f2[1,2,3,3]) -> f3[1,2,3,3]
          f_div: div(f3[1,2,3,3], @six[]) -> yf[1,2,3,3]
          outputs: ya[1,2,3,3], yb[1,2,3,3], yc[1,2,3,3], yd[1,2,3,3], ye[1,2,3,3], yf[1,2,3,3], f2[1,2,3,3]
        """,
    )


def test_recognize_silu():
    b = GraphBuilder()
    b.input("x", 2, 4)
    b.layer(Op.SIGMOID, "sig", ["x"], "s")
    b.layer(Op.MUL, "mul", ["s", "x"], "y")
    b.layer(Op.SIGMOID, "sig2", ["x"], "s2")
    b.layer(Op.MUL, "mul2", ["y", "s2"], "y2")  # sigmoid of another tensor: not SiLU
    expect(
        applied(recognize_silu, b.build("y2")),
        """
        graph t (opset 13)
          inputs: x[2,4]
          mul: silu(x[2,4]) -> y[2,4]
          sig2: sigmoid(x[2,4]) -> s2[2,4]
          mul2: mul(y[2,4], s2[2,4]) -> y2[2,4]
          outputs: y2[2,4]
        """,
    )


def test_reduce_to_global_pool():
    b = GraphBuilder()
    b.input("x", 1, 3, 4, 5)
    b.layer(Op.REDUCE_MEAN, "mean", ["x"], "m", ReduceAttrs((2, 3), True))
    b.layer(Op.REDUCE_MAX, "max", ["x"], "n", ReduceAttrs((2, 3), False))
    b.layer(Op.REDUCE_MEAN, "mean_c", ["x"], "c", ReduceAttrs((1,), True))  # not spatial
    expect(
        applied(reduce_to_global_pool, b.build("m", "n", "c")),
        """
        graph t (opset 13)
          inputs: x[1,3,4,5]
          mean: global_avgpool(x[1,3,4,5]) -> m[1,3,1,1]
          max: global_maxpool(x[1,3,4,5]) -> n/pooled[1,3,1,1]
          max/squeeze: reshape(n/pooled[1,3,1,1]) -> n[1,3]  shape=1,3
          mean_c: reduce_mean(x[1,3,4,5]) -> c[1,1,4,5]  axes=1
          outputs: m[1,3,1,1], n[1,3], c[1,1,4,5]
        """,
    )


# ---- epilogue fusion ----


def test_fuse_residual_then_activation():
    b = conv_graph()
    b.const("W2", rand(2, 3, 3, 3, seed=3))
    b.const("B2", rand(2, seed=4))
    b.layer(Op.CONV2D, "conv1", ["x", "W", "B"], "c1", conv3x3())
    b.layer(Op.RELU, "relu1", ["c1"], "r1")
    b.layer(Op.CONV2D, "conv2", ["r1", "W2", "B2"], "c2", conv3x3())
    b.layer(Op.ADD, "add", ["x", "c2"], "s")
    b.layer(Op.RELU, "relu2", ["s"], "y")
    g = b.build("y")
    g = applied(fuse_residual_add, g)
    expect(
        g,
        """
        graph t (opset 13)
          inputs: x[1,2,5,5]
          conv1: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> c1[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1
          relu1: relu(c1[1,3,5,5]) -> r1[1,3,5,5]
          conv2: conv2d(r1[1,3,5,5], @W2[2,3,3,3], @B2[2], x[1,2,5,5]) -> s[1,2,5,5]  k=3x3 s=1x1 p=1,1,1,1 +residual
          relu2: relu(s[1,2,5,5]) -> y[1,2,5,5]
          outputs: y[1,2,5,5]
        """,
    )
    expect(
        applied(fuse_activation, g),
        """
        graph t (opset 13)
          inputs: x[1,2,5,5]
          conv1: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> r1[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1 +relu
          conv2: conv2d(r1[1,3,5,5], @W2[2,3,3,3], @B2[2], x[1,2,5,5]) -> y[1,2,5,5]  k=3x3 s=1x1 p=1,1,1,1 +residual +relu
          outputs: y[1,2,5,5]
        """,
    )


def test_fuse_residual_places_layer_at_the_add():
    """The residual operand is computed after the conv: the fused conv must move down."""
    b = conv_graph()
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", conv3x3())
    b.layer(Op.CONV2D, "other", ["x", "W", "B"], "o", conv3x3(), Epilogue(act=None))
    b.layer(Op.SIGMOID, "sig", ["o"], "r")
    b.layer(Op.ADD, "add", ["c", "r"], "y")
    out = applied(fuse_residual_add, b.build("y"))
    assert [layer.name for layer in out.layers] == ["other", "sig", "conv"]
    assert out.layers[-1].inputs[3] == "r"


def test_fuse_residual_rejects_broadcast_and_constant():
    b = conv_graph()
    b.input("z", 1, 3, 1, 1)
    b.const("k", rand(1, 3, 5, 5, seed=5))
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", conv3x3())
    b.layer(Op.ADD, "add", ["c", "z"], "y")  # broadcast
    b.layer(Op.CONV2D, "conv2", ["x", "W", "B"], "c2", conv3x3())
    b.layer(Op.ADD, "add2", ["c2", "k"], "y2")  # constant operand
    g = b.build("y", "y2")
    assert format_graph(applied(fuse_residual_add, g)) == format_graph(g)


def test_fuse_activation_variants_and_limits():
    b = conv_graph()
    b.const("Wd", rand(4, 3, seed=3))
    b.const("Bd", rand(4, seed=4))
    b.layer(Op.CONV2D, "c_clip", ["x", "W", "B"], "c1", conv3x3())
    b.layer(Op.CLIP, "relu6", ["c1"], "y1", UnaryAttrs(0.0, 6.0))
    b.layer(Op.CONV2D, "c_out", ["x", "W", "B"], "c2", conv3x3())
    b.layer(Op.RELU, "relu_of_output", ["c2"], "y2")  # c2 is a graph output: no fusion
    b.layer(Op.CONV2D, "c_two", ["x", "W", "B"], "c3", conv3x3())
    b.layer(Op.LEAKY_RELU, "leaky", ["c3"], "y3", UnaryAttrs(0.1))
    b.layer(Op.TANH, "tanh", ["c3"], "y4")  # c3 has two readers: no fusion
    b.layer(Op.CONV2D, "c_elu", ["x", "W", "B"], "c5", conv3x3())
    b.layer(Op.ELU, "elu", ["c5"], "y5", UnaryAttrs(1.0))  # ELU is not an epilogue activation
    b.input("v", 2, 3)
    b.layer(Op.DENSE, "fc", ["v", "Wd", "Bd"], "d")
    b.layer(Op.HARDSIGMOID, "hsig", ["d"], "y6", UnaryAttrs(0.2, 0.5))
    expect(
        applied(fuse_activation, b.build("y1", "y2", "c2", "y3", "y4", "y5", "y6")),
        """
        graph t (opset 13)
          inputs: x[1,2,5,5], v[2,3]
          c_clip: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> y1[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1 +clip(0,6)
          c_out: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> c2[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1
          relu_of_output: relu(c2[1,3,5,5]) -> y2[1,3,5,5]
          c_two: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> c3[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1
          leaky: leaky_relu(c3[1,3,5,5]) -> y3[1,3,5,5]  alpha=0.1
          tanh: tanh(c3[1,3,5,5]) -> y4[1,3,5,5]
          c_elu: conv2d(x[1,2,5,5], @W[3,2,3,3], @B[3]) -> c5[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1
          elu: elu(c5[1,3,5,5]) -> y5[1,3,5,5]  alpha=1
          fc: dense(v[2,3], @Wd[4,3], @Bd[4]) -> y6[2,4]  +hardsigmoid(0.2,0.5)
          outputs: y1[1,3,5,5], y2[1,3,5,5], c2[1,3,5,5], y3[1,3,5,5], y4[1,3,5,5], y5[1,3,5,5], y6[2,4]
        """,
    )


# ---- cleanup ----


def test_remove_identities():
    b = GraphBuilder()
    b.input("x", 2, 3)
    b.layer(Op.RELU, "relu", ["x"], "r")
    b.layer(Op.IDENTITY, "id1", ["r"], "i1")
    b.layer(Op.RESHAPE, "same", ["i1"], "i2", ReshapeAttrs((2, 3)))
    b.layer(Op.CONCAT, "cat1", ["i2"], "i3", AxisAttrs(0))
    b.layer(Op.SIGMOID, "sig", ["i3"], "s")
    b.layer(Op.IDENTITY, "out_id", ["s"], "y")  # graph output: the producer is renamed
    b.layer(Op.IDENTITY, "in_id", ["x"], "z")  # of a graph input: must stay
    expect(
        applied(remove_identities, b.build("y", "z")),
        """
        graph t (opset 13)
          inputs: x[2,3]
          relu: relu(x[2,3]) -> r[2,3]
          sig: sigmoid(r[2,3]) -> y[2,3]
          in_id: identity(x[2,3]) -> z[2,3]
          outputs: y[2,3], z[2,3]
        """,
    )


def test_merge_reshapes_and_dead_code():
    b = GraphBuilder()
    b.input("x", 2, 3, 4)
    b.layer(Op.RESHAPE, "r1", ["x"], "a", ReshapeAttrs((6, 4)))
    b.layer(Op.RESHAPE, "r2", ["a"], "b", ReshapeAttrs((24,)))
    b.layer(Op.RESHAPE, "r3", ["b"], "y", ReshapeAttrs((4, 6)))
    b.layer(Op.EXP, "dead", ["x"], "unused")
    g = b.build("y")
    expect(
        applied(merge_reshapes, g),
        """
        graph t (opset 13)
          inputs: x[2,3,4]
          r3: reshape(x[2,3,4]) -> y[4,6]  shape=4,6
          outputs: y[4,6]
        """,
    )
    out = applied(eliminate_dead_code, g)
    assert [layer.name for layer in out.layers] == ["r1", "r2", "r3"]
    assert "unused" not in out.values


# ---- the whole pipeline ----


def test_pipeline_on_conv_bn_hardswish_block():
    b = conv_graph()
    b.const("s", rand(3, seed=3, lo=0.5, hi=1.5))
    b.const("t", rand(3, seed=4))
    b.const("three", 3.0)
    b.const("six", 6.0)
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", conv3x3())
    b.layer(Op.CHANNEL_AFFINE, "bn", ["c", "s", "t"], "a")
    b.layer(Op.ADD, "add3", ["a", "three"], "a3")
    b.layer(Op.CLIP, "clip", ["a3"], "cl", UnaryAttrs(0.0, 6.0))
    b.layer(Op.MUL, "mul", ["a", "cl"], "m")
    b.layer(Op.DIV, "div", ["m", "six"], "y")
    g = b.build("y")
    out = run_pipeline(g, verify=True)
    same_numbers(g, out)
    expect(
        out,
        """
        graph t (opset 13)
          inputs: x[1,2,5,5]
          conv: conv2d(x[1,2,5,5], @conv/W_bn[3,2,3,3], @conv/B_bn[3]) -> y[1,3,5,5]  k=3x3 s=1x1 p=1,1,1,1 +hardswish
          outputs: y[1,3,5,5]
        """,
    )
