"""NEON Winograd F(m, 3) conv kernels under qemu-aarch64 against numpy: the same template as the
host's, every NEON variant on edge shapes, and the per-layer choice on arm64."""

from __future__ import annotations

import arm64_support as A
import pytest
from test_kernels_winograd import EDGE, _build

from npas.codegen.host import winograd as wg
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import NEON

H = A.H
NEON_VARIANTS = [v for v in wg.WINOGRAD_VARIANTS if "neon" in v.isas]
SHAPES = ("odd_13x11_f20", "asym_pads_batch2", "nopad_9x16_res_relu")
# Chosen on arm64 (checked below), small enough for the emulator.
CHOSEN = dict(n=1, c=32, h=28, w=28, f=40, residual=True, act="relu")


def _params():
    return [
        pytest.param(v, name, id=f"{name}-f{v.param('m')}")
        for v in NEON_VARIANTS
        for name in SHAPES
    ]


@pytest.fixture(scope="module", autouse=True)
def _prebuild() -> None:
    kernels = []
    for v, name in (p.values for p in _params()):
        layer, graph, _, _ = _build(**EDGE[name])
        kernels.append(v.fill(layer, graph, NEON, v))
    layer, graph, _, _ = _build(**CHOSEN)
    kernels.append(A.lower(layer, graph))
    A.prebuild(kernels)


def test_both_tile_sizes_exist() -> None:
    assert sorted(int(v.param("m")) for v in NEON_VARIANTS) == [4, 6]


@pytest.mark.parametrize(("variant", "name"), _params())
def test_edge_shapes(variant, name: str) -> None:
    layer, graph, feeds, ref = _build(**EDGE[name])
    kernel = variant.fill(layer, graph, NEON, variant)
    info = H.expect_kernel(kernel, "neon", f"wino{variant.param('m')}conv")
    assert (info["mr"], info["nr"]) == (8, 12)
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True, threads=(1, 3))


def test_chosen_on_arm64() -> None:
    layer, graph, feeds, ref = _build(**CHOSEN)
    kernel = A.lower(layer, graph)
    info = H.expect_kernel(kernel, "neon")
    assert info["family"].startswith("wino"), kernel.kernel
    A.check(kernel, feeds, [ref], rtol=1e-4, atol=1e-4, scale_atol=True)


def test_small_layers_stay_direct_on_arm64() -> None:
    for shape in (dict(c=8, h=28, w=28, f=8), dict(c=128, h=4, w=4, f=128)):
        layer, graph, _, _ = _build(n=1, **shape)
        assert parse_kernel_name(A.lower(layer, graph).kernel)["family"] in ("conv", "iconv")
