"""Models written the way other exporters (tf2onnx, older PyTorch, hand-written tools) write
them: weights in Constant nodes, opset-11 Clip with min/max inputs, decomposed hard-swish,
squeeze-excite with ReduceMean, BatchNormalization with no conv before it, Resize by scales and by
sizes. All must load, run through the pipeline, and match ONNX Runtime."""

# ruff: noqa: E501 - expected IR text and node lists read best one item per line

from __future__ import annotations

import numpy as np
from ir_helpers import check, model, rand
from onnx import helper, numpy_helper

from npas.frontend import load_onnx
from npas.ir import Op
from npas.passes import run_pipeline


def const(name: str, value: np.ndarray) -> object:
    return helper.make_node(
        "Constant", [], [name], name=f"const_{name}", value=numpy_helper.from_array(value, name)
    )


def test_tf2onnx_style_block():
    c = 8
    nodes = [
        const("w0", rand(c, 3, 3, 3, seed=1)),
        const("b0", rand(c, seed=2)),
        const("three", np.array(3.0, np.float32)),
        const("zero", np.array(0.0, np.float32)),
        const("six", np.array(6.0, np.float32)),
        const("w_r", rand(4, c, 1, 1, seed=3)),
        const("b_r", rand(4, seed=4)),
        const("w_e", rand(c, 4, 1, 1, seed=5)),
        const("b_e", rand(c, seed=6)),
        const("scales", np.array([1, 1, 2, 2], np.float32)),
        const("roi", np.zeros(0, np.float32)),
        const("no_scales", np.zeros(0, np.float32)),  # opset 11: scales present but empty
        const("sizes", np.array([1, c, 5, 7], np.int64)),
        const("bn_s", rand(c, seed=7, lo=0.5, hi=1.5)),
        const("bn_b", rand(c, seed=8)),
        const("bn_m", rand(c, seed=9)),
        const("bn_v", rand(c, seed=10, lo=0.5, hi=2)),
        const("fc_w", rand(c, 3, seed=11)),
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], name="stem", pads=[1, 1, 1, 1], strides=[2, 2]),
        # hard-swish: x * clip(x + 3, 0, 6) / 6 with opset-11 Clip bounds as inputs
        helper.make_node("Add", ["c0", "three"], ["h1"], name="hs_add"),
        helper.make_node("Clip", ["h1", "zero", "six"], ["h2"], name="hs_clip"),
        helper.make_node("Mul", ["c0", "h2"], ["h3"], name="hs_mul"),
        helper.make_node("Div", ["h3", "six"], ["h"], name="hs_div"),
        # squeeze-excite with ReduceMean (axes attribute at opset 11)
        helper.make_node("ReduceMean", ["h"], ["s0"], name="se_mean", axes=[2, 3], keepdims=1),
        helper.make_node("Conv", ["s0", "w_r", "b_r"], ["s1"], name="se_reduce"),
        helper.make_node("Relu", ["s1"], ["s2"], name="se_relu"),
        helper.make_node("Conv", ["s2", "w_e", "b_e"], ["s3"], name="se_expand"),
        helper.make_node("HardSigmoid", ["s3"], ["s4"], name="se_gate", alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["h", "s4"], ["se"], name="se_mul"),
        # BatchNormalization after an Add: no conv to fold into
        helper.make_node("Add", ["se", "h"], ["sum"], name="skip"),
        helper.make_node("BatchNormalization", ["sum", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn"),
        # Resize by scales (opset 11: roi input present) and by sizes
        helper.make_node("Resize", ["bn", "roi", "scales"], ["up"], name="up", mode="linear", coordinate_transformation_mode="align_corners"),
        helper.make_node("Resize", ["up", "roi", "no_scales", "sizes"], ["down"], name="down", mode="nearest"),
        # head
        helper.make_node("GlobalAveragePool", ["down"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node("MatMul", ["flat", "fc_w"], ["y"], name="fc"),
    ]  # fmt: skip
    m = model(nodes, {"x": ["N", 3, 8, 8]}, ["y", "se"], opset=11)
    g = check(m, {"x": rand(1, 3, 8, 8, lo=-3, hi=3)})
    out = run_pipeline(load_onnx(m), verify=True)
    ops = [layer.op for layer in out.layers]
    assert ops.count(Op.CHANNEL_AFFINE) == 1  # nothing to fold it into
    stem = out.layer("stem")
    assert stem.epilogue.act is not None and stem.epilogue.act.op is Op.HARDSWISH
    assert out.layer("se_reduce").epilogue.act.op is Op.RELU
    assert out.layer("se_expand").epilogue.act.op is Op.HARDSIGMOID
    assert out.layer("se_mean").op is Op.GLOBAL_AVGPOOL
    assert ops.count(Op.RESIZE) == 2 and Op.DENSE in ops
    assert len(g.layers) > len(out.layers)
