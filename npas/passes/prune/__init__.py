"""Pruning: the schemes (filter, pattern, block-punched, block, unstructured) as numpy
definitions - projection, detection, packed storage, statistics, groups - plus the IR passes
(annotate_sparsity, shrink_filters), per-layer prune configs, and the ONNX-to-ONNX one-shot
pruner `prune_onnx`.

`prune_onnx` is imported lazily (it needs onnx); the scheme definitions (base.py, the scheme
modules, registry.py) are numpy only, so the training side can reuse them."""

from __future__ import annotations

from typing import Any

from .annotate import annotate_sparsity, pruning_pass, sparsity_report
from .base import MIN_RATE, NPAS_RATES, STRAY_ZEROS, PruneError, Scheme, rate_of
from .config import PruneConfig, load_prune_config
from .registry import DETECTION_ORDER, SCHEMES, detect, get_scheme, pack, project, stats
from .shrink import shrink_filters

__all__ = [
    "DETECTION_ORDER", "MIN_RATE", "NPAS_RATES", "SCHEMES", "STRAY_ZEROS", "PruneConfig",
    "PruneError", "Scheme", "annotate_sparsity", "detect", "get_scheme", "load_prune_config",
    "pack", "project", "prune_onnx", "pruning_pass", "rate_of", "shrink_filters",
    "sparsity_report", "stats",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name == "prune_onnx":
        from .onnx_prune import prune_onnx

        return prune_onnx
    raise AttributeError(f"module 'npas.passes.prune' has no attribute {name!r}")
