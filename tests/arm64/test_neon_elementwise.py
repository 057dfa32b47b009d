"""NEON elementwise, pooling, data-movement and reduction kernels under qemu-aarch64, on the host
tier's cases (every unary op with its edge values, every binary broadcast form, channel
affine, max/avg pools with pads/ceil/dilation, global pools, concat/split/slice/transpose/pad/
resize, softmax and reductions). Each test asserts the NEON variant ran."""

from __future__ import annotations

import arm64_support as A
import numpy as np
import pytest
import test_kernels_datamove as DM
import test_kernels_elementwise as EW
import test_kernels_pool as PL

from npas.ir.ops import Op

H = A.H
UNARY_CASES = [(op, shape) for op in EW.UNARY for shape in EW.UNARY_SHAPES]


def _unary_id(case) -> str:
    op, shape = case
    return f"{op.value}-{'x'.join(map(str, shape))}"


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    graphs = [EW._unary_case(*c)[:2] for c in UNARY_CASES]
    graphs += [EW._build("binary", name)[:2] for name in EW.BINARY]
    graphs.append(EW._affine_case()[:2])
    graphs += [PL._pool_case(name)[:2] for name in PL.POOLS]
    graphs += [PL._global_case(*g)[:2] for g in PL.GLOBALS]
    graphs += [DM.CASES[name]()[:2] for name in DM.CASES]
    A.prebuild([A.lower(layer, graph) for layer, graph in graphs])


@pytest.mark.parametrize("case", UNARY_CASES, ids=_unary_id)
def test_unary(case) -> None:
    layer, graph, x, ref = EW._unary_case(*case)
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "neon", case[0].value.replace("_", ""))
    # ~1e-6 relative for the polynomial exp/log/tanh family; exact for the rest.
    A.check(kernel, [x], [ref], rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(EW.BINARY))
def test_binary(name: str) -> None:
    op, sa, sb, const, act, token = EW.BINARY[name]
    layer, graph, feeds, ref = EW._binary_case(op, sa, sb, const, act)
    kernel = A.lower(layer, graph)
    info = H.expect_kernel(kernel, "neon")
    if token:
        assert info["op"] == token
    A.check(kernel, feeds, [ref], rtol=2e-6, atol=1e-6)


def test_channel_affine() -> None:
    layer, graph, x, ref = EW._affine_case()
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "neon", "channelaffine")
    A.check(kernel, [x], [ref], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(PL.POOLS))
def test_pool(name: str) -> None:
    layer, graph, x, ref = PL._pool_case(name)
    kernel = A.lower(layer, graph)
    info = H.expect_kernel(kernel, "neon", layer.op.value)
    assert (info["mr"], info["nr"]) == (8, 8), kernel.kernel  # row-blocked: 8 rows x 2 vectors
    A.check(kernel, [x], [ref], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("op", "shape"), PL.GLOBALS, ids=lambda v: str(v))
def test_global_pool(op: Op, shape: tuple[int, ...]) -> None:
    layer, graph, x, ref = PL._global_case(op, shape)
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "neon", op.value.replace("_", ""))
    A.check(kernel, [x], [ref], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(DM.CASES))
def test_data_and_reduce(name: str) -> None:
    layer, graph, feeds, refs = DM.CASES[name]()
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "neon", DM._family(layer))
    A.check(kernel, feeds, refs, rtol=2e-6, atol=1e-6)


def test_reduce_without_vector_form_uses_reference() -> None:
    # A reduction whose axes do not collapse to [outer, R, inner] has no vector variant on
    # any ISA: the scalar reference, compiled for aarch64, serves it.
    layer, graph, feeds, refs = DM.REF_ONLY["sum_noncontig"]()
    kernel = A.lower(layer, graph)
    H.expect_kernel(kernel, "scalar")
    A.check(kernel, feeds, refs, rtol=1e-6, atol=1e-6, threads=(2,))


def test_scalar_reference_build_for_arm64() -> None:
    # NPAS_ISA=scalar on an arm64 build: reference kernels, compiled without NEON flags.
    layer, graph, x, ref = EW._unary_case(Op.SILU, EW.UNARY_SHAPES[1])
    kernel = A.lower(layer, graph, "scalar")
    H.expect_kernel(kernel, "scalar")
    A.check(kernel, [x], [np.asarray(ref)], rtol=2e-6, atol=1e-7)
