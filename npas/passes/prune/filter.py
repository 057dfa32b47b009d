"""Filter pruning: whole filters (output channels) go. Here it is a mask of all-zero filters;
the graph rewrite that then makes the layer and its consumers smaller is `shrink.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from npas.ir.graph import Sparsity

from .base import Scheme, as_4d, make_sparsity, select_groups, structure_explains


@dataclass(frozen=True)
class FilterPacked:
    """The kept filters, dense."""

    shape: tuple[int, ...]
    kept: np.ndarray  # int32 [F'] filter indices, ascending
    weights: np.ndarray  # float32 [F', *shape[1:]]

    def unpack(self) -> np.ndarray:
        w = np.zeros(self.shape, dtype=np.float32)
        w[self.kept] = self.weights
        return w


def _filter_mask(keep: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(keep.reshape(-1, *([1] * (len(shape) - 1))), shape)


class Filter(Scheme):
    name = "filter"

    def _project(self, w: np.ndarray, rate: float, params: dict[str, Any]) -> Sparsity:
        w4 = as_4d(w).astype(np.float64)
        scores = np.einsum("fchw,fchw->f", w4, w4)  # squared L2 norm per filter
        keep = select_groups(scores, np.full(1, w[0].size), w.size / rate)
        return make_sparsity(self.name, _filter_mask(keep, w.shape))

    def _detect(self, w: np.ndarray) -> Sparsity | None:
        nnz = np.count_nonzero(w.reshape(w.shape[0], -1), axis=1)
        kept = structure_explains(nnz, np.full(1, w[0].size), w.size)
        if kept is None:
            return None
        return make_sparsity(self.name, _filter_mask(kept, w.shape))

    def pack(self, w: np.ndarray, sp: Sparsity) -> FilterPacked:
        assert sp.mask is not None
        kept = np.flatnonzero(sp.mask.reshape(w.shape[0], -1).any(axis=1)).astype(np.int32)
        return FilterPacked(tuple(w.shape), kept, np.asarray(w, dtype=np.float32)[kept].copy())

    def stats(self, sp: Sparsity) -> dict[str, Any]:
        assert sp.mask is not None
        f = sp.mask.shape[0]
        kept = int(np.count_nonzero(sp.mask.reshape(f, -1).any(axis=1)))
        return {"filters": f, "filters_kept": kept}

    def group_ids(self, shape: tuple[int, ...], **params: Any) -> np.ndarray:
        return np.broadcast_to(
            np.arange(shape[0]).reshape(-1, *([1] * (len(shape) - 1))), shape
        ).copy()
