"""The IR tools themselves: printer text, verifier invariants, shape inference, and the
interpreter against naive loop implementations (independent of ONNX Runtime)."""

# ruff: noqa: E501 - expected IR text and node lists read best one item per line

from __future__ import annotations

import math
import textwrap

import numpy as np
import pytest
from ir_helpers import GraphBuilder, rand

from npas.errors import ShapeError
from npas.ir import (
    Activation,
    Conv2dAttrs,
    ConvTranspose2dAttrs,
    Epilogue,
    Layer,
    NoAttrs,
    Op,
    PoolAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    Schedule,
    SliceAttrs,
    Sparsity,
    SplitAttrs,
    UnaryAttrs,
    Value,
)
from npas.ir.interp import avgpool, conv2d, conv_transpose2d, run_graph
from npas.ir.printer import format_graph
from npas.ir.shapes import infer_shapes
from npas.ir.verify import VerifyError, verify

# ---- printer ----


def test_printer_format():
    b = GraphBuilder("demo")
    b.input("x", 1, 4, 6, 6)
    b.const("W", rand(4, 2, 3, 3))
    b.const("B", np.zeros(4))
    conv = Conv2dAttrs((3, 3), (2, 2), (1, 1, 0, 0), (2, 1), 2)
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", conv)
    b.layer(Op.SPLIT, "split", ["c"], ["s0", "s1"], SplitAttrs(1, (1, 3)))
    b.layer(Op.CLIP, "clip", ["s1"], "k", UnaryAttrs(-math.inf, 0.5))
    b.layer(Op.SLICE, "slice", ["k"], "sl", SliceAttrs((0, 2, 1, 0), (1, -1, 1, 2), (1, -1, 2, 2)))
    b.layer(Op.RESIZE, "up", ["s0"], "u", ResizeAttrs("nearest", "asymmetric", "floor", (2.0, 2.0)))
    b.layer(Op.RESHAPE, "flat", ["sl"], "f", ReshapeAttrs((1, 3)))
    g = b.build("u", "f")
    mask = np.ones((4, 2, 3, 3), np.float32)
    mask[:, :, 0, 0] = 0
    g.layers[0] = g.layers[0].with_(
        epilogue=Epilogue(act=Activation(Op.LEAKY_RELU, 0.1)),
        sparsity=Sparsity("pattern", (("entries", 4), ("rate", 6.0)), mask),
        schedule=Schedule("npas_f32_conv3x3_dense_4x8__avx2", (("tile", (4, 8)),)),
    )
    want = """\
        graph demo (opset 13)
          inputs: x[1,4,6,6]
          conv: conv2d(x[1,4,6,6], @W[4,2,3,3], @B[4]) -> c[1,4,2,3]  k=3x3 s=2x2 p=1,1,0,0 d=2x1 g=2 +leaky_relu(0.1) sparsity=pattern(entries=4,rate=6,density=0.889) kernel=npas_f32_conv3x3_dense_4x8__avx2(tile=4,8)
          split: split(c[1,4,2,3]) -> s0[1,1,2,3], s1[1,3,2,3]  axis=1 sizes=1,3
          clip: clip(s1[1,3,2,3]) -> k[1,3,2,3]  min=-inf max=0.5
          slice: slice(k[1,3,2,3]) -> sl[1,3,1,1]  starts=0,2,1,0 steps=1,-1,1,2 ends=1,-1,2,2
          up: resize(s0[1,1,2,3]) -> u[1,1,4,6]  mode=nearest coordinate_mode=asymmetric nearest_mode=floor scales=2,2
          flat: reshape(sl[1,3,1,1]) -> f[1,3]  shape=1,3
          outputs: u[1,1,4,6], f[1,3]
        """
    assert format_graph(g) == textwrap.dedent(want)
    assert format_graph(g) == format_graph(g.copy())  # deterministic


def test_printer_residual_epilogue():
    b = GraphBuilder()
    b.input("x", 2, 3)
    b.const("W", rand(3, 3))
    b.const("B", rand(3))
    ep = Epilogue(residual=True, act=Activation(Op.CLIP, 0.0, 6.0))
    b.layer(Op.DENSE, "fc", ["x", "W", "B", "x"], "y", epilogue=ep)
    line = format_graph(b.build("y")).splitlines()[2]
    assert line == "  fc: dense(x[2,3], @W[3,3], @B[3], x[2,3]) -> y[2,3]  +residual +clip(0,6)"


# ---- verifier ----


def _small():
    b = GraphBuilder()
    b.input("x", 1, 2, 4, 4)
    b.const("W", rand(3, 2, 1, 1))
    b.const("B", rand(3))
    b.layer(Op.CONV2D, "conv", ["x", "W", "B"], "c", Conv2dAttrs((1, 1)))
    b.layer(Op.RELU, "relu", ["c"], "y")
    return b.build("y")


def test_verify_accepts_good_graph():
    verify(_small())


def _broken(change) -> str:
    g = _small()
    change(g)
    with pytest.raises(VerifyError) as e:
        verify(g)
    return str(e.value)


def test_verify_order():
    def swap(g):
        g.layers.reverse()

    assert "relu" in _broken(swap) and "topological" in _broken(swap)


def test_verify_duplicate_layer_names():
    def dup(g):
        g.layers[1] = g.layers[1].with_(name="conv")

    assert "duplicate layer name 'conv'" in _broken(dup)


def test_verify_undefined_input():
    def bad(g):
        g.layers[1] = g.layers[1].with_(inputs=("nope",))

    assert "'relu'" in _broken(bad) and "nope" in _broken(bad)


def test_verify_shape_mismatch():
    def bad(g):
        g.values["c"] = Value("c", (1, 3, 5, 5))

    msg = _broken(bad)
    assert "'conv'" in msg and "[1, 3, 5, 5]" in msg and "[1, 3, 4, 4]" in msg


def test_verify_weight_must_be_constant():
    def bad(g):
        g.values["W"] = Value("W", (3, 2, 1, 1))
        g.inputs.append("W")

    assert "weight 'W' must be a float32 constant" in _broken(bad)


def test_verify_residual_flag_matches_inputs():
    def bad(g):
        g.layers[0] = g.layers[0].with_(epilogue=Epilogue(residual=True))

    assert "residual" in _broken(bad)


def test_verify_epilogue_only_on_conv_like():
    def bad(g):
        g.layers[1] = g.layers[1].with_(epilogue=Epilogue(act=Activation(Op.RELU)))

    assert "'relu'" in _broken(bad) and "epilogue" in _broken(bad)


def test_verify_attrs_type_and_dtype_and_outputs():
    def attrs(g):
        g.layers[0] = g.layers[0].with_(attrs=NoAttrs())

    def dtype(g):
        g.values["B"] = Value("B", (3,), "float32", np.zeros(3, np.float64))

    def output(g):
        g.outputs = ["zzz"]

    assert "Conv2dAttrs" in _broken(attrs)
    assert "'B'" in _broken(dtype)
    assert "graph output 'zzz'" in _broken(output)


# ---- shape inference ----


def test_infer_shapes_rules():
    b = GraphBuilder()
    b.input("x", 1, 3, 7, 7)
    b.input("m", 2, 1, 4, 5)
    b.input("v", 5)
    g = b.g

    def shape(op, ins, attrs=None):
        return infer_shapes(Layer(op, "l", tuple(ins), ("o",), attrs or NoAttrs()), g)[0]

    assert shape(Op.MAXPOOL, ["x"], PoolAttrs((3, 3), (2, 2), ceil_mode=True)) == (1, 3, 3, 3)
    assert shape(Op.MAXPOOL, ["x"], PoolAttrs((2, 2), (2, 2), ceil_mode=True)) == (1, 3, 4, 4)
    assert shape(Op.MAXPOOL, ["x"], PoolAttrs((2, 2), (2, 2), (1, 1, 1, 1), ceil_mode=True)) == (
        1, 3, 4, 4,
    )  # fmt: skip  # a window starting in the end padding is dropped
    assert shape(Op.MATMUL, ["m", "v"]) == (2, 1, 4)
    with pytest.raises(ShapeError, match="do not broadcast"):
        shape(Op.ADD, ["x", "v"])
    assert shape(Op.RESIZE, ["x"], ResizeAttrs("linear", scales=(1.5, 0.5))) == (1, 3, 10, 3)


# ---- interpreter vs naive loops ----


def _naive_conv(x, w, b, a):
    n, _, h, wd = x.shape
    f, cg, kh, kw = w.shape
    pt, pl, pb, pr = a.pads
    oh = (h + pt + pb - (kh - 1) * a.dilation[0] - 1) // a.stride[0] + 1
    ow = (wd + pl + pr - (kw - 1) * a.dilation[1] - 1) // a.stride[1] + 1
    y = np.zeros((n, f, oh, ow))
    fg = f // a.groups
    for o in range(f):
        grp = o // fg
        for i in range(oh):
            for j in range(ow):
                acc = b[o]
                for ci in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            r = i * a.stride[0] - pt + u * a.dilation[0]
                            s = j * a.stride[1] - pl + v * a.dilation[1]
                            if 0 <= r < h and 0 <= s < wd:
                                acc += x[0, grp * cg + ci, r, s] * w[o, ci, u, v]
                y[0, o, i, j] = acc
    return y


def test_conv2d_against_naive_loops():
    a = Conv2dAttrs((3, 2), (2, 1), (2, 0, 1, 1), (1, 2), 2)
    x, w, b = rand(1, 4, 7, 6), rand(6, 2, 3, 2, seed=1), rand(6, seed=2)
    np.testing.assert_allclose(conv2d(x, w, b, a), _naive_conv(x, w, b, a), rtol=1e-5, atol=1e-5)


def test_conv_transpose2d_against_naive_scatter():
    a = ConvTranspose2dAttrs((3, 2), (2, 3), (1, 0, 2, 1), (2, 1), 2, (1, 2))
    x, w, b = rand(1, 4, 3, 4), rand(4, 3, 3, 2, seed=1), rand(6, seed=2)
    got = conv_transpose2d(x, w, b, a)
    _, c, h, wd = x.shape
    fg, kh, kw = w.shape[1:]
    cg = c // a.groups
    full = np.zeros((1, 6, 2 * (h - 1) + 2 * (kh - 1) + 1 + 1, 3 * (wd - 1) + (kw - 1) + 1 + 2))
    for ci in range(c):
        grp = ci // cg
        for j in range(fg):
            for i in range(h):
                for k in range(wd):
                    for u in range(kh):
                        for v in range(kw):
                            full[0, grp * fg + j, i * 2 + u * 2, k * 3 + v] += (
                                x[0, ci, i, k] * w[ci, j, u, v]
                            )
    want = full[:, :, 1 : full.shape[2] - 2, 0 : full.shape[3] - 1] + b.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cip", [False, True])
def test_avgpool_against_naive_windows(cip: bool):
    a = PoolAttrs((3, 3), (2, 2), (1, 0, 1, 1), (1, 1), ceil_mode=True, count_include_pad=cip)
    x = rand(1, 1, 6, 7)
    got = avgpool(x, a)
    h, w = 6, 7
    for i in range(got.shape[2]):
        for j in range(got.shape[3]):
            r0, c0 = i * 2 - 1, j * 2
            rows = [r for r in range(r0, r0 + 3)]
            cols = [c for c in range(c0, c0 + 3)]
            vals = [x[0, 0, r, c] for r in rows for c in cols if 0 <= r < h and 0 <= c < w]
            # with count_include_pad the divisor counts taps inside the declared pads only
            inside = [(r, c) for r in rows for c in cols if -1 <= r < h + 1 and 0 <= c < w + 1]
            div = len(inside) if cip else len(vals)
            assert got[0, 0, i, j] == pytest.approx(sum(vals) / div, rel=1e-5)


def test_run_graph_checks_feeds():
    g = _small()
    with pytest.raises(ShapeError, match="missing input 'x'"):
        run_graph(g, {})
    with pytest.raises(ShapeError, match="expects"):
        run_graph(g, {"x": np.zeros((1, 2, 3, 3), np.float32)})
    out = run_graph(g, {"x": rand(1, 2, 4, 4)}, keep_all=True)
    assert {"x", "c", "y", "W", "B"} <= set(out)
