"""Cleanup passes: no-op views, reshape chains, dead layers."""

from __future__ import annotations

from npas.ir import Graph, Layer, Op

from .rewrite import rename_inputs


def _is_noop(g: Graph, layer: Layer) -> bool:
    """A layer whose output equals its (single) input, element for element."""
    if len(layer.inputs) != 1 or len(layer.outputs) != 1 or not layer.epilogue.empty:
        return False
    same_shape = g.shape(layer.inputs[0]) == g.shape(layer.outputs[0])
    a = layer.attrs
    if layer.op is Op.IDENTITY:
        return True
    if layer.op is Op.RESHAPE:
        return same_shape
    if layer.op is Op.TRANSPOSE:
        return tuple(a.perm) == tuple(range(len(a.perm)))
    if layer.op is Op.PAD:
        return not any(a.pads)
    if layer.op is Op.SLICE:
        return same_shape and all(s == 0 for s in a.starts) and all(t == 1 for t in a.steps)
    if layer.op is Op.CONCAT:
        return True
    return False


def remove_identities(graph: Graph) -> Graph:
    """Drop IDENTITY and other no-op views; readers use the view's input instead. When the view
    produces a graph output, its producer is renamed to the output name instead (unless the
    input is a graph input, a constant or another graph output: then the view stays)."""
    g = graph.copy()
    outputs = set(g.outputs)
    producers = {o for layer in g.layers for o in layer.outputs}
    subst: dict[str, str] = {}  # view output -> its input
    rename: dict[str, str] = {}  # producer output -> graph output name
    kept: list[Layer] = []
    for layer in g.layers:
        layer = rename_inputs(layer, subst)
        if not _is_noop(g, layer):
            kept.append(layer)
            continue
        src, out = layer.inputs[0], layer.outputs[0]
        if out not in outputs:
            subst[out] = src
        elif src in producers and src not in outputs and src not in rename:
            rename[src] = out
        else:
            kept.append(layer)
    if rename:
        kept = [
            rename_inputs(layer, rename).with_(
                outputs=tuple(rename.get(o, o) for o in layer.outputs)
            )
            for layer in kept
        ]
    g.layers = kept
    g.prune_values()
    return g


def merge_reshapes(graph: Graph) -> Graph:
    """RESHAPE of a RESHAPE reads the first one's input directly (the inner one dies if nothing
    else reads it)."""
    g = graph.copy()
    producer = {o: layer for layer in g.layers for o in layer.outputs}
    layers = []
    for layer in g.layers:
        if layer.op is Op.RESHAPE:
            inner = producer.get(layer.inputs[0])
            while inner is not None and inner.op is Op.RESHAPE:
                layer = layer.with_(inputs=inner.inputs)
                inner = producer.get(layer.inputs[0])
            producer[layer.outputs[0]] = layer
        layers.append(layer)
    return eliminate_dead_code(g.copy(layers))


def eliminate_dead_code(graph: Graph) -> Graph:
    """Remove layers none of whose outputs is read by a live layer or is a graph output."""
    live = set(graph.outputs)
    kept: list[Layer] = []
    for layer in reversed(graph.layers):
        if any(o in live for o in layer.outputs):
            kept.append(layer)
            live.update(layer.inputs)
    g = graph.copy(reversed(kept))
    g.prune_values()
    return g
