"""OpenCL softmax and reductions on the OpenCL device here (PoCL in CI), on the host tier's
cases (test_kernels_datamove.py) against the same numpy references, plus rows longer than one
pass of a work-group (float4 body and scalar tail), reductions whose axes do not collapse to
[outer, R, inner] (the strided "ref" kernel), and a subset with fp16 storage. Each test asserts
the OpenCL kernel ran."""

from __future__ import annotations

import opencl_support as S
import pytest
import test_cl_datamove as CLDM
import test_kernels_datamove as DM

from npas.codegen.naming import parse_kernel_name
from npas.ir.ops import Op

H = S.H
CASES = [name for name in DM.CASES if name.startswith(CLDM.REDUCTION_PREFIXES)]
EXTRA = {
    "softmax_long_row": lambda: DM.softmax_case((2, 1037), 1),
    "softmax_axis0": lambda: DM.softmax_case((6, 2, 3), 0),
    "softmax_inner_tail": lambda: DM.softmax_case((3, 4, 6), 1),
    "sum_long_row": lambda: DM.reduce_case(Op.REDUCE_SUM, (3, 1031), [1]),
    "mean_rows_neg_axis": lambda: DM.reduce_case(Op.REDUCE_MEAN, (4, 3, 70), [-1], False),
    "max_mid": lambda: DM.reduce_case(Op.REDUCE_MAX, (2, 9, 5, 7), [1, 2]),
}
FP16_CASES = ("softmax_last", "softmax_mid", "mean_hw", "max_first", "sum_long_row")
REF_CASES = {
    **DM.REF_ONLY,
    "max_outer_inner": lambda: DM.reduce_case(Op.REDUCE_MAX, (3, 5, 4, 2), [0, 3], False),
}


def _case(name: str):
    return {**DM.CASES, **EXTRA}[name]()


def _assert_family(kernel, layer, scheme: str) -> None:
    info = parse_kernel_name(kernel.kernel)
    assert (info["isa"], info["scheme"]) == ("opencl", scheme), kernel.kernel
    assert info["family"] == DM._family(layer), kernel.kernel


@pytest.mark.parametrize("name", [*CASES, *EXTRA])
def test_reduction(name: str) -> None:
    layer, graph, feeds, refs = _case(name)
    _assert_family(S.lower(layer, graph), layer, "dense")
    (y,) = S.run(layer, graph, feeds)
    S.check(y, refs[0], what=name)


@pytest.mark.parametrize("name", FP16_CASES)
def test_reduction_fp16(name: str) -> None:
    layer, graph, feeds, refs = _case(name)
    (y,) = S.run(layer, graph, feeds, fp16=True)
    S.check(y, refs[0], fp16=True, what=name)


@pytest.mark.parametrize("name", list(REF_CASES))
def test_reduce_without_row_form_uses_strided_kernel(name: str) -> None:
    layer, graph, feeds, refs = REF_CASES[name]()
    _assert_family(S.lower(layer, graph), layer, "ref")
    (y,) = S.run(layer, graph, feeds)
    S.check(y, refs[0], what=name)
