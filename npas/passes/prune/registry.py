"""The pruning schemes by name, and the scheme-independent entry points: project, detect,
pack, stats."""

from __future__ import annotations

from typing import Any

import numpy as np

from npas.ir.graph import Sparsity

from .base import MIN_RATE, PruneError, Scheme, as_4d, rate_of
from .block import Block
from .block_punched import BlockPunched
from .filter import Filter
from .pattern import Pattern
from .unstructured import Unstructured

SCHEMES: dict[str, Scheme] = {
    s.name: s for s in (Filter(), Pattern(), BlockPunched(), Block(), Unstructured())
}
# What a layer's zeros are tested against, most structured first: the first scheme whose
# structure explains the zeros names the layer. Block-punched before block: on a 1x1 layer a
# bf x bc (bc >= 2) tiling is the stronger statement.
DETECTION_ORDER = ("filter", "block-punched", "pattern", "block", "unstructured")


def get_scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise PruneError(f"unknown pruning scheme {name!r}; known: {', '.join(SCHEMES)}") from None


def project(w: np.ndarray, scheme: str, rate: float, groups: int = 1, **params: Any) -> Sparsity:
    """One-shot magnitude projection of W (IR layout) to `scheme` at `rate`."""
    return get_scheme(scheme).project(w, rate, groups, **params)


def detect(w: np.ndarray, groups: int = 1) -> Sparsity | None:
    """The pruning structure W's zeros follow, or None for a dense layer."""
    as_4d(w)  # a shape check
    if rate_of(np.asarray(w) != 0) < MIN_RATE:
        return None
    for name in DETECTION_ORDER:
        sp = SCHEMES[name].detect(w, groups)
        if sp is not None:
            return sp
    return None


def pack(w: np.ndarray, sp: Sparsity) -> Any:
    """The compressed storage of W under `sp` (unpack() gives W * mask back)."""
    return get_scheme(sp.scheme).pack(w, sp)


def stats(sp: Sparsity) -> dict[str, Any]:
    """rate plus the scheme's own statistics, JSON-able."""
    assert sp.mask is not None
    out: dict[str, Any] = {"scheme": sp.scheme, "rate": rate_of(sp.mask)}
    if sp.scheme in SCHEMES:
        out.update(SCHEMES[sp.scheme].stats(sp))
    return out
