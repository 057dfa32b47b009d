"""npas: compiler-aware pruning and code generation for CNNs on mobile CPUs and GPUs."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from npas.errors import ModelError, NpasError, ShapeError, ToolchainError, UnsupportedOpError

# Lazy exports: `import npas` stays cheap and never loads torch, onnxruntime or the native
# runtime; the first use of one of these names imports its module.
_LAZY = {
    "compile": ("npas.api", "compile"),
    "load": ("npas.runtime.compiled", "load"),
    "CompiledModel": ("npas.runtime.compiled", "CompiledModel"),
    "BenchmarkResult": ("npas.runtime.compiled", "BenchmarkResult"),
    "prune_onnx": ("npas.passes.prune.onnx_prune", "prune_onnx"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'npas' has no attribute {name!r}")


__all__ = [
    "BenchmarkResult",
    "CompiledModel",
    "ModelError",
    "NpasError",
    "ShapeError",
    "ToolchainError",
    "UnsupportedOpError",
    "__version__",
    "compile",
    "load",
    "prune_onnx",
]
