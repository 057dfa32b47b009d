"""Filter pruning as a graph rewrite: a conv/dense layer's all-zero filters are removed, and with
them the matching input channels of every layer downstream, so the layers become smaller dense
layers and the removed work is gone rather than multiplied by zero.

A removed filter does not output zero: it outputs act(bias (+ residual)), a per-channel
constant. So the rewrite works on *channel classes*: a channel of one value together with every
channel it is tied to through channel-wise layers (activations, BN, pools, element-wise ops,
residual adds - both operands -, concat, depthwise convs, flatten). A class is removed only when
every member is a known constant, every producer at its edge is a removed filter, and every
reader at its edge is a conv/dense layer that can absorb the constant into its bias (any value
for a dense layer or an unpadded conv; only zero for a padded conv, whose border would otherwise
see it). Anything else - a graph output, a reshape it cannot follow, a grouped conv, an
operand broadcast over channels - keeps the whole class. The graph computes exactly what it
computed before (up to float rounding of the folded biases).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from npas.ir import Graph, Layer, Op, ReshapeAttrs, Value
from npas.ir.interp import apply_activation, run_layer
from npas.ir.ops import BINARY, UNARY

from .registry import detect

F32 = np.float32
Member = tuple[str, int]  # (value name, channel)

_CHANNELWISE = UNARY | BINARY | {Op.CHANNEL_AFFINE}
_POOLS = frozenset({Op.MAXPOOL, Op.AVGPOOL, Op.GLOBAL_AVGPOOL, Op.GLOBAL_MAXPOOL})


def _weights(g: Graph, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    w, b = g.const(layer.inputs[1]), g.const(layer.inputs[2])
    assert w is not None and b is not None
    return w, b


def _plain(g: Graph, layer: Layer) -> bool:
    """A dense layer or an ungrouped conv with constant weights and bias."""
    if layer.op not in (Op.CONV2D, Op.DENSE) or not g.values[layer.inputs[1]].is_const:
        return False
    if not g.values[layer.inputs[2]].is_const:
        return False
    return layer.op is Op.DENSE or layer.attrs.groups == 1


def _multiplier(g: Graph, layer: Layer) -> int:
    """Output channels per input channel of a depthwise conv; 0 for anything else."""
    if layer.op is not Op.CONV2D or layer.attrs.groups == 1:
        return 0
    w = g.const(layer.inputs[1])
    cin = g.shape(layer.inputs[0])[1]
    if w is None or w.shape[1] != 1 or layer.attrs.groups != cin:
        return 0
    return w.shape[0] // cin


def _padded(layer: Layer) -> bool:
    return layer.op is Op.CONV2D and any(layer.attrs.pads)


def _channels(g: Graph, name: str) -> int | None:
    v = g.values[name]
    return None if v.is_const or len(v.shape) not in (2, 4) else v.shape[1]


def _channel_inputs(g: Graph, layer: Layer) -> list[str]:
    """The activation inputs of a channel-wise layer that share its output's channels."""
    c = _channels(g, layer.outputs[0])
    return [n for n in layer.inputs if not g.values[n].is_const and _channels(g, n) == c]


def _flatten_block(g: Graph, layer: Layer) -> int | None:
    """Features per channel when a RESHAPE keeps the batch and lays channels out contiguously
    ([N, C, H, W] -> [N, C*H*W], [N, C] <-> [N, C, 1, 1]); None for any other reshape."""
    src, dst = g.shape(layer.inputs[0]), g.shape(layer.outputs[0])
    if len(src) == 4 and len(dst) == 2 and src[0] == dst[0]:
        return src[2] * src[3]
    if {len(src), len(dst)} == {2, 4} and src[:2] == dst[:2]:
        return 1  # the 4-D side is [N, C, 1, 1]
    return None


def _uniform(out: np.ndarray, c: int) -> np.ndarray:
    """Per channel of a [1, c, ...] result: its value if equal everywhere, else nan."""
    flat = out.reshape(c, -1)
    with np.errstate(invalid="ignore"):
        same = (flat == flat[:, :1]).all(axis=1)
    return np.where(same, flat[:, 0], np.nan).astype(F32)


def constant_channels(g: Graph) -> dict[str, np.ndarray]:
    """For every activation of rank 2 or 4: per channel its value when it is the same constant
    at every position of every input, else nan."""
    consts: dict[str, np.ndarray] = {}

    def vec(name: str) -> np.ndarray:
        c = _channels(g, name)
        return consts.get(name, np.full(c or 0, np.nan, F32))

    with np.errstate(all="ignore"):
        for layer in g.layers:
            out = layer.outputs[0]
            c = _channels(g, out)
            if c is None:
                continue
            val: np.ndarray | None = None
            if _plain(g, layer) or _multiplier(g, layer):
                w, b = _weights(g, layer)
                wf = w.reshape(w.shape[0], -1)
                zero = ~wf.any(axis=1)
                if _plain(g, layer):
                    part = np.where(zero, 0, np.nan)
                else:
                    k = np.repeat(vec(layer.inputs[0]), _multiplier(g, layer))
                    # a constant input reaches the border only through zero padding
                    ok = ~np.isnan(k) & ((k == 0) | (not _padded(layer)))
                    part = np.where(zero, 0, np.where(ok, k * wf.sum(axis=1), np.nan))
                val = part + b
                if layer.epilogue.residual:
                    val = val + vec(layer.inputs[3])
                val = apply_activation(layer.epilogue.act, val.astype(F32))
            elif layer.op in _CHANNELWISE:
                acts = [n for n in layer.inputs if not g.values[n].is_const]
                if any(len(g.shape(n)) != len(g.shape(out)) for n in acts):
                    continue
                args = []
                for n in layer.inputs:
                    v = g.values[n]
                    if v.is_const:
                        args.append(np.asarray(v.data, F32))
                    else:
                        k = vec(n)
                        args.append(k.reshape(1, k.size, *([1] * (len(v.shape) - 2))))
                res = run_layer(layer, args)[0]
                if res.ndim == len(g.shape(out)) and res.shape[:2] == (1, c):
                    val = _uniform(res, c)
            elif layer.op in _POOLS:
                val = vec(layer.inputs[0])
                a = layer.attrs
                if layer.op is Op.AVGPOOL and a.count_include_pad and any(a.pads):
                    val = np.where(val == 0, val, np.nan)  # padding zeros join the average
            elif layer.op is Op.CONCAT and layer.attrs.axis == 1:
                val = np.concatenate([vec(n) for n in layer.inputs])
            elif layer.op is Op.RESHAPE and (block := _flatten_block(g, layer)) is not None:
                val = np.repeat(vec(layer.inputs[0]), block)
            if val is not None and val.shape == (c,):
                consts[out] = val.astype(F32)
    return consts


class _Classes:
    """Channel classes (see the module docstring), found by a walk from a removed filter."""

    def __init__(self, g: Graph, consts: dict[str, np.ndarray]) -> None:
        self.g = g
        self.consts = consts
        self.producer = g.producers()
        self.readers = g.consumers()
        self.outputs = set(g.outputs)

    def walk(self, seed: Member) -> tuple[set[Member], bool]:
        """The class of `seed` and whether it can be removed."""
        members: set[Member] = set()
        todo = [seed]
        while todo:
            member = todo.pop()
            if member in members:
                continue
            members.add(member)
            name, ch = member
            k = self.consts.get(name)
            if k is None or np.isnan(k[ch]) or name in self.outputs:
                return members, False
            ties = self._producer_ties(name, ch)
            if ties is None:
                return members, False
            todo += ties
            for layer in self.readers.get(name, []):
                for pos, n in enumerate(layer.inputs):
                    if n != name:
                        continue
                    ties = self._reader_ties(layer, pos, name, ch, float(k[ch]))
                    if ties is None:
                        return members, False
                    todo += ties
        return members, True

    def _producer_ties(self, name: str, ch: int) -> list[Member] | None:
        g = self.g
        p = self.producer.get(name)
        if p is None:
            return None
        if _plain(g, p):
            w, _ = _weights(g, p)
            if w[ch].any():
                return None
            return [(p.inputs[3], ch)] if p.epilogue.residual else []
        m = _multiplier(g, p)
        if m:
            cin = ch // m
            ties = [(p.inputs[0], cin)] + [(name, cin * m + j) for j in range(m)]
            return ties + ([(p.inputs[3], ch)] if p.epilogue.residual else [])
        if p.op in _CHANNELWISE or p.op in _POOLS:
            ins = _channel_inputs(g, p) if p.op in _CHANNELWISE else [p.inputs[0]]
            return [(n, ch) for n in ins]
        if p.op is Op.CONCAT and p.attrs.axis == 1:
            for n in p.inputs:
                size = g.shape(n)[1]
                if ch < size:
                    return [(n, ch)]
                ch -= size
        if p.op is Op.RESHAPE and (block := _flatten_block(g, p)) is not None:
            c = ch // block
            return [(p.inputs[0], c)] + [(name, c * block + j) for j in range(block)]
        return None

    def _reader_ties(
        self, layer: Layer, pos: int, name: str, ch: int, k: float
    ) -> list[Member] | None:
        g = self.g
        out = layer.outputs[0]
        if _plain(g, layer):
            if pos == 0:  # absorbs the constant into its bias
                return None if (k != 0 and _padded(layer)) else []
            return [(out, ch)] if pos == 3 else None
        m = _multiplier(g, layer)
        if m:
            return [(out, ch * m + j) for j in range(m)] if pos == 0 else [(out, ch)]
        if layer.op in _CHANNELWISE:
            return [(out, ch)] if name in _channel_inputs(g, layer) else None
        if layer.op in _POOLS:
            return [(out, ch)]
        if layer.op is Op.CONCAT and layer.attrs.axis == 1:
            offset = sum(g.shape(n)[1] for n in layer.inputs[:pos])
            return [(out, offset + ch)]
        if layer.op is Op.RESHAPE and (block := _flatten_block(g, layer)) is not None:
            return [(out, ch * block + j) for j in range(block)]
        return None


def _zero_filters(g: Graph, layer: Layer) -> np.ndarray:
    w, _ = _weights(g, layer)
    return np.flatnonzero(~w.reshape(w.shape[0], -1).any(axis=1))


def removable_channels(g: Graph) -> dict[str, list[int]]:
    """Per activation, the channels the rewrite removes (sorted)."""
    seeds = [
        (layer.outputs[0], int(f))
        for layer in g.layers
        if _plain(g, layer)
        for f in _zero_filters(g, layer)
    ]
    if not seeds:
        return {}
    classes = _Classes(g, constant_channels(g))
    seen: set[Member] = set()
    kept: list[set[Member]] = []
    for seed in seeds:
        if seed not in seen:
            members, ok = classes.walk(seed)
            seen |= members
            if ok:
                kept.append(members)
    # a value keeps at least one channel: no zero-sized tensors reach the kernels
    while True:
        removed: dict[str, set[int]] = {}
        for members in kept:
            for name, ch in members:
                removed.setdefault(name, set()).add(ch)
        empty = {n for n, chs in removed.items() if len(chs) == g.shape(n)[1]}
        if not empty:
            return {name: sorted(chs) for name, chs in removed.items()}
        kept.remove(next(m for m in kept if any(n in empty for n, _ in m)))


def _slice_const(g: Graph, name: str, axis: int, drop: list[int], base: str) -> str:
    data = g.const(name)
    assert data is not None
    return g.add_const(base, np.delete(data, drop, axis=axis))


def shrink_filters(graph: Graph) -> Graph:
    """Remove all-zero filters, and the input channels they fed downstream, wherever that
    keeps the graph's function (see the module docstring)."""
    g = graph.copy()
    removed = removable_channels(g)
    if not removed:
        return graph
    consts = constant_channels(g)
    layers = []
    for layer in g.layers:
        x, out = layer.inputs[0], layer.outputs[0]
        drop_in, drop_out = removed.get(x, []), removed.get(out, [])
        if not drop_in and not drop_out:
            layers.append(layer)
            continue
        if _plain(g, layer) or _multiplier(g, layer):
            w, b = _weights(g, layer)
            w, b = w.astype(np.float64), b.astype(np.float64)
            attrs = layer.attrs
            if _plain(g, layer) and drop_in:
                k = consts[x][drop_in].astype(np.float64)
                cols = w[:, drop_in].reshape(w.shape[0], len(drop_in), -1).sum(axis=2)
                b = b + cols @ k  # what the constant channels added, now part of the bias
                w = np.delete(w, drop_in, axis=1)
            w, b = np.delete(w, drop_out, axis=0), np.delete(b, drop_out)
            if _multiplier(g, layer):
                attrs = replace(attrs, groups=attrs.groups - len(drop_in))
            wid = g.add_const(f"{layer.name}/W_shrunk", w.astype(F32))
            bid = g.add_const(f"{layer.name}/B_shrunk", b.astype(F32))
            groups = getattr(attrs, "groups", 1)
            layer = layer.with_(
                inputs=(x, wid, bid, *layer.inputs[3:]),
                attrs=attrs,
                sparsity=detect(w.astype(F32), groups),
            )
        elif layer.op is Op.CHANNEL_AFFINE:  # scale and shift are [C]
            scale, shift = (
                _slice_const(g, n, 0, drop_out, f"{layer.name}/{what}_shrunk")
                for n, what in zip(layer.inputs[1:], ("scale", "shift"), strict=True)
            )
            layer = layer.with_(inputs=(x, scale, shift))
        elif layer.op in _CHANNELWISE:
            inputs = list(layer.inputs)
            rank = len(g.shape(out))
            for i, n in enumerate(inputs):
                data = g.const(n)
                if data is None or data.ndim < rank - 1:
                    continue
                axis = data.ndim - (rank - 1)  # the channel axis, numpy-broadcast aligned
                if data.shape[axis] == g.shape(out)[1]:
                    inputs[i] = _slice_const(g, n, axis, drop_out, f"{layer.name}/{i}_shrunk")
            layer = layer.with_(inputs=tuple(inputs))
        elif layer.op is Op.RESHAPE:
            dims = list(g.shape(out))
            dims[1] -= len(drop_out)
            layer = layer.with_(attrs=ReshapeAttrs(tuple(dims)))
        layers.append(layer)
    for name, chs in removed.items():
        v = g.values[name]
        shape = (v.shape[0], v.shape[1] - len(chs), *v.shape[2:])
        g.values[name] = Value(name, shape, v.dtype)
    g.layers = layers
    g.prune_values()
    return g
