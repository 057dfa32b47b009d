"""Block packing: block-punched and block layers as one small dense GEMM per block of filters.

In both schemes the `bf` filters of a filter block keep the same (channel, position) pairs:
block-punched keeps, per (filter block, channel block), a set of kernel positions for all its
channels; block keeps, per filter block, a set of whole columns (channels of a 1x1 conv or a
dense layer). So filter block i computes Y[its filters] = A_i[bf x K_i] * B_i, where the K_i
rows of B_i are the input rows of its kept pairs. The kernels stream A_i packed k-major in
panels of `mr` filters (the GEMM micro-kernel's register rows) and read B_i's rows in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npas.passes.prune.block import BlockPacked
from npas.passes.prune.block_punched import BlockPunchedPacked

I32 = np.int32


@dataclass(frozen=True)
class BlockLayout:
    """Filter block i covers filters f_starts[i]:f_starts[i + 1]; its kept pairs are
    pairs[k_starts[i]:k_starts[i + 1]] (ascending channel, then position ky * kw + kx), and
    its weights, at panels[a_starts[i]:a_starts[i + 1]], are ceil(rows / mr) panels, each
    k-major (K_i x rows of the panel, the last panel holding rows % mr)."""

    shape: tuple[int, ...]
    mr: int
    f_starts: np.ndarray  # int32 [nbf + 1]
    k_starts: np.ndarray  # int32 [nbf + 1]
    channels: np.ndarray  # int32 [pairs]
    positions: np.ndarray  # int32 [pairs]
    a_starts: np.ndarray  # int64 [nbf + 1]
    panels: np.ndarray  # float32

    @property
    def nblocks(self) -> int:
        return len(self.f_starts) - 1

    def block(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(channels, positions, A_i[rows, K_i]) of filter block i."""
        k0, k1 = self.k_starts[i], self.k_starts[i + 1]
        rows = int(self.f_starts[i + 1] - self.f_starts[i])
        blob = self.panels[self.a_starts[i] : self.a_starts[i + 1]]
        kk = int(k1 - k0)
        a = np.zeros((rows, kk), np.float32)
        off = 0
        for r0 in range(0, rows, self.mr):
            r = min(self.mr, rows - r0)
            a[r0 : r0 + r] = blob[off : off + kk * r].reshape(kk, r).T
            off += kk * r
        return self.channels[k0:k1], self.positions[k0:k1], a

    def unpack(self) -> np.ndarray:
        f, c = self.shape[:2]
        taps = int(np.prod(self.shape[2:])) if len(self.shape) > 2 else 1
        w = np.zeros((f, c, taps), np.float32)
        for i in range(self.nblocks):
            chans, pos, a = self.block(i)
            w[self.f_starts[i] : self.f_starts[i + 1], chans, pos] = a
        return w.reshape(self.shape)


def _panels(a: np.ndarray, mr: int) -> np.ndarray:
    """A[rows, K] -> k-major panels of mr rows (the last holds the remainder)."""
    parts = [np.ascontiguousarray(a[r : r + mr].T).reshape(-1) for r in range(0, a.shape[0], mr)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _layout(
    shape: tuple[int, ...],
    f_starts: np.ndarray,
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    mr: int,
) -> BlockLayout:
    k_starts, a_starts = [0], [0]
    chans, poss, blobs = [], [], []
    for ch, pos, a in blocks:
        order = np.lexsort((pos, ch))
        ch, pos, a = ch[order], pos[order], a[:, order]
        chans.append(ch.astype(I32))
        poss.append(pos.astype(I32))
        blobs.append(_panels(a.astype(np.float32), mr))
        k_starts.append(k_starts[-1] + ch.size)
        a_starts.append(a_starts[-1] + blobs[-1].size)

    def cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
        return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

    return BlockLayout(
        shape=tuple(shape),
        mr=mr,
        f_starts=np.asarray(f_starts, I32),
        k_starts=np.array(k_starts, I32),
        channels=cat(chans, I32),
        positions=cat(poss, I32),
        a_starts=np.array(a_starts, np.int64),
        panels=cat(blobs, np.float32),
    )


def block_punched_layout(packed: BlockPunchedPacked, mr: int) -> BlockLayout:
    """Per filter block, the kept pairs of all its channel blocks, as one GEMM."""
    nbc = len(packed.c_starts) - 1
    nbf = len(packed.f_starts) - 1
    blocks = []
    for i in range(nbf):
        parts = [packed.block(i * nbc + j) for j in range(nbc)]
        ch = np.concatenate([p[0] for p in parts])
        pos = np.concatenate([p[1] for p in parts])
        a = np.concatenate([p[2] for p in parts], axis=1)
        blocks.append((ch, pos, a))
    return _layout(packed.shape, packed.f_starts, blocks, mr)


def block_layout(packed: BlockPacked, mr: int) -> BlockLayout:
    """Per row block, its kept columns (channels at position 0), as one GEMM."""
    blocks = []
    for i in range(len(packed.f_starts) - 1):
        cols = packed.cols[packed.col_offsets[i] : packed.col_offsets[i + 1]]
        rows = int(packed.f_starts[i + 1] - packed.f_starts[i])
        blob = packed.weights[packed.weight_offsets[i] : packed.weight_offsets[i + 1]]
        blocks.append((cols, np.zeros_like(cols), blob.reshape(rows, cols.size)))
    return _layout(packed.shape, packed.f_starts, blocks, mr)
