"""OpenCL pooling kernels on the OpenCL device here (PoCL in CI), on the host tier's cases
against ONNX Runtime: max/avg pools with pads, ceil_mode, count_include_pad, dilation, strides,
batch and odd sizes; global pools; a fused activation; a subset with fp16 storage. Each test
asserts the OpenCL kernel ran."""

from __future__ import annotations

import numpy as np
import opencl_support as S
import pytest
import test_kernels_pool as PL

from npas.ir.attrs import Epilogue
from npas.ir.ops import Op

H = S.H
FP16_POOLS = ("max3x3s2p1_stem", "avg3x3s2_ceil_incl", "avg3x2_d2_asym_incl")


@pytest.mark.parametrize("name", list(PL.POOLS))
def test_pool(name: str) -> None:
    layer, graph, x, ref = PL._pool_case(name)
    info = H.expect_kernel(S.lower(layer, graph), "opencl", layer.op.value)
    assert (info["kernel"], info["stride"], info["dilation"]) == (
        layer.attrs.kernel, layer.attrs.stride, layer.attrs.dilation,
    )  # fmt: skip
    (y,) = S.run(layer, graph, [x])
    S.check(y, ref, what=name)


@pytest.mark.parametrize("name", FP16_POOLS)
def test_pool_fp16(name: str) -> None:
    layer, graph, x, ref = PL._pool_case(name)
    (y,) = S.run(layer, graph, [x], fp16=True)
    S.check(y, ref, fp16=True, what=name)


@pytest.mark.parametrize("act", ["relu", "hswish"])
def test_pool_fused_activation(act: str) -> None:
    layer, graph, x, ref = PL._pool_case("avg3x3s2_ceil_excl")
    activation, act_ref = H.ACTIVATIONS[act]
    layer = layer.with_(epilogue=Epilogue(act=activation))
    info = H.expect_kernel(S.lower(layer, graph), "opencl", "avgpool")
    assert info["epilogue"] == (act,)
    (y,) = S.run(layer, graph, [x])
    S.check(y, act_ref(ref.astype(np.float64)))


@pytest.mark.parametrize(("op", "shape"), PL.GLOBALS, ids=lambda v: str(v))
def test_global_pool(op: Op, shape: tuple[int, ...]) -> None:
    layer, graph, x, ref = PL._global_case(op, shape)
    H.expect_kernel(S.lower(layer, graph), "opencl", op.value.replace("_", ""))
    (y,) = S.run(layer, graph, [x])
    S.check(y, ref)


@pytest.mark.parametrize(
    ("op", "shape"),
    # Planes longer than one pass of the 64-wide group (float4 body plus scalar tail), and a
    # plane shorter than one float4.
    [(Op.GLOBAL_AVGPOOL, (1, 6, 19, 23)), (Op.GLOBAL_MAXPOOL, (2, 3, 17, 17)),
     (Op.GLOBAL_AVGPOOL, (3, 2, 1, 3))],
    ids=lambda v: str(v),
)  # fmt: skip
def test_global_pool_long_and_short_planes(op: Op, shape: tuple[int, ...]) -> None:
    layer, graph, x, ref = PL._global_case(op, shape)
    (y,) = S.run(layer, graph, [x])
    S.check(y, ref)


def test_global_pool_fp16() -> None:
    layer, graph, x, ref = PL._global_case(*PL.GLOBALS[0])
    (y,) = S.run(layer, graph, [x], fp16=True)
    S.check(y, ref, fp16=True)
