"""Block pruning (1x1 convs and dense layers): on the W[F, C] matrix, inside each block of `bf`
rows (default 8; the last block holds the remainder), whole columns are removed. Score of a
(row block, column) group: its L2 norm normalised by its size; threshold: the per-layer
percentile. Kernels run each row block as a dense GEMM over its kept columns (input channels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from npas.ir.graph import Sparsity

from .base import Tiling, make_sparsity, positive_int
from .block_punched import BF_CANDIDATES, TiledScheme, _clamped


@dataclass(frozen=True)
class BlockPacked:
    """Compressed storage of a block-pruned W[F, C] (or W[F, C, 1, 1]): row block i covers
    filters f_starts[i]:f_starts[i + 1]; its kept columns are cols[col_offsets[i]:
    col_offsets[i + 1]] (ascending) and its weights a dense [rows, kept columns] row-major
    matrix at weights[weight_offsets[i]:weight_offsets[i + 1]]."""

    shape: tuple[int, ...]
    bf: int
    f_starts: np.ndarray  # int32 [nbf + 1]
    col_offsets: np.ndarray  # int32 [nbf + 1]
    cols: np.ndarray  # int32
    weight_offsets: np.ndarray  # int64 [nbf + 1]
    weights: np.ndarray  # float32

    def unpack(self) -> np.ndarray:
        f, c = self.shape[:2]
        w = np.zeros((f, c), dtype=np.float32)
        for i in range(len(self.f_starts) - 1):
            f0, f1 = self.f_starts[i], self.f_starts[i + 1]
            cols = self.cols[self.col_offsets[i] : self.col_offsets[i + 1]]
            blob = self.weights[self.weight_offsets[i] : self.weight_offsets[i + 1]]
            w[f0:f1, cols] = blob.reshape(f1 - f0, cols.size)
        return w.reshape(self.shape)


class Block(TiledScheme):
    name = "block"
    defaults: ClassVar[Mapping[str, Any]] = {"bf": 8}

    def unfit(self, shape: tuple[int, ...], groups: int = 1) -> str | None:
        if len(shape) == 4 and tuple(shape[2:]) != (1, 1):
            return (
                f"block pruning applies to 1x1 convs and dense layers; this layer's kernel is "
                f"{shape[2]}x{shape[3]} (use block-punched)"
            )
        return super().unfit(shape, groups)

    def check_params(self, params: dict[str, Any]) -> None:
        params["bf"] = positive_int(self.name, "bf", params["bf"])

    def candidates(self, shape: tuple[int, ...]) -> list[tuple[int, int]]:
        return _clamped(shape, [(bf, 1) for bf in BF_CANDIDATES])

    def _sparsity(self, mask: np.ndarray, bf: int, bc: int) -> Sparsity:
        return make_sparsity(self.name, mask, bf=bf)

    def pack(self, w: np.ndarray, sp: Sparsity) -> BlockPacked:
        f, c = w.shape[:2]
        wm = np.asarray(w, dtype=np.float32).reshape(f, c)
        t, kept = self._kept_groups(sp)
        kept = kept.reshape(kept.shape[0], c)
        cols, blobs = [], []
        for i in range(kept.shape[0]):
            cols.append(np.flatnonzero(kept[i]).astype(np.int32))
            blobs.append(wm[t.f_starts[i] : t.f_starts[i + 1]][:, cols[-1]].reshape(-1))
        return BlockPacked(
            tuple(w.shape),
            int(sp.param("bf")),
            t.f_starts.astype(np.int32),
            np.concatenate([[0], np.cumsum([x.size for x in cols])]).astype(np.int32),
            np.concatenate(cols).astype(np.int32),
            np.concatenate([[0], np.cumsum([x.size for x in blobs])]).astype(np.int64),
            np.concatenate(blobs).astype(np.float32),
        )

    def stats(self, sp: Sparsity) -> dict[str, Any]:
        _, kept = self._kept_groups(sp)
        per_block = kept.reshape(kept.shape[0], -1).sum(axis=1)
        c = kept.shape[1]
        return {
            "bf": int(sp.param("bf")),
            "blocks": int(per_block.size),
            "columns": c,
            "empty_blocks": int(np.count_nonzero(per_block == 0)),
            "occupancy": float(per_block.mean() / c) if per_block.size else 0.0,
            # kept columns per row block: min, mean, max
            "kept_columns": [int(per_block.min()), float(per_block.mean()), int(per_block.max())],
        }

    def group_ids(self, shape: tuple[int, ...], **params: Any) -> np.ndarray:
        p = self.params(params)
        f, c = shape[:2]
        t = Tiling.of(f, c, min(p["bf"], f), 1)
        ids = np.arange((len(t.f_starts) - 1) * c).reshape(-1, c)
        return t.expand(ids).reshape(shape)
