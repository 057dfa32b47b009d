"""Pattern pruning (3x3 kernels only), PatDNN-style.

Every kept kernel keeps exactly the E positions of one pattern from a small library (default 8
patterns of 4 entries; the centre is always in a pattern the projection builds), and
connectivity pruning removes whole kernels. Positions are numbered ky * 3 + kx (centre = 4).

How a rate splits: r = (9 / E) x c. The pattern keeps E of 9 weights (2.25x for E = 4, 1.8x
for E = 5); connectivity keeps 1/c of the kernels. Rate 6 with E = 4 is 2.25x from the pattern
times 2.67x from connectivity. A rate at or below 9/E gives 9/E (no kernel is removed).

Library: the K most frequent E-entry patterns, where each kernel votes for the pattern that
keeps most of its squared magnitude (centre plus its E - 1 largest other entries). Each kernel
then takes the library pattern keeping most of its magnitude; connectivity keeps the kernels
with the largest magnitude under their pattern.

`Sparsity.params` for pattern: entries (E) and library (a tuple of patterns, each a sorted tuple
of positions), ordered by how many kernels use each pattern (most first, ties by bitmask), so
projection and detection of the same weights agree on pattern ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from npas.ir.graph import Sparsity

from .base import (
    MIN_RATE,
    STRAY_ZEROS,
    PruneError,
    Scheme,
    make_sparsity,
    positive_int,
    select_groups,
)

TAPS = 9
CENTRE = 4
MAX_LIBRARY = 32  # more distinct patterns than this is no pattern structure worth a kernel
_BIT = 1 << np.arange(TAPS)
_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << TAPS)], dtype=np.int64)

Library = tuple[tuple[int, ...], ...]


def bits_of(pattern: tuple[int, ...] | list[int]) -> int:
    return int(sum(1 << int(p) for p in pattern))


def positions_of(bits: int) -> tuple[int, ...]:
    return tuple(p for p in range(TAPS) if bits >> p & 1)


def _onehot(lib_bits: np.ndarray) -> np.ndarray:
    """[K, 9] 0/1 rows of the library patterns."""
    return ((lib_bits[:, None] >> np.arange(TAPS)) & 1).astype(np.float64)


def _canonical(assigned: np.ndarray) -> np.ndarray:
    """Distinct pattern bitmasks of `assigned`, most used first, ties by bitmask."""
    vals, counts = np.unique(assigned, return_counts=True)
    return vals[np.lexsort((vals, -counts))]


@dataclass(frozen=True)
class PatternPacked:
    """Compressed storage of a pattern-pruned W[F, C, 3, 3]: per filter its kept kernels
    (CSR over filters), each with its input channel, its pattern id and its E weights in the
    order of the pattern's positions. Kernels of a filter are in ascending channel order; the
    filter-kernel reorder of the layout passes permutes them."""

    shape: tuple[int, int, int, int]
    library: np.ndarray  # int32 [K, E] positions (ky * 3 + kx) of each pattern, ascending
    offsets: np.ndarray  # int32 [F + 1]: kernels of filter f are offsets[f]:offsets[f + 1]
    channels: np.ndarray  # int32 [kernels]
    pattern_ids: np.ndarray  # int32 [kernels], index into library
    weights: np.ndarray  # float32 [kernels, E]

    @property
    def kernel_count(self) -> np.ndarray:
        """Kept kernels per filter, int32 [F]."""
        return np.diff(self.offsets).astype(np.int32)

    def unpack(self) -> np.ndarray:
        f, c = self.shape[:2]
        w = np.zeros((f, c, TAPS), dtype=np.float32)
        filters = np.repeat(np.arange(f), np.diff(self.offsets))
        pos = self.library[self.pattern_ids]  # [kernels, E]
        w[filters[:, None], self.channels[:, None], pos] = self.weights
        return w.reshape(self.shape)


class Pattern(Scheme):
    name = "pattern"
    defaults: ClassVar[Mapping[str, Any]] = {"library_size": 8, "entries": 4, "library": None}

    def unfit(self, shape: tuple[int, ...], groups: int = 1) -> str | None:
        if len(shape) != 4:
            return (
                "pattern pruning needs 3x3 conv kernels; a dense (fully connected) layer has none"
            )
        if tuple(shape[2:]) != (3, 3):
            return f"pattern pruning needs 3x3 conv kernels; this layer's are {shape[2]}x{shape[3]}"
        return None

    def check_params(self, params: dict[str, Any]) -> None:
        params["library_size"] = positive_int(self.name, "library_size", params["library_size"])
        params["entries"] = positive_int(self.name, "entries", params["entries"], 1, TAPS - 1)
        lib = params["library"]
        if lib is None:
            return
        if not isinstance(lib, list | tuple) or not lib:
            raise PruneError(f"pattern: library {lib!r} must be a non-empty list of patterns")
        pats = []
        for pat in lib:
            ok = isinstance(pat, list | tuple) and all(
                isinstance(p, int | np.integer) and not isinstance(p, bool) and 0 <= p < TAPS
                for p in pat
            )
            if not ok or len(set(pat)) != len(pat):
                raise PruneError(
                    f"pattern: library entry {pat!r} must list distinct kernel positions 0..8 "
                    "(ky * 3 + kx)"
                )
            pats.append(tuple(sorted(int(p) for p in pat)))
        sizes = {len(p) for p in pats}
        if len(sizes) != 1 or sizes == {TAPS}:
            raise PruneError(
                "pattern: every library pattern must have the same number of entries, below 9"
            )
        params["library"] = tuple(dict.fromkeys(pats))
        params["entries"] = len(pats[0])

    def _project(self, w: np.ndarray, rate: float, params: dict[str, Any]) -> Sparsity:
        f, c = w.shape[:2]
        e = params["entries"]
        mag = w.reshape(f * c, TAPS).astype(np.float64) ** 2
        live = mag.sum(axis=1) > 0
        if params["library"] is not None:
            lib_bits = np.array([bits_of(p) for p in params["library"]], dtype=np.int64)
        else:
            # each kernel votes for the centre plus its E - 1 largest other entries
            vote = mag.copy()
            vote[:, CENTRE] = np.inf
            top = np.argpartition(-vote, e - 1, axis=1)[:, :e]
            votes = (1 << top).sum(axis=1)[live]
            lib_bits = _canonical(votes)[: params["library_size"]]
            if lib_bits.size == 0:  # an all-zero layer keeps nothing
                return self._sparsity(np.zeros(w.shape, dtype=bool), e, lib_bits)
        onehot = _onehot(lib_bits)
        score = mag @ onehot.T  # magnitude each pattern keeps, per kernel
        assign = np.argmax(score, axis=1)
        best = score[np.arange(score.shape[0]), assign]
        connectivity = rate * e / TAPS
        if connectivity <= 1.0:
            keep = best > 0
        else:
            keep = select_groups(best, np.ones(1), best.size / connectivity)
        mask = (onehot[assign] > 0) & keep[:, None]
        used = lib_bits[assign[keep]]
        return self._sparsity(mask.reshape(w.shape), e, _canonical(used))

    def _sparsity(self, mask: np.ndarray, e: int, lib_bits: np.ndarray) -> Sparsity:
        library: Library = tuple(positions_of(int(b)) for b in lib_bits)
        return make_sparsity(self.name, mask, entries=e, library=library)

    def _detect(self, w: np.ndarray) -> Sparsity | None:
        f, c = w.shape[:2]
        nz = w.reshape(f * c, TAPS) != 0
        bits = nz.astype(np.int64) @ _BIT
        live = bits != 0
        if not live.any():
            return None
        sizes = _POPCOUNT[bits]
        e = int(np.argmax(np.bincount(sizes[live], minlength=TAPS + 1)))
        if e >= TAPS or (sizes[live] > e).any():
            return None
        full = live & (sizes == e)
        lib_bits = _canonical(bits[full])
        if lib_bits.size > MAX_LIBRARY:
            return None
        assigned = np.where(full, bits, 0)
        stray = live & ~full  # kernels that lost a kept weight to an exact zero
        for s in np.unique(bits[stray]):
            covers = lib_bits[(s & ~lib_bits) == 0]
            if covers.size == 0:
                return None
            assigned[bits == s] = covers[0]
        kept_weights = int(np.count_nonzero(live)) * e
        if kept_weights - int(np.count_nonzero(nz)) > STRAY_ZEROS * kept_weights:
            return None
        if nz.size / kept_weights < MIN_RATE:
            return None
        mask = ((assigned[:, None] >> np.arange(TAPS)) & 1).astype(bool)
        return self._sparsity(mask.reshape(w.shape), e, _canonical(assigned[live]))

    def pack(self, w: np.ndarray, sp: Sparsity) -> PatternPacked:
        assert sp.mask is not None
        f, c = w.shape[:2]
        library = sp.param("library")
        e = int(sp.param("entries"))
        lib_bits = np.array([bits_of(p) for p in library], dtype=np.int64)
        bits = sp.mask.reshape(f * c, TAPS).astype(np.int64) @ _BIT
        kept = np.flatnonzero(bits)
        lookup = np.full(1 << TAPS, -1, dtype=np.int64)
        lookup[lib_bits] = np.arange(lib_bits.size)
        ids = lookup[bits[kept]]
        if (ids < 0).any():
            raise PruneError("pattern: the mask holds a kernel shape that is not in its library")
        lib_pos = np.array(library, dtype=np.int64).reshape(-1, e)
        wk = np.asarray(w, dtype=np.float32).reshape(f * c, TAPS)
        weights = wk[kept[:, None], lib_pos[ids]]
        offsets = np.zeros(f + 1, dtype=np.int32)
        np.cumsum(np.bincount(kept // c, minlength=f), out=offsets[1:])
        return PatternPacked(
            (f, c, 3, 3),
            lib_pos.astype(np.int32),
            offsets,
            (kept % c).astype(np.int32),
            ids.astype(np.int32),
            weights,
        )

    def stats(self, sp: Sparsity) -> dict[str, Any]:
        assert sp.mask is not None
        f, c = sp.mask.shape[:2]
        bits = sp.mask.reshape(f * c, TAPS).astype(np.int64) @ _BIT
        per_filter = np.count_nonzero(bits.reshape(f, c), axis=1)
        library = sp.param("library")
        counts = [int(np.count_nonzero(bits == bits_of(p))) for p in library]
        kernels = int(np.count_nonzero(bits))
        return {
            "entries": int(sp.param("entries")),
            "kernels": f * c,
            "kernels_kept": kernels,
            "connectivity_rate": f * c / kernels if kernels else float("inf"),
            "kernels_per_filter": [int(per_filter.min()), float(per_filter.mean()),
                                   int(per_filter.max())],
            "pattern_histogram": [
                {"pattern": list(p), "kernels": n} for p, n in zip(library, counts, strict=True)
            ],
        }  # fmt: skip

    def group_ids(self, shape: tuple[int, ...], **params: Any) -> np.ndarray:
        """Connectivity groups: one per kernel."""
        f, c = shape[:2]
        return np.repeat(np.arange(f * c), TAPS).reshape(shape)
