"""Filter-kernel reorder (FKR) and the compressed storage the direct sparse kernels stream.

A pattern-pruned layer's kernels are irregular in two ways: filters keep different numbers of
kernels (connectivity pruning), and a filter's kernels use different patterns. The reorder
takes both out of the inner loops:

- filters are sorted by kept-kernel count (most first; ties by their per-pattern histogram, so
  filters that run the same pattern loops sit together) and cut into groups of equal count:
  consecutive filters cost the same, so equal-work chunks of them balance threads;
- each filter's kernels are ordered by (channel block, pattern, channel): a kernel then runs
  one pattern's branch-free, fully unrolled code for a whole run of kernels, and the runs of
  one channel block read one cache-resident slice of the input.

Storage (no per-weight indices): per filter slot its original filter, per (slot, channel
block, pattern) the run length, per kernel its input channel (the pattern id is implied by the
runs; it is kept for checks and unpack) and its E weights in the order of the pattern's
positions.

Unstructured layers get the same treatment with one "pattern" of one entry: a kernel is one
weight, its position folded into the stored (channel, position) column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npas.passes.prune.pattern import PatternPacked
from npas.passes.prune.unstructured import CsrPacked

I32 = np.int32


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class KernelLayout:
    """Reordered sparse kernels of a W[F, C, kh, kw]: slot i computes filter `filters[i]`.

    Kernels are stored slot by slot, and within a slot by channel block, then pattern, then
    channel. `runs[i, b, p]` kernels of slot i in channel block b use pattern p; they start at
    `starts[i * nblocks + b] + sum(runs[i, b, :p])`. `columns[k]` is kernel k's input channel
    (pattern layouts) or its flattened (channel, position) index c * kh * kw + pos
    (unstructured: one weight per kernel)."""

    shape: tuple[int, ...]
    library: np.ndarray  # int32 [K, E] kernel positions (ky * kw + kx) of each pattern
    filters: np.ndarray  # int32 [F]: original filter of each slot
    groups: np.ndarray  # int32 [G + 1]: slot ranges of equal kernel count
    channel_starts: np.ndarray  # int32 [nblocks + 1]: channel block boundaries
    runs: np.ndarray  # int32 [F, nblocks, K]
    columns: np.ndarray  # int32 [kernels]
    pattern_ids: np.ndarray  # int32 [kernels]
    weights: np.ndarray  # float32 [kernels, E]
    flat: bool = False  # columns are flattened (channel, position) indices, not channels

    @property
    def entries(self) -> int:
        return int(self.library.shape[1])

    @property
    def nblocks(self) -> int:
        return len(self.channel_starts) - 1

    @property
    def counts(self) -> np.ndarray:
        """Kernels per slot, int32 [F] (non-increasing)."""
        return self.runs.sum(axis=(1, 2)).astype(I32)

    @property
    def starts(self) -> np.ndarray:
        """int32 [F * nblocks + 1]: first kernel of each (slot, channel block)."""
        per = self.runs.sum(axis=2).reshape(-1)
        return np.concatenate([[0], np.cumsum(per)]).astype(I32)

    def unpack(self) -> np.ndarray:
        """W * mask in the original filter order (the round trip the tests check)."""
        f = self.shape[0]
        taps = int(np.prod(self.shape[2:]))
        w = np.zeros((f, int(np.prod(self.shape[1:]))), np.float32)
        rows = self.filters[np.repeat(np.arange(f), self.counts)]
        base = self.columns.astype(np.int64)[:, None] * (1 if self.flat else taps)
        w[rows[:, None], base + self.library[self.pattern_ids]] = self.weights
        return w.reshape(self.shape)


def channel_blocks(c: int, block: int | None) -> np.ndarray:
    """Boundaries of channel blocks of `block` channels (the last holds the rest)."""
    block = c if not block or block >= c else block
    return np.append(np.arange(0, c, block), c).astype(I32)


def _order_slots(counts: np.ndarray, histograms: np.ndarray) -> np.ndarray:
    """Filters by kept-kernel count (most first), ties by per-pattern histogram (most used
    pattern counts first), then by index: a stable, deterministic order."""
    keys = [np.arange(counts.size)]
    keys += [-histograms[:, p] for p in range(histograms.shape[1] - 1, -1, -1)]
    keys.append(-counts)
    return np.lexsort(keys).astype(I32)


def _equal_groups(sorted_counts: np.ndarray) -> np.ndarray:
    change = np.flatnonzero(np.diff(sorted_counts)) + 1
    return np.concatenate([[0], change, [sorted_counts.size]]).astype(I32)


def filter_kernel_reorder(packed: PatternPacked, channel_block: int | None = None) -> KernelLayout:
    """The filter-kernel reorder of a pattern-pruned layer (see the module docstring);
    `channel_block` channels per block (None: one block)."""
    f, c = packed.shape[:2]
    k = packed.library.shape[0]
    filt = np.repeat(np.arange(f), packed.kernel_count)
    hist = np.zeros((f, k), np.int64)
    np.add.at(hist, (filt, packed.pattern_ids), 1)
    order = _order_slots(packed.kernel_count.astype(np.int64), hist)
    cstarts = channel_blocks(c, channel_block)
    block_of = np.searchsorted(cstarts, packed.channels, side="right") - 1
    slot_of_filter = np.empty(f, np.int64)
    slot_of_filter[order] = np.arange(f)
    slot = slot_of_filter[filt]
    perm = np.lexsort((packed.channels, packed.pattern_ids, block_of, slot))
    nb = len(cstarts) - 1
    runs = np.zeros((f, nb, k), np.int64)
    np.add.at(runs, (slot, block_of, packed.pattern_ids), 1)
    return KernelLayout(
        shape=tuple(packed.shape),
        library=packed.library.astype(I32),
        filters=order,
        groups=_equal_groups(packed.kernel_count[order]),
        channel_starts=cstarts,
        runs=runs.astype(I32),
        columns=packed.channels[perm].astype(I32),
        pattern_ids=packed.pattern_ids[perm].astype(I32),
        weights=np.ascontiguousarray(packed.weights[perm], np.float32),
    )


def csr_reorder(packed: CsrPacked, channel_block: int | None = None) -> KernelLayout:
    """The same reorder for an unstructured (CSR) layer: every kept weight is a kernel of one
    entry at position 0 of its flattened (channel, position) column."""
    shape = tuple(packed.shape)
    f = shape[0]
    taps = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    c = int(shape[1])
    counts = np.diff(packed.row_ptr).astype(np.int64)
    filt = np.repeat(np.arange(f), counts)
    order = _order_slots(counts, np.zeros((f, 0), np.int64))
    cstarts = channel_blocks(c, channel_block)
    chan = packed.col_idx // taps
    block_of = np.searchsorted(cstarts, chan, side="right") - 1
    slot_of_filter = np.empty(f, np.int64)
    slot_of_filter[order] = np.arange(f)
    slot = slot_of_filter[filt]
    perm = np.lexsort((packed.col_idx, block_of, slot))
    nb = len(cstarts) - 1
    runs = np.zeros((f, nb, 1), np.int64)
    np.add.at(runs, (slot, block_of, np.zeros_like(slot)), 1)
    return KernelLayout(
        shape=shape,
        library=np.zeros((1, 1), I32),
        filters=order,
        groups=_equal_groups(counts[order]),
        channel_starts=cstarts,
        runs=runs.astype(I32),
        columns=packed.col_idx[perm].astype(I32),
        pattern_ids=np.zeros(perm.size, I32),
        weights=np.ascontiguousarray(packed.values[perm].reshape(-1, 1), np.float32),
        flat=True,
    )
