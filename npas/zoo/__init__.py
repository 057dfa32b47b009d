"""Model zoo: standard CNNs defined in PyTorch, with deterministic weights, exported to ONNX.

Importing this package does not import torch; `export` and `get` do.
"""

from __future__ import annotations

import os
from pathlib import Path

import npas
from npas import knobs
from npas.errors import NpasError
from npas.zoo.registry import MODELS, ModelSpec

__all__ = ["describe", "export", "get", "list_models"]

_OPSETS = range(13, 21)  # 13: Resize/Clip/Split in their modern form; 20: the exporter's last


def list_models() -> list[str]:
    """Names of the zoo's models."""
    return list(MODELS)


def describe(name: str) -> str:
    """One-line description of a model (without its name) and its default input shape."""
    spec = _spec(name)
    return f"{spec.description}; input {'x'.join(map(str, spec.input_shape))} (N symbolic)"


def export(
    name: str,
    path: str | os.PathLike[str],
    *,
    opset: int = 17,
    seed: int = 0,
    input_size: int | tuple[int, int] | None = None,
) -> Path:
    """Export zoo model `name` to ONNX at `path` (written atomically) and return the path.

    Weights are a deterministic function of (name, seed, input_size). The input is "input",
    NCHW with a symbolic batch "N"; the output is "output". `input_size` is H or (H, W),
    defaulting to the model's standard size.
    """
    from npas.zoo import exporter  # imports torch

    spec = _spec(name)
    hw = _input_size(spec, input_size)
    if opset not in _OPSETS:
        raise NpasError(
            f"zoo export of {name!r}: opset {opset} is not supported; use {_OPSETS.start}.."
            f"{_OPSETS.stop - 1} (default 17)."
        )
    model = exporter.build(spec, hw, seed)
    return exporter.to_onnx(model, hw, Path(path), opset)


def get(
    name: str,
    *,
    opset: int = 17,
    seed: int = 0,
    input_size: int | tuple[int, int] | None = None,
) -> Path:
    """Path of a cached export of `name` under the npas cache dir, exporting on first use."""
    hw = _input_size(_spec(name), input_size)
    key = f"{name}-opset{opset}-seed{seed}-{hw[0]}x{hw[1]}-npas{npas.__version__}.onnx"
    path = Path(knobs.CACHE_DIR.get()) / "zoo" / key
    if path.exists() and not knobs.NO_CACHE.flag():
        return path
    return export(name, path, opset=opset, seed=seed, input_size=hw)


def _spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise NpasError(
            f"unknown zoo model {name!r}; valid names: {', '.join(MODELS)}. "
            "`npasc zoo list` describes them."
        ) from None


def _input_size(spec: ModelSpec, input_size: int | tuple[int, int] | None) -> tuple[int, int]:
    if input_size is None:
        return spec.input_shape[2], spec.input_shape[3]
    if isinstance(input_size, int):
        return input_size, input_size
    h, w = input_size
    return int(h), int(w)
