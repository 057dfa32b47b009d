"""npas: compiler-aware pruning and code generation for CNNs on mobile CPUs and GPUs."""

from __future__ import annotations

__version__ = "0.1.0"

from npas.errors import ModelError, NpasError, ShapeError, ToolchainError, UnsupportedOpError

__all__ = [
    "ModelError",
    "NpasError",
    "ShapeError",
    "ToolchainError",
    "UnsupportedOpError",
    "__version__",
]
