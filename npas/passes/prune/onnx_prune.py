"""One-shot magnitude pruning of an ONNX model into an ONNX model (`npas.prune_onnx`,
`npasc prune`): same graph, only initializers changed, so ONNX Runtime (and any other engine)
runs the result as is, and npas finds the structure again from the zeros alone.

The Conv (Gemm, MatMul) weights themselves are pruned, never a BN-folded copy, so the zeros
survive any later folding. Filter pruning also zeroes the pruned filters' bias entries and,
when a BatchNormalization alone reads the conv, its scale and shift for those channels: the
filter's output channel is then exactly zero, as if the filter were gone (the graph rewrite
that removes it is `shrink.py`)."""

from __future__ import annotations

import fnmatch
import os
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from npas.errors import ModelError
from npas.frontend import load_onnx
from npas.frontend.loader import _node_names, _read_model
from npas.ir import Graph, Layer

from .base import PruneError, rate_of
from .config import first_convs, is_depthwise, load_prune_config, prunable_layers, resolve
from .registry import SCHEMES, project


@dataclass(frozen=True)
class PrunedLayer:
    name: str
    op: str  # the ONNX op: Conv, Gemm, MatMul
    shape: tuple[int, ...]  # the weight in the IR layout
    scheme: str
    rate_asked: float
    rate: float  # reached
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PruneResult:
    """What prune_onnx did: the pruned model, the pruned layers, the matched layers it left
    dense (and why), and where it wrote the model."""

    model: onnx.ModelProto
    layers: list[PrunedLayer]
    skipped: list[tuple[str, str]]
    out: Path | None = None
    weights: int = 0  # of every conv/dense layer of the model
    kept: int = 0

    @property
    def rate(self) -> float:
        """Rate of the whole model's conv/dense weights."""
        return self.weights / self.kept if self.kept else float("inf")

    def summary(self) -> str:
        width = max([len(x.name) for x in self.layers] + [len(n) for n, _ in self.skipped] + [5])
        width = min(width, 64)
        lines = [f"{'layer':<{width}} {'scheme':<14} {'rate':>8}"]
        for x in self.layers:
            lines.append(f"{x.name[-width:]:<{width}} {x.scheme:<14} {x.rate:>7.2f}x")
        for name, why in self.skipped:
            lines.append(f"{name[-width:]:<{width}} {'dense':<14} {1.0:>7.2f}x  ({why})")
        lines.append(
            f"{len(self.layers)} layer(s) pruned; all conv/dense weights: {self.weights} -> "
            f"{self.kept} kept, {self.rate:.2f}x"
        )
        return "\n".join(lines)


def _load(model: Any) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
        return proto
    if isinstance(model, os.PathLike):
        model = str(model)
    return _read_model(model)[0]


class _Weights:
    """The ONNX tensors behind a graph's weights: initializers and Constant outputs."""

    def __init__(self, gp: onnx.GraphProto) -> None:
        self.inits = {t.name: t for t in gp.initializer}
        self.consts = {
            n.output[0]: a
            for n in gp.node
            if n.op_type == "Constant"
            for a in n.attribute
            if a.name == "value"
        }
        self.uses = Counter(name for n in gp.node for name in n.input if name)
        self.uses.update(o.name for o in gp.output)

    def get(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        if name in self.consts:
            return numpy_helper.to_array(self.consts[name].t)
        return None

    def set(self, name: str, arr: np.ndarray) -> None:
        tensor = numpy_helper.from_array(arr, name)
        if name in self.inits:
            self.inits[name].CopyFrom(tensor)
        else:
            self.consts[name].t.CopyFrom(tensor)

    def private(self, name: str) -> np.ndarray | None:
        """The tensor, if stored and read by exactly one node."""
        return self.get(name) if name and self.uses[name] == 1 else None


def _onnx_mask(node: onnx.NodeProto, mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The IR-layout mask in the layout of the ONNX weight tensor."""
    if node.op_type == "Gemm":
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        mask = mask if trans_b else mask.T
    elif node.op_type == "MatMul":
        mask = mask.T
    return mask.reshape(shape)  # a 1-D conv's W[F, C, k] is W[F, C, 1, k] in the IR


def _silence_filters(
    gp: onnx.GraphProto, node: onnx.NodeProto, weights: _Weights, removed: np.ndarray
) -> None:
    """Zero the bias of removed filters and the BN scale/shift that would revive them."""
    bias = node.input[2] if len(node.input) > 2 else ""
    b = weights.private(bias)
    if b is not None and b.ndim == 1 and b.shape[0] == removed.size:
        weights.set(bias, np.where(removed, 0, b).astype(b.dtype))
    readers = [n for n in gp.node if node.output[0] in n.input]
    if len(readers) != 1 or readers[0].op_type != "BatchNormalization":
        return
    bn = readers[0]
    params = [weights.private(name) for name in bn.input[1:3]]
    if any(p is None or p.shape != (removed.size,) for p in params):
        return
    for name, p in zip(bn.input[1:3], params, strict=True):
        assert p is not None
        weights.set(name, np.where(removed, 0, p).astype(p.dtype))


def _write_atomic(proto: onnx.ModelProto, out: Path) -> None:
    if out.is_dir():
        raise PruneError(f"{out} is a directory; give the pruned model's file name")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(proto, str(tmp))
        os.replace(tmp, out)
    except OSError as e:
        raise PruneError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _why_left_dense(graph: Graph, layer: Layer, scheme: str, first: set[str]) -> str:
    if layer.name in first:
        return "first conv; name it exactly to prune it"
    if is_depthwise(graph, layer):
        return "depthwise; name it exactly to prune it"
    groups = int(getattr(layer.attrs, "groups", 1))
    return SCHEMES[scheme].unfit(graph.shape(layer.inputs[1]), groups) or "not selected"


def prune_onnx(
    model: Any,
    scheme: str,
    rate: float,
    layers: str | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    **params: Any,
) -> PruneResult:
    """Prune `model` (an ONNX path, bytes or ModelProto) one-shot by magnitude: every conv/dense
    layer whose name matches `layers` (an ONNX node name or a glob; None = all) gets `scheme`
    at `rate` with scheme parameters `params` (pattern: library_size, entries, library;
    block-punched: bf, bc; block: bf). Layers the scheme does not fit are left dense, and so
    are the first conv and depthwise convs unless named exactly. Writes the pruned model to
    `out` atomically when given; returns a PruneResult (`.summary()` prints per-layer rates)."""
    if scheme not in SCHEMES:
        raise PruneError(f"unknown pruning scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    source = "--layers" if layers is not None else "prune_onnx"
    key = layers if layers is not None else "*"
    entry = {"scheme": scheme, "rate": rate, **params}
    config = load_prune_config({"default": {"scheme": "dense"}, "layers": {key: entry}}, source)
    proto = _load(model)
    graph = load_onnx(proto, input_shapes=input_shapes)
    rules = resolve(config, graph)
    gp = proto.graph
    nodes = dict(zip(_node_names(gp), gp.node, strict=True))
    weights = _Weights(gp)
    first = first_convs(graph)
    done: list[PrunedLayer] = []
    skipped: list[tuple[str, str]] = []
    total = kept = 0
    for layer in prunable_layers(graph):
        w = graph.const(layer.inputs[1])
        assert w is not None
        total += w.size
        rule = rules[layer.name]
        if rule.scheme not in SCHEMES:
            kept += w.size
            if fnmatch.fnmatchcase(layer.name, key):
                skipped.append((layer.name, _why_left_dense(graph, layer, scheme, first)))
            continue
        node = nodes[layer.name]
        arr = weights.private(node.input[1])
        if arr is None:
            kept += w.size
            why = "its weight is shared" if weights.get(node.input[1]) is not None else (
                "its weight is computed, not stored")  # fmt: skip
            skipped.append((layer.name, why))
            continue
        groups = int(getattr(layer.attrs, "groups", 1))
        try:
            sp = project(w, rule.scheme, rule.rate, groups, **rule.params)
        except PruneError as e:
            raise PruneError(f"{layer.where}: {e}") from None
        assert sp.mask is not None
        mask = _onnx_mask(node, sp.mask, arr.shape)
        weights.set(node.input[1], np.where(mask, arr, 0).astype(arr.dtype))
        if rule.scheme == "filter":
            removed = np.logical_not(sp.mask.reshape(sp.mask.shape[0], -1).any(axis=1))
            _silence_filters(gp, node, weights, removed)
        kept += int(np.count_nonzero(sp.mask))
        reached = rate_of(sp.mask)
        params_found = dict(sp.params)
        done.append(
            PrunedLayer(
                layer.name,
                node.op_type,
                tuple(w.shape),
                sp.scheme,
                rule.rate,
                reached,
                params_found,
            )
        )
    if not done and not skipped:
        raise ModelError("the model has no conv/dense layer with constant weights to prune")
    dest = Path(out) if out is not None else None
    if dest is not None:
        _write_atomic(proto, dest)
    return PruneResult(proto, done, skipped, dest, total, kept)
