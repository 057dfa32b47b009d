"""PyTorch side of npas: pruning-aware training with the compiler's own scheme definitions.

    model, report = npas.train.prune(model, {"layer1.*": ("pattern", 6.0)}, train, val,
                                     method="rgl", epochs=10)
    npas.train.export_onnx(model, "pruned.onnx", example)   # zeros npas detects

Masks and projections come from npas/passes/prune (numpy); this package adds the torch
plumbing: ONNX <-> torch (onnx_torch.py), per-layer configs (config.py), fixed masks
(masks.py), the algorithms - one-shot, reweighted group lasso, ADMM (algorithms.py) -, the
training loop with resumable checkpoints (trainer.py), data (data.py) and a small residual CNN
for the digits task (models.py). Importing the package is cheap; its names import torch on
first use.
"""

from __future__ import annotations

from typing import Any

# Lazy exports, so that `npas.train.cli` (which `npasc` imports to build its parser) loads
# without torch; the first use of one of these names imports its module.
_LAZY = {
    "METHODS": "algorithms",
    "LayerReport": "api", "PruneReport": "api", "export_onnx": "api", "fit": "api",
    "prune": "api",
    "LayerPrune": "config", "PruneSpec": "config",
    "Split": "data", "digits": "data", "image_folder": "data",
    "DigitsResNet": "models",
    "OnnxModule": "onnx_torch", "write_onnx": "onnx_torch",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npas.train' has no attribute {name!r}")


__all__ = [
    "METHODS", "DigitsResNet", "LayerPrune", "LayerReport", "OnnxModule", "PruneReport",
    "PruneSpec", "Split", "digits", "export_onnx", "fit", "image_folder", "prune", "write_onnx",
]  # fmt: skip
