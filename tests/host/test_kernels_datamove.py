"""Host data-movement kernels (CONCAT, SPLIT, SLICE, TRANSPOSE, PAD, RESIZE) and reductions
(SOFTMAX, REDUCE_*), against numpy and, for Resize, ONNX Runtime."""

from __future__ import annotations

import kernel_harness as H
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from npas.ir.attrs import (
    AxisAttrs,
    PadAttrs,
    ReduceAttrs,
    ResizeAttrs,
    SliceAttrs,
    SplitAttrs,
    TransposeAttrs,
)
from npas.ir.ops import Op

ISAS = [*H.vector_isas(), "scalar"]
RNG = np.random.default_rng(7)


def _x(shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(hash(shape) % 2**32).standard_normal(shape).astype(np.float32)


# Each case: () -> (layer, graph, feeds, refs)


def concat_case(shapes, axis, const=None):
    arrays = [_x(s) for s in shapes]
    ref = np.concatenate(arrays, axis)
    ins = [(f"x{i}", a if i == const else a.shape) for i, a in enumerate(arrays)]
    layer, graph = H.one_layer_graph(Op.CONCAT, ins, [("y", ref.shape)], AxisAttrs(axis))
    return layer, graph, [a for i, a in enumerate(arrays) if i != const], [ref]


def split_case(shape, axis, sizes):
    x = _x(shape)
    refs = np.split(x, np.cumsum(sizes)[:-1], axis)
    layer, graph = H.one_layer_graph(
        Op.SPLIT, [("x", shape)], [(f"y{i}", r.shape) for i, r in enumerate(refs)],
        SplitAttrs(axis, tuple(sizes)),
    )  # fmt: skip
    return layer, graph, [x], refs


def slice_case(shape, slices):
    x = _x(shape)
    ref = x[tuple(slices)]
    starts, steps = [], []
    for d, sl in enumerate(slices):
        start, _, step = sl.indices(shape[d])
        starts.append(start)
        steps.append(step)
    layer, graph = H.one_layer_graph(
        Op.SLICE, [("x", shape)], [("y", ref.shape)], SliceAttrs(tuple(starts), tuple(steps))
    )
    return layer, graph, [x], [ref]


def transpose_case(shape, perm):
    x = _x(shape)
    ref = np.transpose(x, perm)
    layer, graph = H.one_layer_graph(
        Op.TRANSPOSE, [("x", shape)], [("y", ref.shape)], TransposeAttrs(tuple(perm))
    )
    return layer, graph, [x], [ref]


def pad_case(shape, pads, mode, value=0.0):
    x = _x(shape)
    rank = len(shape)
    width = [(pads[d], pads[d + rank]) for d in range(rank)]
    crop = tuple(
        slice(max(0, -b), shape[d] - max(0, -e)) for d, (b, e) in enumerate(width)
    )  # negative pads crop
    pos = [(max(0, b), max(0, e)) for b, e in width]
    kw = {"constant_values": value} if mode == "constant" else {}
    ref = np.pad(x[crop], pos, mode=mode, **kw)
    layer, graph = H.one_layer_graph(
        Op.PAD, [("x", shape)], [("y", ref.shape)], PadAttrs(tuple(pads), mode, value)
    )
    return layer, graph, [x], [ref]


def softmax_case(shape, axis):
    x = _x(shape) * 5
    e = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    layer, graph = H.one_layer_graph(Op.SOFTMAX, [("x", shape)], [("y", shape)], AxisAttrs(axis))
    return layer, graph, [x], [ref]


def reduce_case(op, shape, axes, keepdims=True):
    x = _x(shape)
    fn = {Op.REDUCE_MEAN: np.mean, Op.REDUCE_MAX: np.max, Op.REDUCE_SUM: np.sum}[op]
    ref = fn(x.astype(np.float64), axis=tuple(axes), keepdims=keepdims)
    layer, graph = H.one_layer_graph(
        op, [("x", shape)], [("y", ref.shape)], ReduceAttrs(tuple(axes), keepdims)
    )
    return layer, graph, [x], [np.asarray(ref)]


def resize_case(shape, mode, coord, nearest="round_prefer_floor", scales=None, sizes=None):
    x = _x(shape)
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array([1, 1, *scales], np.float32), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.array([*shape[:2], *sizes], np.int64), "sizes"))
        ins = ["x", "roi", "", "sizes"]
    node = helper.make_node(
        "Resize", ins, ["y"], mode=mode, coordinate_transformation_mode=coord, nearest_mode=nearest
    )
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    if coord == "tf_half_pixel_for_nearest":
        # ORT no longer runs this (pre-opset-13) mode: the spec's formula, with nearest "ceil".
        oh, ow = int(shape[2] * scales[0]), int(shape[3] * scales[1])
        iy = np.minimum(np.ceil((np.arange(oh) + 0.5) / scales[0]), shape[2] - 1).astype(int)
        ix = np.minimum(np.ceil((np.arange(ow) + 0.5) / scales[1]), shape[3] - 1).astype(int)
        ref = x[:, :, iy][:, :, :, ix]
    else:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ref = sess.run(None, {"x": x})[0]
    if scales is None:
        scales = (ref.shape[2] / shape[2], ref.shape[3] / shape[3])
    layer, graph = H.one_layer_graph(
        Op.RESIZE, [("x", shape)], [("y", ref.shape)],
        ResizeAttrs(mode, coord, nearest, tuple(float(s) for s in scales)),
    )  # fmt: skip
    return layer, graph, [x], [ref]


S = slice
CASES = {
    "concat_ch": lambda: concat_case([(2, 3, 4, 5), (2, 5, 4, 5), (2, 1, 4, 5)], 1),
    "concat_last": lambda: concat_case([(3, 7), (3, 2)], 1),
    "concat_axis0_const": lambda: concat_case([(2, 6), (1, 6)], 0, const=1),
    "concat_big": lambda: concat_case([(1, 64, 28, 28), (1, 32, 28, 28)], 1),
    "split_ch": lambda: split_case((2, 10, 3, 3), 1, [3, 7]),
    "split_last3": lambda: split_case((4, 9), 1, [2, 3, 4]),
    "slice_ch_range": lambda: slice_case((2, 8, 5, 6), [S(None), S(2, 7), S(None), S(None)]),
    "slice_steps": lambda: slice_case((3, 9, 10), [S(1, 3), S(0, 9, 2), S(8, 1, -3)]),
    "slice_inner": lambda: slice_case((4, 20), [S(None), S(3, 17)]),
    "transpose_nhwc": lambda: transpose_case((2, 5, 6, 7), (0, 2, 3, 1)),
    "transpose_shuffle": lambda: transpose_case((1, 2, 6, 4, 4), (0, 2, 1, 3, 4)),
    "transpose_2d": lambda: transpose_case((33, 17), (1, 0)),
    "pad_const": lambda: pad_case((1, 3, 5, 6), [0, 0, 1, 2, 0, 0, 3, 1], "constant", 1.5),
    "pad_reflect": lambda: pad_case((2, 2, 5, 6), [0, 0, 2, 3, 0, 0, 1, 4], "reflect"),
    "pad_edge": lambda: pad_case((1, 2, 4, 5), [0, 1, 2, 3, 0, 0, 1, 2], "edge"),
    "pad_negative": lambda: pad_case((1, 2, 6, 7), [0, 0, -1, 2, 0, 0, 1, -2], "constant"),
    "softmax_last": lambda: softmax_case((3, 1000), 1),
    "softmax_mid": lambda: softmax_case((2, 21, 5, 7), 1),
    "softmax_small": lambda: softmax_case((4, 3), 1),
    "mean_hw": lambda: reduce_case(Op.REDUCE_MEAN, (2, 16, 7, 9), [2, 3]),
    "sum_ch": lambda: reduce_case(Op.REDUCE_SUM, (2, 16, 7, 9), [1], False),
    "max_last": lambda: reduce_case(Op.REDUCE_MAX, (5, 37), [1]),
    "max_first": lambda: reduce_case(Op.REDUCE_MAX, (6, 5, 4), [0]),
    "mean_all": lambda: reduce_case(Op.REDUCE_MEAN, (3, 4, 5), [0, 1, 2], False),
}
# Reductions whose axes do not collapse to [outer, R, inner]: the reference serves on purpose.
REF_ONLY = {
    "sum_noncontig": lambda: reduce_case(Op.REDUCE_SUM, (3, 4, 5, 6), [0, 2]),
}
RESIZE = {
    "nearest_x2_asym": ((1, 3, 5, 7), "nearest", "asymmetric", "floor", (2.0, 2.0)),
    "nearest_x2_half": ((2, 2, 5, 6), "nearest", "half_pixel", "round_prefer_floor", (2.0, 2.0)),
    "nearest_x0.5": ((1, 2, 8, 9), "nearest", "half_pixel", "round_prefer_ceil", (0.5, 0.5)),
    "nearest_tf": ((1, 2, 5, 6), "nearest", "tf_half_pixel_for_nearest", "ceil", (1.6, 2.5)),
    "nearest_align": ((1, 2, 5, 6), "nearest", "align_corners", "round_prefer_floor", None),
    "nearest_pyt": ((1, 2, 5, 6), "nearest", "pytorch_half_pixel", "floor", (1.7, 2.3)),
    "nearest_sym": ((1, 2, 5, 6), "nearest", "half_pixel_symmetric", "round_prefer_ceil", None),
    "linear_x2_half": ((1, 3, 6, 7), "linear", "half_pixel", "round_prefer_floor", (2.0, 2.0)),
    "linear_align": ((2, 2, 5, 6), "linear", "align_corners", "round_prefer_floor", None),
    "linear_asym": ((1, 2, 5, 6), "linear", "asymmetric", "round_prefer_floor", (1.5, 3.0)),
    "linear_pyt_down": ((1, 2, 9, 8), "linear", "pytorch_half_pixel", "floor", (0.5, 0.75)),
    "linear_sym": ((1, 2, 5, 6), "linear", "half_pixel_symmetric", "floor", (1.7, 0.6)),
    "linear_big": ((1, 32, 28, 28), "linear", "half_pixel", "floor", (2.0, 2.0)),
}
for _name, (_shape, _mode, _coord, _near, _scales) in RESIZE.items():
    _sizes = None if _scales is not None else (_shape[2] * 2 - 1, _shape[3] + 3)
    CASES[f"resize_{_name}"] = lambda a=(_shape, _mode, _coord, _near, _scales, _sizes): (
        resize_case(a[0], a[1], a[2], a[3], a[4], a[5])
    )


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for build in (*CASES.values(), *REF_ONLY.values()):
        layer, graph, _, _ = build()
        kernels += [H.lower(layer, graph, isa) for isa in ISAS]
    H.prebuild(kernels)


def _family(layer) -> str:
    if layer.op in (Op.PAD, Op.RESIZE):
        return layer.op.value + layer.attrs.mode
    return layer.op.value.replace("_", "")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(CASES))
def test_data_and_reduce(name: str, isa: str) -> None:
    layer, graph, feeds, refs = CASES[name]()
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, isa, _family(layer))
    for threads in (1, 2):
        outs = H.run(kernel, feeds, [r.shape for r in refs], threads)
        for y, ref in zip(outs, refs, strict=True):
            np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(REF_ONLY))
def test_reduce_reference_fallback(name: str, isa: str) -> None:
    layer, graph, feeds, refs = REF_ONLY[name]()
    kernel = H.lower(layer, graph, isa)
    H.expect_kernel(kernel, "scalar")
    (y,) = H.run(kernel, feeds, [refs[0].shape])
    np.testing.assert_allclose(y, refs[0], rtol=1e-6, atol=1e-6)
