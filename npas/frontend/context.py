"""What a converter sees: a parsed ONNX node (`Node`) and the graph under construction (`Context`).

An ONNX tensor is, at load time, either a constant (a numpy array of any dtype, e.g. the int64
results of a Shape->Gather->Concat chain) or an IR activation (float32, static shape). Converters
ask `cx.const(...)` / `cx.act(...)` and emit IR layers with `cx.emit(...)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from npas.errors import ModelError, ShapeError, UnsupportedOpError
from npas.ir import Epilogue, Graph, Layer, NoAttrs, Op, Value
from npas.ir.shapes import infer_shapes


def _attr_value(attr: onnx.AttributeProto) -> Any:
    v = onnx.helper.get_attribute_value(attr)
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [s.decode("utf-8") for s in v]
    return v


@dataclass
class Node:
    """One ONNX node with its attributes decoded to Python values."""

    name: str
    op_type: str
    inputs: list[str]  # "" marks an omitted optional input
    outputs: list[str]
    attrs: dict[str, Any]
    index: int
    opset: int
    domain: str = ""

    @staticmethod
    def from_proto(proto: onnx.NodeProto, index: int, opset: int, name: str) -> Node:
        return Node(
            name=name,
            op_type=proto.op_type,
            inputs=list(proto.input),
            outputs=list(proto.output),
            attrs={a.name: _attr_value(a) for a in proto.attribute},
            index=index,
            opset=opset,
            domain=proto.domain,
        )

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def input(self, i: int) -> str | None:
        """Name of input i, or None when it is omitted."""
        return self.inputs[i] if i < len(self.inputs) and self.inputs[i] else None

    def unsupported(self, detail: str) -> UnsupportedOpError:
        return UnsupportedOpError(self.op_type, self.name, self.opset, detail)

    def error(self, msg: str) -> ModelError:
        return ModelError(f"{self.op_type} node {self.name!r} (opset {self.opset}): {msg}")


@dataclass
class Context:
    """The IR graph being built plus the load-time constants of the ONNX graph."""

    graph: Graph
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # ONNX name -> array, any dtype
    alias: dict[str, str] = field(default_factory=dict)  # ONNX name -> IR activation name
    layer_names: set[str] = field(default_factory=set)
    used: set[str] = field(default_factory=set)  # ONNX names some node reads, plus outputs

    # ---- queries ----
    def is_const(self, name: str | None) -> bool:
        return name is not None and name in self.consts

    def const(self, name: str) -> np.ndarray:
        return self.consts[name]

    def shape(self, name: str) -> tuple[int, ...]:
        if name in self.consts:
            return tuple(self.consts[name].shape)
        return self.graph.shape(self.ir_name(name))

    def ir_name(self, name: str) -> str:
        return self.alias.get(name, name)

    def require_const(self, node: Node, i: int, what: str) -> np.ndarray | None:
        """The constant value of input i (None when omitted); an error if it is computed at
        run time, because npas compiles static graphs."""
        name = node.input(i)
        if name is None:
            return None
        if name not in self.consts:
            raise node.unsupported(
                f"input {i} ({what}) {name!r} must be a constant (an initializer, a Constant "
                "node or computable from static shapes); npas compiles static graphs"
            )
        return self.consts[name]

    def act(self, name: str) -> str:
        """IR value name for ONNX tensor `name`; a constant is registered as a float32 IR
        constant on first use as an operand."""
        if name in self.consts:
            ir = self.alias.get(name)
            if ir is None or ir not in self.graph.values:
                ir = self.graph.add_const(name, np.asarray(self.consts[name], dtype=np.float32))
                self.alias[name] = ir
            return ir
        ir = self.ir_name(name)
        if ir not in self.graph.values:
            raise ModelError(f"tensor {name!r} is used before any node computes it")
        return ir

    # ---- construction ----
    def fresh_value(self, base: str) -> str:
        name, i = base, 0
        while name in self.graph.values or name in self.consts:
            i += 1
            name = f"{base}_{i}"
        return name

    def fresh_layer(self, base: str) -> str:
        name, i = base, 0
        while name in self.layer_names:
            i += 1
            name = f"{base}_{i}"
        return name

    def add_const(self, base: str, data: np.ndarray) -> str:
        """A new float32 IR constant (e.g. a transformed weight), named after `base`."""
        name = self.fresh_value(base)
        self.graph.values[name] = Value(
            name, tuple(np.shape(data)), "float32", np.array(data, dtype=np.float32, order="C")
        )
        return name

    def emit(
        self,
        node: Node,
        op: Op,
        inputs: Sequence[str],
        outputs: Sequence[str] | None = None,
        attrs: Any = None,
        epilogue: Epilogue | None = None,
        suffix: str | None = None,
    ) -> list[str]:
        """Append one IR layer. The first layer a node emits takes the node's name (pruning
        configs refer to it); helpers get `<node>/<suffix>`. `outputs` default to fresh names;
        ONNX output names are bound as given. Returns the output names."""
        base = node.name if suffix is None else f"{node.name}/{suffix}"
        name = self.fresh_layer(base)
        if outputs is None:
            outputs = [self.fresh_value(f"{node.name}/{suffix or op.value}")]
        else:
            outputs = [self._claim_output(o) for o in outputs]
        layer = Layer(
            op, name, tuple(inputs), tuple(outputs), attrs if attrs is not None else NoAttrs(),
            epilogue if epilogue is not None else Epilogue(),
        )  # fmt: skip
        try:
            shapes = infer_shapes(layer, self.graph)
        except ShapeError as e:
            raise node.error(f"{e}; check the model's shapes and --input-shape") from None
        for out, shape in zip(outputs, shapes, strict=False):
            self.graph.values[out] = Value(out, shape)
        self.graph.layers.append(layer)
        self.layer_names.add(name)
        return list(outputs)

    def _claim_output(self, name: str) -> str:
        # an ONNX output name normally is new; a clash (a constant under the same name that
        # is already an IR operand) gets a fresh IR name and an alias
        if name in self.graph.values:
            ir = self.fresh_value(name)
            self.alias[name] = ir
            return ir
        self.alias.pop(name, None)
        self.consts.pop(name, None)
        return name

    def bind(self, onnx_name: str, ir_name: str) -> None:
        """Make ONNX tensor `onnx_name` refer to existing IR value `ir_name` (Identity etc.)."""
        self.consts.pop(onnx_name, None)
        self.alias[onnx_name] = ir_name

    def set_const(self, onnx_name: str, data: np.ndarray) -> None:
        self.alias.pop(onnx_name, None)
        self.consts[onnx_name] = np.asarray(data)


# A registry entry's functions: a converter emits IR layers for a node; a folder computes the
# node's outputs at load time when its inputs are constants.
Converter = Callable[[Context, Node], None]
Folder = Callable[[Context, Node], list[np.ndarray]]
