"""Per-layer pruning configuration (`--prune-config`, the search, training):

    {"default": {"scheme": "dense"},
     "layers": {"NAME_OR_GLOB": {"scheme": "pattern", "rate": 6.0, ...scheme parameters...}}}

Names are ONNX node names (unnamed nodes are `<op>_<index>`; `npasc inspect` lists them).
Schemes: the pruning schemes (need a rate >= 1), "dense" (no pruning, dense kernels even if
the weights hold zeros) and "auto" (no pruning; the scheme is detected from the weights'
zeros). Without "default", layers not listed are "auto".

Which entry a conv/dense layer takes:
- an exact name wins; it must fit the layer (pattern needs 3x3 kernels...), else an error;
- otherwise the last glob, in file order, that matches the layer and whose scheme fits it;
  globs skip the first conv and depthwise convs, which stay dense unless named exactly;
- otherwise "default" when its scheme fits the layer (with the same two exceptions), else
  "auto".
A key that matches no conv/dense layer, or a glob whose scheme fits none of its layers, is an
error: a typo must not silently leave a layer dense.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npas.ir import Graph, Layer, Op
from npas.ir.ops import PRUNABLE

from .base import PruneError, check_rate
from .registry import SCHEMES

KEEP = ("dense", "auto")  # config schemes that prune nothing


@dataclass(frozen=True)
class Rule:
    """One entry of the configuration."""

    key: str  # the layer name or glob as written ("default" for the default)
    scheme: str
    rate: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_glob(self) -> bool:
        return any(ch in self.key for ch in "*?[")


@dataclass(frozen=True)
class PruneConfig:
    default: Rule
    rules: tuple[Rule, ...]
    source: str = "prune config"


def _rule(key: str, entry: Any, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise PruneError(f"{where}: entry {key!r} must be an object such as "
                         '{"scheme": "pattern", "rate": 6.0}')  # fmt: skip
    if "scheme" not in entry:
        raise PruneError(f'{where}: entry {key!r} has no "scheme"')
    scheme = entry["scheme"]
    params = {k: v for k, v in entry.items() if k not in ("scheme", "rate")}
    if scheme in KEEP:
        if params or entry.get("rate", 1) != 1:
            raise PruneError(f"{where}: entry {key!r}: scheme {scheme!r} takes no rate or params")
        return Rule(key, scheme)
    if scheme not in SCHEMES:
        known = ", ".join([*SCHEMES, *KEEP])
        raise PruneError(f"{where}: entry {key!r}: unknown scheme {scheme!r}; known: {known}")
    if "rate" not in entry:
        raise PruneError(f'{where}: entry {key!r}: scheme {scheme!r} needs a "rate" (>= 1)')
    try:
        rate = check_rate(entry["rate"])
        SCHEMES[scheme].params(params)
    except PruneError as e:
        raise PruneError(f"{where}: entry {key!r}: {e}") from None
    return Rule(key, scheme, rate, params)


def load_prune_config(config: Any, source: str = "prune config") -> PruneConfig:
    """A PruneConfig from a dict, a JSON file path, or a PruneConfig; NpasError when malformed.
    `source` names the configuration in error messages."""
    if isinstance(config, PruneConfig):
        return config
    where = source
    if isinstance(config, str | os.PathLike):
        where = f"prune config {config}"
        try:
            config = json.loads(Path(config).read_text())
        except OSError as e:
            raise PruneError(f"{where}: cannot read it ({e.strerror or e})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PruneError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(config, Mapping):
        raise PruneError(f'{where}: expected a JSON object with "default" and "layers"')
    unknown = sorted(set(config) - {"default", "layers"})
    if unknown:
        raise PruneError(f'{where}: unknown key(s) {unknown}; expected "default" and "layers"')
    default = _rule("default", config.get("default", {"scheme": "auto"}), where)
    layers = config.get("layers", {})
    if not isinstance(layers, Mapping):
        raise PruneError(f'{where}: "layers" must map layer names or globs to entries')
    rules = tuple(_rule(str(k), v, where) for k, v in layers.items())
    return PruneConfig(default, rules, where)


def _groups(layer: Layer) -> int:
    return int(getattr(layer.attrs, "groups", 1))


def is_depthwise(graph: Graph, layer: Layer) -> bool:
    w = graph.shape(layer.inputs[1])
    return layer.op is Op.CONV2D and _groups(layer) > 1 and w[1] == 1


def first_convs(graph: Graph) -> set[str]:
    """Conv layers that read the image before any other conv/dense layer has touched it."""
    touched: set[str] = set()
    first = set()
    for layer in graph.layers:
        fed = any(n in touched for n in layer.inputs)
        if layer.op is Op.CONV2D and not fed:
            first.add(layer.name)
        if fed or layer.op in PRUNABLE:
            touched.update(layer.outputs)
    return first


def prunable_layers(graph: Graph) -> list[Layer]:
    """Conv/dense layers with constant weights: what pruning and detection act on."""
    return [
        layer
        for layer in graph.layers
        if layer.op in PRUNABLE and graph.values[layer.inputs[1]].is_const
    ]


def resolve(config: PruneConfig, graph: Graph) -> dict[str, Rule]:
    """The rule every prunable layer of `graph` takes (see the module docstring)."""
    layers = prunable_layers(graph)
    names = {layer.name for layer in layers}
    first = first_convs(graph)
    skipped = {layer.name for layer in layers if layer.name in first or is_depthwise(graph, layer)}

    def unfit(rule: Rule, layer: Layer) -> str | None:
        if rule.scheme in KEEP:
            return None
        return SCHEMES[rule.scheme].unfit(graph.shape(layer.inputs[1]), _groups(layer))

    def hint() -> str:
        shown = ", ".join(sorted(names)[:6]) + (", ..." if len(names) > 6 else "")
        return f"the conv/dense layers are: {shown} (`npasc inspect MODEL.onnx` lists them)"

    chosen: dict[str, Rule] = {}
    for rule in config.rules:
        if rule.is_glob:
            continue
        if rule.key not in names:
            others = {layer.name: layer for layer in graph.layers}
            if rule.key in others:
                raise PruneError(
                    f"{config.source}: {others[rule.key].where} has no constant weights to "
                    f"prune; {hint()}"
                )
            raise PruneError(f"{config.source}: no layer is named {rule.key!r}; {hint()}")
        layer = next(lay for lay in layers if lay.name == rule.key)
        why = unfit(rule, layer)
        if why is not None:
            raise PruneError(f"{config.source}: {layer.where}: {why}")
        chosen[layer.name] = rule
    globs = [rule for rule in config.rules if rule.is_glob]
    for rule in globs:
        matched = [lay for lay in layers if fnmatch.fnmatchcase(lay.name, rule.key)]
        if not matched:
            raise PruneError(f"{config.source}: {rule.key!r} matches no conv/dense layer; {hint()}")
        usable = [lay for lay in matched if lay.name not in skipped]
        if not usable:
            raise PruneError(
                f"{config.source}: {rule.key!r} matches only the first conv or depthwise convs, "
                "which globs leave dense; name them exactly to prune them"
            )
        reasons = [unfit(rule, lay) for lay in usable]
        if all(r is not None for r in reasons):
            left = len(matched) - len(usable)
            note = (
                f"; {left} first/depthwise conv(s) are left out unless named exactly"
                if left
                else ""
            )
            raise PruneError(
                f"{config.source}: {rule.key!r}: {rule.scheme} fits none of the "
                f"{len(usable)} layer(s) it matches ({usable[0].where}: {reasons[0]}){note}"
            )
    for layer in layers:
        if layer.name in chosen:
            continue
        candidates = [r for r in reversed(globs) if fnmatch.fnmatchcase(layer.name, r.key)]
        chosen[layer.name] = next(
            (
                rule
                for rule in [*candidates, config.default]
                if rule.scheme in KEEP or (layer.name not in skipped and unfit(rule, layer) is None)
            ),
            Rule("auto", "auto"),
        )
    return chosen


__all__ = ["KEEP", "PruneConfig", "Rule", "load_prune_config", "resolve"]
