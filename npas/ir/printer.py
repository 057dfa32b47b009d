"""The readable text form of a Graph (`npasc inspect --ir`, and what pass tests compare).

    graph tiny (opset 13)
      inputs: x[1,3,8,8]
      conv1: conv2d(x[1,3,8,8], @conv1.W[4,3,3,3], @conv1.B[4]) -> y[1,4,8,8]  k=3x3 s=1x1 ...
      outputs: y[1,4,8,8]

One line per layer; constants are `@name[shape]`; attrs equal to their default are left out
(kernel, stride and pads always shown); the epilogue reads `+residual +relu`. Deterministic: the
same graph always prints the same text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .attrs import Activation, Epilogue, UnaryAttrs
from .graph import Graph, Layer, Schedule, Sparsity
from .ops import Op

# short names for the attrs that every conv/pool line carries
_SHORT = {"kernel": "k", "stride": "s", "pads": "p", "dilation": "d", "groups": "g"}
_ALWAYS = {"kernel", "stride", "pads"}
_PAIRS = {"kernel", "stride", "dilation", "output_padding"}  # printed as HxW


def fmt_float(v: float) -> str:
    return f"{float(v):.6g}"


def _fmt_value(key: str, v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, tuple):
        sep = "x" if key in _PAIRS else ","
        if any(isinstance(e, tuple) for e in v):  # a pattern library: ((0,1,4,5),(1,3,4,7))
            return "(" + ",".join(f"({_fmt_value(key, e)})" for e in v) + ")"
        return sep.join(_fmt_value(key, e) for e in v)
    if isinstance(v, Op):
        return v.value
    return str(v)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _operand(graph: Graph, name: str) -> str:
    v = graph.values.get(name)
    if v is None:
        return f"{name}[?]"
    return f"{'@' if v.is_const else ''}{name}{_shape(v.shape)}"


def format_unary(op: Op, alpha: float, beta: float) -> str:
    """The parameters of a unary op as `key=value` words (empty when it has none)."""
    if op is Op.CLIP:
        return f"min={fmt_float(alpha)} max={fmt_float(beta)}"
    if op in (Op.LEAKY_RELU, Op.ELU):
        return f"alpha={fmt_float(alpha)}"
    if op is Op.HARDSIGMOID:
        return f"alpha={fmt_float(alpha)} beta={fmt_float(beta)}"
    return ""


def format_attrs(op: Op, attrs: Any) -> str:
    if isinstance(attrs, UnaryAttrs):
        return format_unary(op, attrs.alpha, attrs.beta)
    if not dataclasses.is_dataclass(attrs):
        return ""
    words = []
    for f in dataclasses.fields(attrs):
        v = getattr(attrs, f.name)
        if f.name not in _ALWAYS and f.default is not dataclasses.MISSING and v == f.default:
            continue
        if f.name == "cubic_coeff_a":  # npas has no cubic mode; the field is ONNX's
            continue
        words.append(f"{_SHORT.get(f.name, f.name)}={_fmt_value(f.name, v)}")
    return " ".join(words)


def format_activation(act: Activation) -> str:
    params = [
        fmt_float(p)
        for p, used in (
            (act.alpha, act.op in (Op.CLIP, Op.LEAKY_RELU, Op.ELU, Op.HARDSIGMOID)),
            (act.beta, act.op in (Op.CLIP, Op.HARDSIGMOID)),
        )
        if used
    ]
    return f"+{act.op.value}" + (f"({','.join(params)})" if params else "")


def format_epilogue(ep: Epilogue) -> str:
    words = []
    if ep.residual:
        words.append("+residual")
    if ep.act is not None:
        words.append(format_activation(ep.act))
    return " ".join(words)


def format_sparsity(sp: Sparsity) -> str:
    params = [f"{k}={_fmt_value(k, v)}" for k, v in sp.params]
    if sp.mask is not None and sp.mask.size:
        params.append(f"density={float(np.count_nonzero(sp.mask)) / sp.mask.size:.3f}")
    return f"sparsity={sp.scheme}" + (f"({','.join(params)})" if params else "")


def format_schedule(sc: Schedule) -> str:
    params = [f"{k}={_fmt_value(k, v)}" for k, v in sc.params]
    return f"kernel={sc.kernel}" + (f"({','.join(params)})" if params else "")


def format_layer(graph: Graph, layer: Layer) -> str:
    ins = ", ".join(_operand(graph, n) for n in layer.inputs)
    outs = ", ".join(_operand(graph, n) for n in layer.outputs)
    tail = [format_attrs(layer.op, layer.attrs), format_epilogue(layer.epilogue)]
    if layer.sparsity is not None:
        tail.append(format_sparsity(layer.sparsity))
    if layer.schedule is not None:
        tail.append(format_schedule(layer.schedule))
    extra = " ".join(t for t in tail if t)
    return f"{layer.name}: {layer.op.value}({ins}) -> {outs}" + (f"  {extra}" if extra else "")


def format_graph(graph: Graph) -> str:
    """The whole graph, one line per layer, ending with a newline."""
    lines = [f"graph {graph.name} (opset {graph.opset})"]
    lines.append("  inputs: " + ", ".join(_operand(graph, n) for n in graph.inputs))
    lines.extend("  " + format_layer(graph, layer) for layer in graph.layers)
    lines.append("  outputs: " + ", ".join(_operand(graph, n) for n in graph.outputs))
    return "\n".join(lines) + "\n"
