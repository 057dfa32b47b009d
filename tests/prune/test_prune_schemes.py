"""The pruning schemes as numpy definitions: projection reaches the rate, detection finds the
structure (and only its own), packed storage round-trips, on regular and edge shapes."""

from __future__ import annotations

import numpy as np
import pytest

from npas.errors import NpasError
from npas.passes.prune import (
    MIN_RATE,
    NPAS_RATES,
    SCHEMES,
    detect,
    get_scheme,
    pack,
    project,
    rate_of,
    stats,
)

STRUCTURED = ("filter", "pattern", "block-punched", "block")
CONV3 = (48, 40, 3, 3)
CONV1 = (48, 40, 1, 1)
FC = (24, 72)


def weights(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Heavy-tailed like trained weights, never exactly zero."""
    rng = np.random.default_rng(seed)
    w = rng.standard_t(4, size=shape).astype(np.float32)
    w[w == 0] = 1e-3
    return w


def granule(scheme: str, sp) -> int:
    """Weights one keep/remove decision of the scheme moves."""
    return {
        "unstructured": 1,
        "filter": int(np.prod(sp.mask.shape[1:])),
        "pattern": sp.param("entries", 4),
        "block-punched": sp.param("bf", 1) * sp.param("bc", 1),
        "block": sp.param("bf", 1),
    }[scheme]


def shapes_for(scheme: str) -> list[tuple[int, ...]]:
    return {
        "filter": [CONV3, CONV1, FC],
        "pattern": [CONV3],
        "block-punched": [CONV3, CONV1, FC],
        "block": [CONV1, FC],
        "unstructured": [CONV3, CONV1, FC],
    }[scheme]


CASES = [(s, shape) for s in SCHEMES for shape in shapes_for(s)]


@pytest.mark.parametrize(("scheme", "shape"), CASES)
@pytest.mark.parametrize("rate", NPAS_RATES[1:])
def test_projection_reaches_rate_and_detects_itself(scheme, shape, rate) -> None:
    w = weights(shape)
    sp = project(w, scheme, rate)
    assert sp.scheme == scheme and sp.mask is not None and sp.mask.shape == w.shape
    kept = np.count_nonzero(sp.mask)
    if scheme == "pattern" and rate <= 9 / 4:
        assert rate_of(sp.mask) == pytest.approx(9 / 4)  # the pattern alone: 4 of 9
    else:
        assert abs(kept - w.size / rate) <= granule(scheme, sp) / 2, rate_of(sp.mask)
    pruned = np.where(sp.mask, w, 0)
    found = detect(pruned)
    assert found is not None and found.scheme == scheme
    assert found.params == sp.params
    assert np.array_equal(found.mask, sp.mask)


@pytest.mark.parametrize(("scheme", "shape"), CASES)
def test_detection_rejects_other_schemes(scheme, shape) -> None:
    w = weights(shape, seed=1)
    pruned = np.where(project(w, scheme, 3.0).mask, w, 0)
    for other in STRUCTURED:
        if other == scheme:
            continue
        if (scheme, other) == ("block-punched", "block") and shape[2:] in ((), (1, 1)):
            # on a 1x1 layer a bf x bc block-punched mask is also a block mask (columns go in
            # groups of bc); detect() names the stronger structure, block-punched
            continue
        assert SCHEMES[other].detect(pruned) is None, (scheme, other)


@pytest.mark.parametrize("shape", [CONV3, CONV1, FC, (16, 1, 3, 3)])
def test_dense_weights_with_a_few_zeros_stay_dense(shape) -> None:
    w = weights(shape, seed=2)
    rng = np.random.default_rng(3)
    w.reshape(-1)[rng.choice(w.size, size=max(1, w.size // 100), replace=False)] = 0
    w[0] = 0  # a dead filter too
    assert rate_of(w != 0) < MIN_RATE
    assert detect(w) is None
    for scheme in SCHEMES.values():
        assert scheme.detect(w) is None


@pytest.mark.parametrize(("scheme", "shape"), CASES)
@pytest.mark.parametrize("rate", [2.0, 7.0])
def test_pack_roundtrips_to_masked_weights(scheme, shape, rate) -> None:
    w = weights(shape, seed=4)
    sp = project(w, scheme, rate)
    packed = pack(w, sp)
    assert np.array_equal(packed.unpack(), np.where(sp.mask, w, 0).astype(np.float32))


EDGE = [
    ("block-punched", (13, 7, 3, 3), {}),  # F, C not multiples of 8x4: remainder blocks
    ("block-punched", (13, 7, 1, 1), {}),
    ("block-punched", (21, 50), {"bf": 4, "bc": 8}),  # FC, other block size
    ("block-punched", (5, 3, 5, 5), {}),  # a block larger than the layer; 5x5 kernel
    ("block", (13, 7, 1, 1), {}),
    ("block", (21, 50), {"bf": 4}),
    ("pattern", (3, 5, 3, 3), {}),
    ("pattern", (16, 1, 3, 3), {}),  # depthwise
    ("pattern", (24, 16, 3, 3), {"entries": 5}),
    ("pattern", (24, 16, 3, 3), {"library_size": 4, "entries": 3}),
    ("filter", (7, 5, 5, 5), {}),
    ("filter", (16, 1, 3, 3), {}),
    ("unstructured", (3, 2, 7, 7), {}),
]


@pytest.mark.parametrize(("scheme", "shape", "params"), EDGE)
def test_edge_shapes(scheme, shape, params) -> None:
    w = weights(shape, seed=5)
    sp = project(w, scheme, 3.0, **params)
    pruned = np.where(sp.mask, w, 0)
    found = SCHEMES[scheme].detect(pruned)
    assert found is not None and np.array_equal(found.mask, sp.mask)
    assert np.array_equal(pack(w, sp).unpack(), pruned)
    assert rate_of(sp.mask) >= MIN_RATE


def test_block_punched_blocks_keep_positions_together() -> None:
    w = weights((20, 10, 3, 3), seed=6)
    sp = project(w, "block-punched", 3.0, bf=8, bc=4)
    m = sp.mask
    for f0, f1 in ((0, 8), (8, 16), (16, 20)):
        for c0, c1 in ((0, 4), (4, 8), (8, 10)):
            block = m[f0:f1, c0:c1].reshape(f1 - f0, c1 - c0, 9)
            assert (block == block[0, 0]).all()  # one keep/remove per position and block
    assert stats(sp)["blocks"] == 9


def test_block_keeps_columns_per_row_block() -> None:
    w = weights((20, 30), seed=7)
    sp = project(w, "block", 4.0, bf=8)
    for f0, f1 in ((0, 8), (8, 16), (16, 20)):
        rows = sp.mask[f0:f1]
        assert (rows == rows[0]).all()
    assert stats(sp)["blocks"] == 3


def test_pattern_structure_and_rate_split() -> None:
    w = weights((32, 24, 3, 3), seed=8)
    sp = project(w, "pattern", 6.0)
    assert sp.param("entries") == 4
    library = sp.param("library")
    assert len(library) == 8 and all(4 in p and len(p) == 4 for p in library)
    kernels = sp.mask.reshape(-1, 9)
    live = kernels.any(axis=1)
    assert all(tuple(np.flatnonzero(k)) in library for k in kernels[live])
    # 6x = 2.25x (4 of 9 entries) x 2.67x (connectivity keeps 3/8 of the kernels)
    assert live.mean() == pytest.approx(9 / 4 / 6, abs=1 / live.size)
    st = stats(sp)
    assert sum(h["kernels"] for h in st["pattern_histogram"]) == st["kernels_kept"]
    assert [h["pattern"] for h in st["pattern_histogram"]] == [list(p) for p in library]
    counts = [h["kernels"] for h in st["pattern_histogram"]]
    assert counts == sorted(counts, reverse=True)


def test_pattern_library_is_the_most_frequent_patterns() -> None:
    # every kernel's largest entries are one of two shapes: those two form the library
    rng = np.random.default_rng(9)
    w = rng.uniform(0.01, 0.1, (16, 16, 9)).astype(np.float32)
    a, b = [1, 3, 4, 5], [4, 6, 7, 8]
    w[:12, :, a] += 1.0
    w[12:, :, b] += 1.0
    sp = project(w.reshape(16, 16, 3, 3), "pattern", 2.25, library_size=8)
    assert sp.param("library") == (tuple(a), tuple(b))


def test_pattern_explicit_library() -> None:
    library = [[0, 4, 8], [2, 4, 6], [1, 4, 7]]
    w = weights((8, 8, 3, 3), seed=10)
    sp = project(w, "pattern", 3.0, library=library)
    assert sp.param("entries") == 3
    assert set(sp.param("library")) <= {tuple(p) for p in library}
    assert rate_of(sp.mask) == pytest.approx(3.0)


def test_five_entry_library_detected() -> None:
    w = weights((32, 16, 3, 3), seed=11)
    sp = project(w, "pattern", 5.0, entries=5)
    found = detect(np.where(sp.mask, w, 0))
    assert found is not None and found.scheme == "pattern" and found.param("entries") == 5
    assert found.params == sp.params
    assert pack(w, sp).weights.shape[1] == 5


@pytest.mark.parametrize("scheme", ["pattern", "block-punched", "filter", "block"])
def test_detection_tolerates_accidental_zeros(scheme) -> None:
    """A kept weight that is exactly zero (an fp16 round trip, a weight that crossed zero)
    does not turn a structured layer into an unstructured one."""
    shape = CONV1 if scheme == "block" else CONV3
    w = weights(shape, seed=12)
    sp = project(w, scheme, 3.0)
    pruned = np.where(sp.mask, w, 0)
    kept = np.flatnonzero(sp.mask)
    rng = np.random.default_rng(13)
    pruned.reshape(-1)[rng.choice(kept, size=kept.size // 200, replace=False)] = 0
    found = detect(pruned)
    assert found is not None and found.scheme == scheme
    if scheme != "pattern":
        assert np.array_equal(found.mask, sp.mask)
        return
    # a kernel that lost a weight may fit two library patterns: either is a right answer
    assert set(found.param("library")) == set(sp.param("library"))
    assert not (pruned != 0)[~found.mask].any()
    assert rate_of(found.mask) == rate_of(sp.mask)


def test_unstructured_is_the_catch_all() -> None:
    w = weights(CONV3, seed=14)
    sp = project(w, "unstructured", 5.0)
    found = detect(np.where(sp.mask, w, 0))
    assert found is not None and found.scheme == "unstructured"
    packed = pack(w, found)
    assert packed.values.size == np.count_nonzero(sp.mask)
    assert packed.row_ptr[-1] == packed.values.size


def test_rate_one_is_dense_and_rate_of() -> None:
    w = weights(CONV3)
    for scheme in SCHEMES:
        if SCHEMES[scheme].unfit(w.shape) is None:
            sp = project(w, scheme, 1.0)
            assert sp.scheme == "dense" and sp.mask.all()
    assert rate_of(np.ones(10, bool)) == 1.0
    assert rate_of(np.array([1, 0, 0, 0], bool)) == 4.0
    assert rate_of(np.zeros(3, bool)) == float("inf")


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda w: project(w, "pattern", 0.5), "below 1"),
        (lambda w: project(w, "pattern", "fast"), "not a number"),
        (lambda w: project(w, "pattern", float("nan")), "below 1"),
        (lambda w: project(w, "stripes", 2.0), "unknown pruning scheme 'stripes'"),
        (lambda w: project(w, "pattern", 2.0, blocks=3), "unknown parameter(s) blocks"),
        (lambda w: project(w, "pattern", 2.0, entries=9), "entries=9"),
        (lambda w: project(w, "pattern", 2.0, library=[[0, 1], [2]]), "same number"),
        (lambda w: project(w, "pattern", 2.0, library=[[0, 9, 4]]), "positions 0..8"),
        (lambda w: project(w, "block-punched", 2.0, bf=0), "bf=0"),
        (lambda w: project(w[:, :, :1, :1], "pattern", 2.0), "this layer's are 1x1"),
        (lambda w: project(w[:, :, 0, 0], "pattern", 2.0), "dense (fully connected)"),
        (lambda w: project(w, "block", 2.0), "use block-punched"),
        (lambda w: project(w, "block-punched", 2.0, groups=2), "grouped or depthwise"),
    ],
)
def test_bad_requests_are_user_errors(call, needle) -> None:
    with pytest.raises(NpasError) as e:
        call(weights(CONV3))
    assert needle in str(e.value)


@pytest.mark.parametrize(("scheme", "shape"), [c for c in CASES if c[0] != "unstructured"])
def test_group_ids_match_what_projection_keeps_together(scheme, shape) -> None:
    w = weights(shape, seed=15)
    sp = project(w, scheme, 3.0)
    ids = get_scheme(scheme).group_ids(shape)
    assert ids.shape == shape
    # the mask is constant on every group (for pattern: kernels are kept or removed whole)
    m = sp.mask.reshape(-1)
    gid = ids.reshape(-1)
    if scheme == "pattern":
        live = np.bincount(gid, weights=m) > 0
        assert np.array_equal(live[gid] & m, m)
    else:
        lo = np.full(gid.max() + 1, True)
        hi = np.full(gid.max() + 1, False)
        np.logical_and.at(lo, gid, m)
        np.logical_or.at(hi, gid, m)
        assert np.array_equal(lo, hi)
