"""OpenCL data-movement kernels (CONCAT, SPLIT, SLICE, TRANSPOSE, PAD, RESIZE) on the OpenCL
device here (PoCL in CI), on every data-movement case of the host tier against the same numpy /
ONNX Runtime references, and a subset with fp16 storage. Each test asserts the OpenCL kernel
ran. (The host tier's reduction cases run in test_cl_reduce.py.)"""

from __future__ import annotations

import opencl_support as S
import pytest
import test_kernels_datamove as DM

H = S.H
REDUCTION_PREFIXES = ("softmax_", "mean_", "sum_", "max_")
CASES = [name for name in DM.CASES if not name.startswith(REDUCTION_PREFIXES)]
FP16_CASES = (
    "concat_ch", "split_last3", "slice_steps", "transpose_nhwc", "pad_reflect", "pad_negative",
    "resize_nearest_x2_half", "resize_linear_x2_half",
)  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_data_movement(name: str) -> None:
    layer, graph, feeds, refs = DM.CASES[name]()
    kernel = S.lower(layer, graph)
    H.expect_kernel(kernel, "opencl", DM._family(layer))
    outs = S.run(layer, graph, feeds)
    assert len(outs) == len(refs)
    for i, (y, ref) in enumerate(zip(outs, refs, strict=True)):
        S.check(y, ref, what=f"{name} output {i}")


@pytest.mark.parametrize("name", FP16_CASES)
def test_data_movement_fp16(name: str) -> None:
    layer, graph, feeds, refs = DM.CASES[name]()
    outs = S.run(layer, graph, feeds, fp16=True)
    for i, (y, ref) in enumerate(zip(outs, refs, strict=True)):
        S.check(y, ref, fp16=True, what=f"{name} output {i}")


@pytest.mark.parametrize(
    "build",
    [
        # a part narrower than a float4 between wider ones; a concat of one part
        lambda: DM.concat_case([(2, 5, 3), (2, 1, 3), (2, 6, 3)], 1),
        lambda: DM.concat_case([(3, 4, 5)], 2),
        # a slice/transpose whose inner run is strided
        lambda: DM.slice_case((4, 7, 18), [slice(None), slice(1, 6), slice(17, None, -2)]),
        lambda: DM.transpose_case((3, 10, 9), (2, 0, 1)),
        # a pad whose last dim is all padding on the left and cropped on the right
        lambda: DM.pad_case((2, 3, 9), [1, 0, 5, 0, 2, -3], "edge"),
        lambda: DM.pad_case((1, 4, 2), [0, 2, 3, 0, 3, 3], "reflect"),
    ],
    ids=["concat_narrow_part", "concat_one_part", "slice_neg_step_inner", "transpose_inner_strided",
         "pad_edge_crop", "pad_reflect_short"],
)  # fmt: skip
def test_data_movement_edges(build) -> None:
    layer, graph, feeds, refs = build()
    H.expect_kernel(S.lower(layer, graph), "opencl", DM._family(layer))
    outs = S.run(layer, graph, feeds)
    for y, ref in zip(outs, refs, strict=True):
        S.check(y, ref)
