"""Folding passes: constant subgraphs, BatchNormalization into weights, zero Pad into conv pads."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from npas.ir import Conv2dAttrs, Graph, Layer, Op, PoolAttrs, Value
from npas.ir.interp import run_layer
from npas.ir.ops import CONV_LIKE

from .rewrite import Fusion, apply_fusions

F32 = np.float32


def fold_constants(graph: Graph) -> Graph:
    """Evaluate every layer whose inputs are all constants (with the reference interpreter) and
    make its outputs constants. A graph output may become a constant: the executor copies it
    out of weights.bin."""
    g = graph.copy()
    kept = []
    for layer in g.layers:
        if not layer.inputs or any(not g.values[n].is_const for n in layer.inputs):
            kept.append(layer)
            continue
        args = [np.asarray(g.values[n].data, F32) for n in layer.inputs]
        outs = run_layer(layer, args, [g.shape(o) for o in layer.outputs])
        for name, arr in zip(layer.outputs, outs, strict=False):
            data = np.array(arr, dtype=F32, order="C")  # keeps 0-d arrays 0-d
            g.values[name] = Value(name, tuple(arr.shape), "float32", data)
    g.layers = kept
    g.prune_values()
    return g


# ---- BatchNormalization (CHANNEL_AFFINE) into the producing conv ----


def _fold_affine(g: Graph, p: Layer, c: Layer, pos: int) -> Layer | None:
    if not p.epilogue.empty:  # scale would apply to the residual/activation too
        return None
    scale = g.const(c.inputs[1])
    shift = g.const(c.inputs[2])
    w, b = g.const(p.inputs[1]), g.const(p.inputs[2])
    if scale is None or shift is None or w is None or b is None:
        return None
    if p.op is Op.DENSE and len(g.shape(p.outputs[0])) != 2:
        return None  # channel axis 1 is not DENSE's feature axis then
    s64 = scale.astype(np.float64)
    if p.op is Op.CONV_TRANSPOSE2D:
        # W[C, F/g, kh, kw]: output channel of W[c, j] is (c // (C/g)) * F/g + j
        groups = p.attrs.groups
        cin, fg = w.shape[:2]
        f_idx = (np.arange(cin)[:, None] // (cin // groups)) * fg + np.arange(fg)[None, :]
        w2 = w * s64[f_idx].reshape(cin, fg, *([1] * (w.ndim - 2)))
    else:
        w2 = w * s64.reshape(-1, *([1] * (w.ndim - 1)))
    b2 = b * s64 + shift
    wid = g.add_const(f"{p.name}/W_bn", w2.astype(F32))
    bid = g.add_const(f"{p.name}/B_bn", b2.astype(F32))
    return p.with_(inputs=(p.inputs[0], wid, bid, *p.inputs[3:]), outputs=c.outputs)


BATCHNORM_FUSIONS = [
    Fusion("conv+batchnorm", CONV_LIKE, frozenset({Op.CHANNEL_AFFINE}), _fold_affine),
]


def fold_batchnorm(graph: Graph) -> Graph:
    """CHANNEL_AFFINE right after a conv/dense/conv-transpose that only it reads: scale the
    weights, shift the bias, drop the affine layer."""
    return apply_fusions(graph, BATCHNORM_FUSIONS)


# ---- zero Pad into the consumer's pads ----


def _spatial_pads(g: Graph, pad: Layer) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right) of a constant-zero PAD that pads only H and W of NCHW."""
    a = pad.attrs
    if a.mode != "constant" or a.value != 0.0 or len(g.shape(pad.inputs[0])) != 4:
        return None
    p = a.pads
    if any(p[i] for i in (0, 1, 4, 5)) or min(p) < 0:
        return None
    return (p[2], p[3], p[6], p[7])


def _fold_pad(g: Graph, p: Layer, c: Layer, pos: int) -> Layer | None:
    extra = _spatial_pads(g, p)
    if extra is None:
        return None
    a = c.attrs
    if isinstance(a, PoolAttrs) and not a.count_include_pad:
        # the explicit zeros count in the average; pool padding would not: keep the PAD
        return None
    if not isinstance(a, (Conv2dAttrs, PoolAttrs)):
        return None
    t, l_, b, r = a.pads
    pads = (t + extra[0], l_ + extra[1], b + extra[2], r + extra[3])
    return c.with_(inputs=(p.inputs[0], *c.inputs[1:]), attrs=replace(a, pads=pads))


PAD_FUSIONS = [
    Fusion("pad+conv", frozenset({Op.PAD}), frozenset({Op.CONV2D, Op.AVGPOOL}), _fold_pad),
]


def fold_pad(graph: Graph) -> Graph:
    """A constant-zero spatial PAD read only by a conv (or a count_include_pad average pool)
    becomes part of that layer's pads."""
    return apply_fusions(graph, PAD_FUSIONS)
