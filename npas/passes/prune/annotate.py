"""The IR side of pruning: `annotate_sparsity` gives every conv/dense layer the structure of
its weights' zeros (or, under a prune config, projects its weights first), and
`sparsity_report` summarises a graph's pruning for `npasc inspect --sparsity` and model.json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from npas.ir import Graph, Layer
from npas.ir.graph import Sparsity

from .base import PruneError
from .config import PruneConfig, load_prune_config, prunable_layers, resolve
from .registry import detect, project, stats

F32 = np.float32


def _groups(layer: Layer) -> int:
    return int(getattr(layer.attrs, "groups", 1))


def annotate_sparsity(graph: Graph, config: PruneConfig | None = None) -> Graph:
    """Set `layer.sparsity` on every conv/dense layer with constant weights: the scheme and
    parameters its zeros follow (None when dense). Under `config`, a layer given a scheme and
    rate has its weights projected (one-shot magnitude) and replaced by the pruned ones."""
    g = graph.copy()
    rules = resolve(config, g) if config is not None else {}
    prunable = {layer.name for layer in prunable_layers(g)}
    out = []
    for layer in g.layers:
        if layer.name not in prunable:
            out.append(layer)
            continue
        w = g.const(layer.inputs[1])
        assert w is not None
        rule = rules.get(layer.name)
        sp: Sparsity | None
        if rule is None or rule.scheme == "auto":
            sp = detect(w, _groups(layer))
        elif rule.scheme == "dense":
            sp = None
        else:
            try:
                sp = project(w, rule.scheme, rule.rate, _groups(layer), **rule.params)
            except PruneError as e:
                raise PruneError(f"{layer.where}: {e}") from None
            if sp.scheme == "dense":
                sp = None
            else:
                assert sp.mask is not None
                wid = g.add_const(f"{layer.name}/W_pruned", np.where(sp.mask, w, 0).astype(F32))
                layer = layer.with_(inputs=(layer.inputs[0], wid, *layer.inputs[2:]))
        out.append(layer.with_(sparsity=sp))
    g.layers = out
    g.prune_values()
    return g


def pruning_pass(config: Any) -> Callable[[Graph], Graph]:
    """annotate_sparsity bound to a prune config (a dict, a JSON path or a PruneConfig)."""
    cfg = load_prune_config(config)

    def bound(graph: Graph) -> Graph:
        return annotate_sparsity(graph, cfg)

    bound.__name__ = bound.__qualname__ = "annotate_sparsity"  # the pipeline names passes so
    return bound


def sparsity_report(graph: Graph) -> dict[str, Any]:
    """Per conv/dense layer: op, weight count, zeros, scheme, rate and the scheme's statistics;
    plus the totals. JSON-able."""
    rows: dict[str, Any] = {}
    total = kept = zeros = 0
    for layer in prunable_layers(graph):
        w = graph.const(layer.inputs[1])
        assert w is not None
        n, z = int(w.size), int(np.count_nonzero(w == 0))
        sp = layer.sparsity
        if sp is not None and sp.mask is not None:
            row = stats(sp)
            k = int(np.count_nonzero(sp.mask))
        else:
            row = {"scheme": "dense", "rate": 1.0}
            k = n
        rows[layer.name] = {"op": layer.op.value, "shape": list(w.shape), "weights": n,
                            "zeros": z, **row}  # fmt: skip
        total, kept, zeros = total + n, kept + k, zeros + z
    return {
        "layers": rows,
        "total": {
            "weights": total,
            "kept": kept,
            "zeros": zeros,
            "rate": total / kept if kept else (1.0 if not total else float("inf")),
        },
    }


__all__ = ["annotate_sparsity", "pruning_pass", "sparsity_report"]
