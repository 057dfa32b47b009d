"""load_onnx: read an ONNX model and convert it into an npas IR Graph with static shapes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from npas.errors import ModelError, ShapeError, UnsupportedOpError
from npas.ir import Graph, Layer, Op, Value
from npas.ir.interp import run_layer
from npas.ir.verify import verify

from . import registry
from .context import Context, Node

_DEFAULT_DOMAINS = ("", "ai.onnx")


def _read_model(model: str | Path | bytes | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        return model, model.graph.name or "model"
    if isinstance(model, bytes):
        where = "the given bytes"
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(model)
        except (DecodeError, RuntimeError, ValueError) as e:
            raise ModelError(f"{where} are not an ONNX model ({e})") from None
        name = proto.graph.name or "model"
    else:
        path = Path(model)
        where = str(path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}; check the path")
        try:
            proto = onnx.load(str(path))
        except (DecodeError, RuntimeError, ValueError, OSError) as e:
            raise ModelError(
                f"{path} is not a readable ONNX model ({type(e).__name__}: {e}); the file may "
                "be truncated or in another format - re-export it"
            ) from None
        name = path.stem
    if not proto.HasField("graph") or proto.ir_version <= 0 or not proto.opset_import:
        raise ModelError(
            f"{where} is not an ONNX model (no graph, IR version or opset); the file may be "
            "truncated or in another format - re-export it"
        )
    return proto, name


def _opset(proto: onnx.ModelProto) -> int:
    for imp in proto.opset_import:
        if imp.domain in _DEFAULT_DOMAINS:
            return int(imp.version)
    raise ModelError("the model imports no default-domain (ai.onnx) opset")


def _input_shape(vi: onnx.ValueInfoProto, given: tuple[int, ...] | None) -> tuple[int, ...]:
    name = vi.name
    tt = vi.type.tensor_type
    hint = (
        f"pass --input-shape {name}=1x3x224x224 (Python: "
        f"load_onnx(..., input_shapes={{{name!r}: (1, 3, 224, 224)}})) with the real shape"
    )
    if given is not None:
        if tt.HasField("shape") and len(tt.shape.dim) != len(given):
            raise ShapeError(
                f"input {name!r}: given shape {list(given)} has rank {len(given)}, the model "
                f"declares rank {len(tt.shape.dim)}"
            )
        if any(d < 1 for d in given):
            raise ShapeError(f"input {name!r}: given shape {list(given)} has a dim < 1")
        return tuple(int(d) for d in given)
    if not tt.HasField("shape"):
        raise ShapeError(f"input {name!r} has no declared shape; {hint}")
    dims = []
    for i, d in enumerate(tt.shape.dim):
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        elif i == 0:
            dims.append(1)  # a symbolic batch compiles as batch 1
        else:
            sym = d.dim_param or "?"
            raise ShapeError(f"input {name!r}: dim {i} is dynamic ({sym!r}); {hint}")
    return tuple(dims)


def _node_names(proto: onnx.GraphProto) -> list[str]:
    """ONNX names kept as-is; unnamed nodes become <op_type>_<index>; a repeated name gets
    _<index> appended so every layer name is unique."""
    names, seen = [], set()
    for i, node in enumerate(proto.node):
        name = node.name or f"{node.op_type}_{i}"
        if name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        names.append(name)
    return names


def _fold_by_interp(cx: Context, node: Node, start: int) -> None:
    """All inputs were constants and the node has no numpy folder: evaluate the layers its
    converter just emitted and keep only the results, as constants."""
    g = cx.graph
    emitted = g.layers[start:]
    del g.layers[start:]
    env: dict[str, np.ndarray] = {}
    for layer in emitted:
        args = [
            env[n] if n in env else np.asarray(g.values[n].data, np.float32) for n in layer.inputs
        ]
        outs = run_layer(layer, args, [g.shape(o) for o in layer.outputs])
        env.update(zip(layer.outputs, outs, strict=False))
    for out in node.outputs:
        if not out:
            continue
        ir = cx.ir_name(out)
        arr = env[ir] if ir in env else g.values[ir].data
        assert arr is not None
        cx.set_const(out, arr)
    for layer in emitted:
        cx.layer_names.discard(layer.name)
        for o in layer.outputs:
            g.values.pop(o, None)


def _convert_node(cx: Context, node: Node) -> None:
    if node.domain not in _DEFAULT_DOMAINS:
        raise UnsupportedOpError(
            node.op_type, node.name, node.opset,
            f"custom operator of domain {node.domain!r}; npas converts ai.onnx operators only",
        )  # fmt: skip
    entry = registry.lookup(node.op_type, node.opset)
    if entry is None:
        first = registry.first_opset(node.op_type)
        if first is not None:
            raise node.unsupported(f"npas converts {node.op_type} from opset {first}")
        raise UnsupportedOpError(
            node.op_type, node.name, node.opset,
            "npas has no converter for it (npas.frontend.supported_ops() lists those it has); "
            "express that part of the model with supported operators and re-export",
        )  # fmt: skip
    present = [n for n in node.inputs if n]
    all_const = all(cx.is_const(n) for n in present)
    if entry.fold is not None and (all_const or entry.shape_only):
        outs = entry.fold(cx, node)
        for name, arr in zip(node.outputs, outs, strict=False):
            if name:
                cx.set_const(name, arr)
        return
    if entry.convert is None:
        raise node.unsupported(
            "npas evaluates it only at load time, when all its inputs are constants "
            "(shape computations); here it depends on run-time data"
        )
    start = len(cx.graph.layers)
    entry.convert(cx, node)
    if all_const and present:
        _fold_by_interp(cx, node, start)


def _finish_outputs(cx: Context, proto: onnx.GraphProto) -> list[str]:
    """Every graph output must be an IR activation under its ONNX name: aliased outputs and
    constant outputs get an IDENTITY layer (the identity-removal pass renames producers)."""
    g = cx.graph
    outputs = []
    for vi in proto.output:
        name = vi.name
        src_const = cx.consts.get(name)
        ir = cx.ir_name(name)
        if src_const is None and ir == name and name in g.values and not g.values[name].is_const:
            outputs.append(name)
            continue
        if src_const is not None:
            if name in g.values:  # a layer reads the constant under this name: move it
                moved = cx.add_const(f"{name}/const", np.asarray(src_const, np.float32))
                g.layers = [_rename_inputs(layer, name, moved) for layer in g.layers]
                del g.values[name]
            src = cx.add_const(f"{name}/const", np.asarray(src_const, np.float32))
        else:
            if ir not in g.values:
                raise ModelError(f"graph output {name!r} is never computed")
            src = ir
        cx.consts.pop(name, None)
        cx.alias.pop(name, None)
        layer_name = cx.fresh_layer(f"{name}/output")
        g.values[name] = Value(name, g.shape(src))
        g.layers.append(Layer(Op.IDENTITY, layer_name, (src,), (name,)))
        cx.layer_names.add(layer_name)
        outputs.append(name)
    return outputs


def _rename_inputs(layer: Layer, old: str, new: str) -> Layer:
    if old not in layer.inputs:
        return layer
    return layer.with_(inputs=tuple(new if n == old else n for n in layer.inputs))


def load_onnx(
    model: str | Path | bytes | onnx.ModelProto,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> Graph:
    """Convert an ONNX model (path, serialized bytes or ModelProto) into an npas IR Graph.

    `input_shapes` fixes graph input shapes by name; without it a symbolic first (batch) dim
    becomes 1 and any other dynamic dim is an error. Raises ModelError, UnsupportedOpError or
    ShapeError with a message saying what, where and what to do."""
    proto, name = _read_model(model)
    opset = _opset(proto)
    if not registry.MIN_OPSET <= opset <= registry.MAX_OPSET:
        raise ModelError(
            f"the model uses opset {opset}; npas supports opsets {registry.MIN_OPSET}-"
            f"{registry.MAX_OPSET}. Convert it with onnx.version_converter.convert_version("
            f"model, {min(max(opset, registry.MIN_OPSET), registry.MAX_OPSET)}) or re-export it"
        )
    gp = proto.graph
    cx = Context(Graph(name, [], [], [], {}, opset))
    for init in gp.initializer:
        cx.consts[init.name] = numpy_helper.to_array(init)
    if len(gp.sparse_initializer):
        raise ModelError("sparse initializers are not supported; store the weights densely")
    cx.used = {n for node in gp.node for n in node.input if n} | {o.name for o in gp.output}
    shapes = dict(input_shapes or {})
    real_inputs = [vi for vi in gp.input if vi.name not in cx.consts]
    unknown = set(shapes) - {vi.name for vi in real_inputs}
    if unknown:
        raise ShapeError(
            f"input_shapes names {sorted(unknown)}, but the model's inputs are "
            f"{[vi.name for vi in real_inputs]}"
        )
    for vi in real_inputs:
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else None
        if elem != onnx.TensorProto.FLOAT:
            if vi.name not in cx.used:
                continue  # an unused non-float input does not matter
            kind = onnx.TensorProto.DataType.Name(elem) if elem else "not a tensor"
            raise ModelError(
                f"graph input {vi.name!r} is {kind}; npas compiles float32 models, so every "
                "input that carries data must be float32 (convert the model, or fold the input "
                "into an initializer if it is a fixed parameter)"
            )
        shape = _input_shape(vi, shapes.get(vi.name))
        cx.graph.values[vi.name] = Value(vi.name, shape)
        cx.graph.inputs.append(vi.name)
    for index, (node_proto, node_name) in enumerate(zip(gp.node, _node_names(gp), strict=False)):
        node = Node.from_proto(node_proto, index, opset, node_name)
        try:
            _convert_node(cx, node)
        except (ModelError, ShapeError):
            raise
        except (KeyError, ValueError, IndexError, TypeError) as e:
            raise node.error(f"could not convert it ({type(e).__name__}: {e})") from e
    cx.graph.outputs = _finish_outputs(cx, gp)
    cx.graph.prune_values()
    verify(cx.graph)
    return cx.graph
