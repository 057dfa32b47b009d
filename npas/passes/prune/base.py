"""What every pruning scheme shares: rates, the layer a scheme sees, tilings of W, the
magnitude selection that turns scores into a keep-mask, and the test that tells pruning zeros
from accidental ones.

numpy only: the training side (PyTorch) reuses these definitions, and the compiler must not
import a framework to read a model.

Conventions. W is in the IR layout: conv `W[F, C, kh, kw]` (C = input channels per group),
dense `W[F, C]`; schemes view a dense W as `W[F, C, 1, 1]`. A keep-mask is a bool array of W's
shape. Rate r means ~1/r of the weights are kept: `rate_of(mask) = W.size / kept`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from npas.errors import NpasError
from npas.ir.graph import Sparsity

# The per-layer rates the NPAS search chooses from (1 = dense).
NPAS_RATES = (1.0, 2.0, 2.5, 3.0, 5.0, 7.0, 10.0)
# A layer whose zeros amount to less than this rate is dense: trained weights that happen to hold
# a few exact zeros (a dead filter, an underflowed weight) gain nothing from a sparse kernel.
MIN_RATE = 1.2
# Inside the structure a scheme keeps, this fraction of exact zeros is still taken as accidental
# (fp16 round trips, weights that crossed zero); more means the zeros follow another structure.
STRAY_ZEROS = 0.02


class PruneError(NpasError):
    """A pruning request that cannot be honoured (bad rate, scheme unfit for the layer...)."""


def rate_of(mask: np.ndarray) -> float:
    """W.size / number of kept weights (inf when nothing is kept)."""
    kept = int(np.count_nonzero(mask))
    return float(mask.size) / kept if kept else float("inf")


def check_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, int | float | np.number):
        raise PruneError(f"rate {rate!r} is not a number; use a rate >= 1 such as 2.5")
    r = float(rate)
    if not np.isfinite(r) or r < 1.0:
        raise PruneError(f"rate {rate!r} is below 1; rate r keeps ~1/r of the weights (1 = dense)")
    return r


def as_4d(w: np.ndarray) -> np.ndarray:
    """A conv W as is, a dense W[F, C] as W[F, C, 1, 1] (a view)."""
    if w.ndim == 4:
        return w
    if w.ndim == 2:
        return w.reshape(*w.shape, 1, 1)
    raise PruneError(f"weight of shape {list(w.shape)}: expected conv [F,C,kh,kw] or dense [F,C]")


def dense_sparsity(shape: tuple[int, ...]) -> Sparsity:
    return Sparsity("dense", (), np.ones(shape, dtype=bool))


@dataclass(frozen=True)
class Tiling:
    """Blocks of `bf` filters x `bc` channels over W[F, C, ...]; the last block along each axis
    holds the remainder when F or C does not divide."""

    f_starts: np.ndarray  # [nbf + 1] block boundaries over filters
    c_starts: np.ndarray  # [nbc + 1] block boundaries over channels

    @staticmethod
    def of(f: int, c: int, bf: int, bc: int) -> Tiling:
        return Tiling(
            np.append(np.arange(0, f, bf), f).astype(np.int64),
            np.append(np.arange(0, c, bc), c).astype(np.int64),
        )

    @property
    def f_sizes(self) -> np.ndarray:
        return np.diff(self.f_starts)

    @property
    def c_sizes(self) -> np.ndarray:
        return np.diff(self.c_starts)

    def sum(self, x: np.ndarray) -> np.ndarray:
        """x[F, C, ...] summed over each block -> [nbf, nbc, ...]."""
        s = np.add.reduceat(x, self.f_starts[:-1], axis=0)
        return np.add.reduceat(s, self.c_starts[:-1], axis=1)

    def expand(self, g: np.ndarray) -> np.ndarray:
        """Block-level g[nbf, nbc, ...] broadcast back to [F, C, ...]."""
        return np.repeat(np.repeat(g, self.f_sizes, axis=0), self.c_sizes, axis=1)

    def block_sizes(self) -> np.ndarray:
        """[nbf, nbc]: filters x channels of each block."""
        return np.outer(self.f_sizes, self.c_sizes)


def select_groups(scores: np.ndarray, sizes: np.ndarray, target: float) -> np.ndarray:
    """Keep the highest-scoring groups whose total size comes closest to `target` weights
    (at least one group, never a group of score 0; ties broken deterministically). Returns a
    bool array of scores' shape. This is the per-layer percentile threshold, weighted by group
    size so that remainder blocks count for what they hold."""
    flat = scores.reshape(-1)
    sz = np.broadcast_to(sizes, scores.shape).reshape(-1)
    keep = np.zeros(flat.shape, dtype=bool)
    positive = int(np.count_nonzero(flat > 0))
    if positive == 0:
        return keep.reshape(scores.shape)
    if sz.size and (sz == sz[0]).all():  # equal groups: a partial sort finds the top n
        n = min(max(int(np.floor(target / sz[0] + 0.5)), 1), positive)
        keep[np.argpartition(-flat, n - 1)[:n]] = True
        return keep.reshape(scores.shape)
    order = np.argsort(-flat, kind="stable")
    cum = np.cumsum(sz[order][:positive], dtype=np.float64)
    k = int(np.searchsorted(cum, target))  # the first k + 1 groups reach the target
    if k >= positive:
        n = positive
    else:
        under = target - cum[k - 1] if k > 0 else np.inf
        n = k if under < cum[k] - target else k + 1
    keep[order[: max(n, 1)]] = True
    return keep.reshape(scores.shape)


def structure_explains(nnz: np.ndarray, sizes: np.ndarray, total: int) -> np.ndarray | None:
    """Given, per group of a structure, its count of nonzero weights and its size, the kept
    groups (any nonzero) if they explain the zeros: every other weight of a kept group is
    nonzero but for STRAY_ZEROS accidents, and the groups removed amount to at least MIN_RATE.
    None otherwise."""
    sizes = np.broadcast_to(sizes, nnz.shape)
    kept = nnz > 0
    kept_size = int(sizes[kept].sum())
    stray = kept_size - int(nnz.sum())
    if stray > STRAY_ZEROS * kept_size:
        return None
    if kept_size and total / kept_size < MIN_RATE:
        return None
    return kept


def positive_int(scheme: str, key: str, value: Any, lo: int = 1, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise PruneError(f"{scheme}: parameter {key}={value!r} must be an integer")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise PruneError(f"{scheme}: parameter {key}={value!r} must be {bound}")
    return v


class Scheme:
    """One pruning scheme. Subclasses define the structure; every method takes W in the IR
    layout (see the module docstring) and the conv's group count."""

    name: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]] = {}  # projection parameters and their defaults

    def unfit(self, shape: tuple[int, ...], groups: int = 1) -> str | None:
        """Why this scheme cannot apply to a layer with weights of `shape` (None: it can)."""
        return None

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The projection parameters: defaults overridden by `given`, checked."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            accepted = ", ".join(self.defaults) or "none"
            raise PruneError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; accepted: {accepted}"
            )
        merged = {**self.defaults, **given}
        self.check_params(merged)
        return merged

    def check_params(self, params: dict[str, Any]) -> None:
        """Validate (and normalise in place) merged parameters."""

    def project(self, w: np.ndarray, rate: float, groups: int = 1, **params: Any) -> Sparsity:
        """One-shot magnitude projection of W to this scheme at `rate`: the keep-mask and the
        structure's parameters. Rate 1 returns a dense Sparsity."""
        r = check_rate(rate)
        why = self.unfit(w.shape, groups)
        if why is not None:
            raise PruneError(f"{self.name} pruning does not apply: {why}")
        p = self.params(params)
        if r == 1.0:
            return dense_sparsity(w.shape)
        return self._project(np.asarray(w, dtype=np.float32), r, p)

    def detect(self, w: np.ndarray, groups: int = 1) -> Sparsity | None:
        """The structure of W's zeros if it is this scheme (with the parameters found), else
        None. Weights that are only zero where pruned give their structure back exactly."""
        if self.unfit(w.shape, groups) is not None:
            return None
        return self._detect(np.asarray(w))

    def pack(self, w: np.ndarray, sp: Sparsity) -> Any:
        """The compressed storage of W under `sp` (a scheme-specific dataclass with unpack())."""
        raise NotImplementedError

    def stats(self, sp: Sparsity) -> dict[str, Any]:
        """JSON-able statistics of the structure (histograms, occupancy)."""
        return {}

    def group_ids(self, shape: tuple[int, ...], **params: Any) -> np.ndarray:
        """For group regularisation (group lasso, ADMM): an int array of W's shape naming the
        group each weight belongs to; a group is what the scheme keeps or removes together."""
        raise NotImplementedError

    def _project(self, w: np.ndarray, rate: float, params: dict[str, Any]) -> Sparsity:
        raise NotImplementedError

    def _detect(self, w: np.ndarray) -> Sparsity | None:
        raise NotImplementedError


def make_sparsity(scheme: str, mask: np.ndarray, **params: Any) -> Sparsity:
    return Sparsity(scheme, tuple(params.items()), np.ascontiguousarray(mask, dtype=bool))
