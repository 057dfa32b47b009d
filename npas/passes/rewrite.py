"""Small shared machinery for graph passes: constant lookups, use counts, and the
producer->consumer fusion driver that Conv+BN, Conv+activation, Conv+residual and Pad+Conv use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from npas.ir import Graph, Layer, Op


def const_scalar(graph: Graph, name: str) -> float | None:
    """The value of a one-element constant, else None."""
    v = graph.values.get(name)
    if v is None or v.data is None or v.data.size != 1:
        return None
    return float(v.data.reshape(-1)[0])


def close(a: float | None, b: float, rel: float = 1e-5) -> bool:
    return a is not None and abs(a - b) <= rel * max(1.0, abs(b))


def use_counts(layers: Iterable[Layer | None]) -> Counter[str]:
    return Counter(n for layer in layers if layer is not None for n in layer.inputs)


def rename_inputs(layer: Layer, mapping: dict[str, str]) -> Layer:
    if not any(n in mapping for n in layer.inputs):
        return layer
    return layer.with_(inputs=tuple(mapping.get(n, n) for n in layer.inputs))


# A rewrite gets (graph, producer, consumer, input position of the producer's output in the
# consumer) and returns the merged layer, or None when the pair does not qualify. It may add
# constants to `graph`.
Rewrite = Callable[[Graph, Layer, Layer, int], Layer | None]


@dataclass(frozen=True)
class Fusion:
    """Merge producer P into consumer C when C is the only reader of P's output (and that output
    is not a graph output). The merged layer takes C's place in the layer order, so every
    operand C reads is already computed."""

    name: str
    producers: frozenset[Op]
    consumers: frozenset[Op]
    rewrite: Rewrite
    positions: tuple[int, ...] = (0,)  # consumer inputs where P's output may appear


def apply_fusions(graph: Graph, rules: Iterable[Fusion]) -> Graph:
    rules = list(rules)
    g = graph.copy()
    layers: list[Layer | None] = list(g.layers)
    producer_at = {out: i for i, layer in enumerate(g.layers) for out in layer.outputs}
    uses = use_counts(layers)
    outputs = set(g.outputs)
    for i in range(len(layers)):
        c = layers[i]
        assert c is not None
        for rule in rules:
            if c.op not in rule.consumers:
                continue
            # the nearest producer first: it is the one the consumer waits for last
            cands = [
                (producer_at[c.inputs[pos]], pos)
                for pos in rule.positions
                if pos < len(c.inputs) and c.inputs[pos] in producer_at
            ]
            merged = None
            for j, pos in sorted(cands, reverse=True):
                p = layers[j]
                name = c.inputs[pos]
                if p is None or p.op not in rule.producers or uses[name] != 1 or name in outputs:
                    continue
                merged = rule.rewrite(g, p, c, pos)
                if merged is not None:
                    layers[j] = None
                    del producer_at[name]
                    break
            if merged is not None:
                layers[i] = c = merged
                for out in c.outputs:
                    producer_at[out] = i
    g.layers = [layer for layer in layers if layer is not None]
    g.prune_values()
    return g
