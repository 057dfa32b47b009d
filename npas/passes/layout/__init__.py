"""Layouts of pruned weights for the sparse kernels: the filter-kernel reorder and compressed
storage of pattern (and unstructured) layers, and the block packing of block-punched and
block layers.

These are steps on a layer's packed storage (npas.passes.prune: `pack`), not graph passes:
the layout depends on the kernel that streams it (its register rows, its cache blocking), so
the kernel family's filler calls them when it renders a layer. numpy only."""

from __future__ import annotations

from .blocks import BlockLayout, block_layout, block_punched_layout
from .reorder import (
    KernelLayout,
    channel_blocks,
    csr_reorder,
    filter_kernel_reorder,
)

__all__ = [
    "BlockLayout", "KernelLayout", "block_layout", "block_punched_layout",
    "channel_blocks", "csr_reorder", "filter_kernel_reorder",
]  # fmt: skip
