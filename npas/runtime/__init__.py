"""Running compiled models: CompiledModel (in this process), load(), and devices/ (qemu,
ssh, adb) through DeviceModel."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "BenchmarkResult",
    "CompiledModel",
    "InstructionCountResult",
    "ModelBase",
    "TensorSpec",
    "load",
}


def __getattr__(name: str) -> Any:
    # Lazy: `import npas.runtime` must not load numpy-heavy code or the native module.
    if name in _EXPORTS:
        from npas.runtime import compiled

        return getattr(compiled, name)
    raise AttributeError(f"module 'npas.runtime' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
