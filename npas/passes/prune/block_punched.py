"""Block-punched pruning (any kernel size): W[F, C, kh, kw] is tiled into blocks of `bf`
filters x `bc` channels (default 8x4; the last block along an axis holds the remainder when F or
C does not divide); inside a block, a kernel position is kept or removed for all its filters
and channels together. Score of a (block, position) group: its L2 norm, normalised by the
group's size so remainder blocks compete fairly; the threshold is the per-layer percentile
that keeps ~1/r of the weights. A kernel computes each block as a small dense GEMM over its
kept (channel, position) pairs, so the block's `bf` filters vectorise together.

On a 1x1 conv or a dense layer, a block-punched group is a whole bf x bc block; the `block`
scheme (block.py) is the bc = 1 case of the same tiling, so detection asks bc >= 2 here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from npas.ir.graph import Sparsity

from .base import (
    MIN_RATE,
    Scheme,
    Tiling,
    as_4d,
    make_sparsity,
    positive_int,
    rate_of,
    select_groups,
    structure_explains,
)

# Block sizes detection tries, largest area first: powers of two, as kernels vectorise.
BF_CANDIDATES = (64, 32, 16, 8, 4, 2)
BC_CANDIDATES = (16, 8, 4, 2, 1)


class TiledScheme(Scheme):
    """Schemes whose groups are (block of the F x C tiling, kernel position)."""

    def unfit(self, shape: tuple[int, ...], groups: int = 1) -> str | None:
        if groups > 1:
            return (
                f"{self.name} pruning tiles filters x input channels of a plain conv; a grouped "
                "or depthwise conv has no shared input channels (use pattern or unstructured)"
            )
        return None

    def tiling_params(self, params: dict[str, Any]) -> tuple[int, int]:
        return int(params["bf"]), int(params.get("bc", 1))

    def candidates(self, shape: tuple[int, ...]) -> list[tuple[int, int]]:
        raise NotImplementedError

    def _project(self, w: np.ndarray, rate: float, params: dict[str, Any]) -> Sparsity:
        w4 = as_4d(w)
        f, c = w4.shape[:2]
        bf, bc = self.tiling_params(params)
        bf, bc = min(bf, f), min(bc, c)
        t = Tiling.of(f, c, bf, bc)
        sizes = t.block_sizes()[:, :, None, None]
        score = t.sum(w4.astype(np.float64) ** 2) / sizes
        keep = select_groups(score, sizes, w.size / rate)
        return self._sparsity(t.expand(keep).reshape(w.shape), bf, bc)

    def _sparsity(self, mask: np.ndarray, bf: int, bc: int) -> Sparsity:
        raise NotImplementedError

    def _detect(self, w: np.ndarray) -> Sparsity | None:
        w4 = as_4d(w)
        nz = w4 != 0
        if rate_of(nz) < MIN_RATE:
            return None
        f, c = w4.shape[:2]
        counts = nz.astype(np.int32)

        def explained(bf: int, bc: int) -> tuple[Tiling, np.ndarray | None]:
            t = Tiling.of(f, c, bf, bc)
            return t, structure_explains(t.sum(counts), t.block_sizes()[:, :, None, None], w.size)

        cands = self.candidates(w4.shape)
        # Every candidate coarsens the last (finest) one, and coarsening only adds stray zeros
        # and kept weights: when the finest fails, all do.
        if not cands or explained(*cands[-1])[1] is None:
            return None
        for bf, bc in cands:
            t, kept = explained(bf, bc)
            if kept is not None:
                return self._sparsity(t.expand(kept).reshape(w.shape), bf, bc)
        return None

    def _kept_groups(self, sp: Sparsity) -> tuple[Tiling, np.ndarray]:
        """The tiling of `sp` and its kept groups [nbf, nbc, kh, kw]."""
        assert sp.mask is not None
        m4 = as_4d(sp.mask)
        bf, bc = self.tiling_params(dict(sp.params))
        t = Tiling.of(m4.shape[0], m4.shape[1], bf, bc)
        return t, t.sum(m4.astype(np.int32)) > 0


def _clamped(shape: tuple[int, ...], pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Candidate block sizes clamped to the layer, without duplicates, largest area first."""
    f, c = shape[:2]
    seen = {(min(bf, f), min(bc, c)) for bf, bc in pairs}
    return sorted((p for p in seen if p[0] >= 2), key=lambda p: (-p[0] * p[1], -p[0]))


@dataclass(frozen=True)
class BlockPunchedPacked:
    """Compressed storage of a block-punched W. Blocks are numbered row-major over (filter
    block, channel block): block b = i * nbc + j covers filters f_starts[i]:f_starts[i + 1] and
    channels c_starts[j]:c_starts[j + 1]. Its kept (channel, position) pairs are
    pair_offsets[b]:pair_offsets[b + 1] (channel-major, then position ky * kw + kx; channels
    absolute) and its weights a dense [filters of the block, pairs] row-major matrix at
    weights[weight_offsets[b]:weight_offsets[b + 1]]."""

    shape: tuple[int, ...]
    bf: int
    bc: int
    f_starts: np.ndarray  # int32 [nbf + 1]
    c_starts: np.ndarray  # int32 [nbc + 1]
    pair_offsets: np.ndarray  # int32 [blocks + 1]
    pair_channel: np.ndarray  # int32 [pairs]
    pair_position: np.ndarray  # int32 [pairs]
    weight_offsets: np.ndarray  # int64 [blocks + 1]
    weights: np.ndarray  # float32

    @property
    def blocks(self) -> int:
        return (len(self.f_starts) - 1) * (len(self.c_starts) - 1)

    def block(self, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(channels, positions, weights[nf, pairs]) of block b."""
        nbc = len(self.c_starts) - 1
        i = b // nbc
        nf = int(self.f_starts[i + 1] - self.f_starts[i])
        p0, p1 = self.pair_offsets[b], self.pair_offsets[b + 1]
        wts = self.weights[self.weight_offsets[b] : self.weight_offsets[b + 1]]
        return self.pair_channel[p0:p1], self.pair_position[p0:p1], wts.reshape(nf, p1 - p0)

    def unpack(self) -> np.ndarray:
        f, c = self.shape[:2]
        kk = int(np.prod(self.shape[2:])) if len(self.shape) > 2 else 1
        w = np.zeros((f, c, kk), dtype=np.float32)
        nbc = len(self.c_starts) - 1
        for b in range(self.blocks):
            chans, pos, wts = self.block(b)
            f0, f1 = self.f_starts[b // nbc], self.f_starts[b // nbc + 1]
            w[f0:f1, chans, pos] = wts
        return w.reshape(self.shape)


class BlockPunched(TiledScheme):
    name = "block-punched"
    defaults: ClassVar[Mapping[str, Any]] = {"bf": 8, "bc": 4}

    def check_params(self, params: dict[str, Any]) -> None:
        params["bf"] = positive_int(self.name, "bf", params["bf"])
        params["bc"] = positive_int(self.name, "bc", params["bc"])

    def candidates(self, shape: tuple[int, ...]) -> list[tuple[int, int]]:
        min_bc = 2 if shape[2] * shape[3] == 1 else 1
        return _clamped(
            shape, [(bf, bc) for bf in BF_CANDIDATES for bc in BC_CANDIDATES if bc >= min_bc]
        )

    def _sparsity(self, mask: np.ndarray, bf: int, bc: int) -> Sparsity:
        return make_sparsity(self.name, mask, bf=bf, bc=bc)

    def pack(self, w: np.ndarray, sp: Sparsity) -> BlockPunchedPacked:
        w4 = as_4d(np.asarray(w, dtype=np.float32))
        f, c, kh, kw = w4.shape
        t, kept = self._kept_groups(sp)
        nbf, nbc = kept.shape[:2]
        kept = kept.reshape(nbf, nbc, kh * kw)
        wf = w4.reshape(f, c, kh * kw)
        chans, poss, blobs = [], [], []
        pair_offsets, weight_offsets = [0], [0]
        for i in range(nbf):
            f0, f1 = t.f_starts[i], t.f_starts[i + 1]
            for j in range(nbc):
                c0, c1 = t.c_starts[j], t.c_starts[j + 1]
                pos = np.flatnonzero(kept[i, j])
                ch = np.repeat(np.arange(c0, c1), pos.size)
                ps = np.tile(pos, c1 - c0)
                chans.append(ch)
                poss.append(ps)
                blobs.append(wf[f0:f1][:, ch, ps].reshape(-1))
                pair_offsets.append(pair_offsets[-1] + ch.size)
                weight_offsets.append(weight_offsets[-1] + blobs[-1].size)
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
        return BlockPunchedPacked(
            tuple(w.shape),
            int(sp.param("bf")),
            int(sp.param("bc")),
            t.f_starts.astype(np.int32),
            t.c_starts.astype(np.int32),
            np.array(pair_offsets, dtype=np.int32),
            cat(chans, np.int32),
            cat(poss, np.int32),
            np.array(weight_offsets, dtype=np.int64),
            cat(blobs, np.float32),
        )

    def stats(self, sp: Sparsity) -> dict[str, Any]:
        _, kept = self._kept_groups(sp)
        nbf, nbc = kept.shape[:2]
        per_block = kept.reshape(nbf * nbc, -1).sum(axis=1)
        positions = kept.shape[2] * kept.shape[3]
        hist = np.bincount(per_block, minlength=positions + 1)
        return {
            "bf": int(sp.param("bf")),
            "bc": int(sp.param("bc")),
            "blocks": int(per_block.size),
            "positions": positions,
            "empty_blocks": int(hist[0]),
            "occupancy": float(per_block.mean() / positions) if per_block.size else 0.0,
            # blocks keeping 0, 1, ..., kh * kw positions
            "occupancy_histogram": [int(n) for n in hist],
        }

    def group_ids(self, shape: tuple[int, ...], **params: Any) -> np.ndarray:
        p = self.params(params)
        f, c = shape[:2]
        kk = int(np.prod(shape[2:])) if len(shape) > 2 else 1
        t = Tiling.of(f, c, min(p["bf"], f), min(p["bc"], c))
        nbf, nbc = len(t.f_starts) - 1, len(t.c_starts) - 1
        ids = np.arange(nbf * nbc * kk).reshape(nbf, nbc, kk)
        return t.expand(ids).reshape(shape)
