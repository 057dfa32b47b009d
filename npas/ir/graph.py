"""Graph, Layer and Value: the npas IR. Layers are frozen; passes build new graphs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .attrs import Epilogue, NoAttrs
from .ops import Op


@dataclass(frozen=True)
class Value:
    """A named tensor. Constants carry their data; activations only a static shape."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    data: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class Sparsity:
    """A layer's pruning structure: scheme name, its parameters, and the keep-mask of W."""

    scheme: str  # dense | filter | pattern | block-punched | block | unstructured
    params: tuple[tuple[str, Any], ...] = ()
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class Schedule:
    """Which kernel variant runs a layer, and its tuning parameters (filled late)."""

    kernel: str
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Layer:
    """One IR operation. `inputs` name Values (activations or constants), `outputs` name
    activations. For CONV2D / DENSE the inputs are (x, W, B[, residual])."""

    op: Op
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Any = field(default_factory=NoAttrs)
    epilogue: Epilogue = field(default_factory=Epilogue)
    sparsity: Sparsity | None = None
    schedule: Schedule | None = None

    def with_(self, **changes: Any) -> Layer:
        return replace(self, **changes)

    @property
    def where(self) -> str:
        """How errors name the layer: "layer 'conv1' (conv2d)"."""
        return f"layer {self.name!r} ({self.op.value})"


@dataclass
class Graph:
    """Inputs, outputs, topologically ordered layers and every named Value."""

    name: str
    inputs: list[str]
    outputs: list[str]
    layers: list[Layer]
    values: dict[str, Value]
    opset: int = 0

    # ---- queries ----
    def value(self, name: str) -> Value:
        return self.values[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.values[name].shape

    def const(self, name: str) -> np.ndarray | None:
        return self.values[name].data

    def producers(self) -> dict[str, Layer]:
        return {out: layer for layer in self.layers for out in layer.outputs}

    def consumers(self) -> dict[str, list[Layer]]:
        users: dict[str, list[Layer]] = {}
        for layer in self.layers:
            for name in layer.inputs:
                users.setdefault(name, []).append(layer)
        return users

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    # ---- construction ----
    def copy(self, layers: Iterable[Layer] | None = None) -> Graph:
        """A new graph sharing (immutable) Values; `layers` replaces the layer list."""
        return Graph(
            self.name,
            list(self.inputs),
            list(self.outputs),
            list(self.layers if layers is None else layers),
            dict(self.values),
            self.opset,
        )

    def add_const(self, name: str, data: np.ndarray) -> str:
        """Register a constant under a unique name derived from `name`; returns that name."""
        unique, i = name, 0
        while unique in self.values:
            i += 1
            unique = f"{name}_{i}"
        arr = np.ascontiguousarray(data)
        self.values[unique] = Value(unique, tuple(arr.shape), str(arr.dtype), arr)
        return unique

    def prune_values(self) -> None:
        """Drop Values no layer, input or output refers to."""
        used = set(self.inputs) | set(self.outputs)
        for layer in self.layers:
            used.update(layer.inputs)
            used.update(layer.outputs)
        self.values = {k: v for k, v in self.values.items() if k in used}
