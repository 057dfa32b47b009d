"""Unstructured pruning: any weight may go. The baseline that shows why structure matters;
its kernels are CSR sparse-dense products."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from npas.ir.graph import Sparsity

from .base import MIN_RATE, Scheme, make_sparsity, rate_of, select_groups


@dataclass(frozen=True)
class CsrPacked:
    """W as CSR over rows = filters, columns = the (c, ky, kx) positions of W's row-major
    order (dense W: c). Values include kept weights that happen to be zero."""

    shape: tuple[int, ...]
    row_ptr: np.ndarray  # int32 [F + 1]
    col_idx: np.ndarray  # int32 [nnz]
    values: np.ndarray  # float32 [nnz]

    def unpack(self) -> np.ndarray:
        f = self.shape[0]
        w = np.zeros((f, int(np.prod(self.shape[1:]))), dtype=np.float32)
        rows = np.repeat(np.arange(f), np.diff(self.row_ptr))
        w[rows, self.col_idx] = self.values
        return w.reshape(self.shape)


class Unstructured(Scheme):
    name = "unstructured"

    def _project(self, w: np.ndarray, rate: float, params: dict[str, Any]) -> Sparsity:
        keep = select_groups(np.abs(w).astype(np.float64), np.ones(1), w.size / rate)
        return make_sparsity(self.name, keep)

    def _detect(self, w: np.ndarray) -> Sparsity | None:
        nz = w != 0
        if rate_of(nz) < MIN_RATE:
            return None
        return make_sparsity(self.name, nz)

    def pack(self, w: np.ndarray, sp: Sparsity) -> CsrPacked:
        assert sp.mask is not None
        m = sp.mask.reshape(w.shape[0], -1)
        rows, cols = np.nonzero(m)
        row_ptr = np.zeros(w.shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=w.shape[0]), out=row_ptr[1:])
        values = np.asarray(w, dtype=np.float32).reshape(w.shape[0], -1)[rows, cols]
        return CsrPacked(tuple(w.shape), row_ptr, cols.astype(np.int32), values)

    def stats(self, sp: Sparsity) -> dict[str, Any]:
        assert sp.mask is not None
        return {"density": float(np.count_nonzero(sp.mask)) / max(sp.mask.size, 1)}

    def group_ids(self, shape: tuple[int, ...], **params: Any) -> np.ndarray:
        return np.arange(int(np.prod(shape))).reshape(shape)
