"""Per-layer pruning configuration for training, and which layer of a torch module gets what.

The configuration is the `--prune-config` format of the compiler (npas/passes/prune/config.py),
as JSON or as the `PruneSpec` dataclass:

    {"default": {"scheme": "dense"},
     "layers": {"NAME_OR_GLOB": {"scheme": "pattern", "rate": 6.0, ...scheme parameters...}}}

    PruneSpec({"layer1.*": LayerPrune("pattern", 6.0)}, default=LayerPrune("dense"))

For a PyTorch module, names are qualified names from `named_modules()`; for a model converted
from ONNX (`OnnxModule`), the ONNX node names. The rules are the compiler's, applied by its own
`resolve`: an exact name wins and must fit the layer; else the last fitting glob; else the
default when it fits; globs and the default leave the first conv and depthwise convs dense;
pattern fits only 3x3 convs and block only 1x1 convs and linear layers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from npas.errors import NpasError
from npas.ir import Conv2dAttrs, Graph, Layer, Op, Value
from npas.passes.prune.config import KEEP, PruneConfig, Rule, load_prune_config, resolve

from .onnx_torch import OnnxModule


@dataclass(frozen=True)
class LayerPrune:
    """What one layer (or glob) gets: a scheme, a rate (1 = dense) and scheme parameters."""

    scheme: str
    rate: float = 1.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        if self.scheme in KEEP:
            return {"scheme": self.scheme}
        return {"scheme": self.scheme, "rate": float(self.rate), **dict(self.params)}


@dataclass
class PruneSpec:
    """A per-layer pruning configuration (see the module docstring)."""

    layers: dict[str, LayerPrune]
    default: LayerPrune = field(default_factory=lambda: LayerPrune("dense"))

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.default.to_json(),
            "layers": {k: v.to_json() for k, v in self.layers.items()},
        }

    @staticmethod
    def from_json(config: Any, source: str = "prune config") -> PruneSpec:
        """From a dict in the JSON format or a JSON file path; NpasError when malformed."""
        cfg = load_prune_config(config, source)

        def lp(rule: Rule) -> LayerPrune:
            return LayerPrune(rule.scheme, rule.rate, dict(rule.params))

        return PruneSpec({r.key: lp(r) for r in cfg.rules}, lp(cfg.default))

    def to_config(self) -> PruneConfig:
        return load_prune_config(self.to_json(), "prune spec")


def as_spec(config: Any) -> PruneSpec:
    """A PruneSpec from a PruneSpec, a JSON path, a dict in the JSON format, or a dict
    {name: LayerPrune | (scheme, rate[, params])}."""
    if isinstance(config, PruneSpec):
        return PruneSpec.from_json(config.to_json(), "prune spec")
    if isinstance(config, str | os.PathLike):
        return PruneSpec.from_json(Path(config))
    if isinstance(config, PruneConfig):
        return PruneSpec.from_json(
            {
                "default": LayerPrune(config.default.scheme, config.default.rate,
                                      dict(config.default.params)).to_json(),
                "layers": {r.key: LayerPrune(r.scheme, r.rate, dict(r.params)).to_json()
                           for r in config.rules},
            },
            config.source,
        )  # fmt: skip
    if isinstance(config, Mapping):
        if set(config) <= {"default", "layers"} and config:
            return PruneSpec.from_json(config)
        layers: dict[str, Any] = {}
        for name, v in config.items():
            if isinstance(v, LayerPrune):
                layers[name] = v.to_json()
            elif isinstance(v, tuple | list) and 1 <= len(v) <= 3:
                rate = v[1] if len(v) > 1 else 1.0
                params = v[2] if len(v) > 2 else {}
                layers[name] = LayerPrune(v[0], rate, params).to_json()
            else:
                raise NpasError(
                    f"prune spec: layer {name!r}: expected LayerPrune or (scheme, rate, params), "
                    f"got {v!r}"
                )
        return PruneSpec.from_json({"default": {"scheme": "dense"}, "layers": layers})
    raise NpasError(
        f"prune config of type {type(config).__name__}: pass a PruneSpec, a JSON file, a dict "
        '{"default": ..., "layers": ...} or {layer: (scheme, rate, params)}'
    )


# ---------------------------------------------------------------- layers of a module
@dataclass
class TrainLayer:
    """A conv/linear layer of the module being trained."""

    name: str  # config and report name: qualified module name or ONNX node name
    module: nn.Module  # nn.Conv2d or nn.Linear; weight in the schemes' layout [F, C(, kh, kw)]
    groups: int
    bns: list[nn.Module]  # batch norms that read this layer's output directly
    rule: Rule = field(default_factory=lambda: Rule("auto", "auto"))

    @property
    def pruned(self) -> bool:
        return self.rule.scheme not in KEEP

    @property
    def weight(self) -> torch.Tensor:
        w = self.module.weight
        assert isinstance(w, torch.Tensor)
        return w


def _is_layer(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d | nn.Linear)


def trace_layers(model: nn.Module, example: torch.Tensor) -> list[TrainLayer]:
    """The module's conv/linear layers in execution order (one forward pass on `example`),
    each with the batch norms that read its output."""
    names = {id(m): n for n, m in model.named_modules()}
    node_names = model.layer_names if isinstance(model, OnnxModule) else {}
    order: list[nn.Module] = []
    produced: dict[int, nn.Module] = {}
    readers: dict[int, list[nn.Module]] = {}
    keep: list[Any] = []  # tensors stay alive so that their ids stay unique during the pass

    def hook(m: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        keep.append((inputs, output))
        if _is_layer(m):
            if m not in order:
                order.append(m)
            produced[id(output)] = m
        elif inputs and id(inputs[0]) in produced:
            readers.setdefault(id(produced[id(inputs[0])]), []).append(m)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if _is_layer(m) or isinstance(m, nn.modules.batchnorm._BatchNorm)
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    unused = [n for n, m in model.named_modules() if _is_layer(m) and m not in order]
    if unused:
        raise NpasError(
            f"layer(s) {', '.join(unused[:4])} never run in the model's forward pass; the "
            "pruning report and masks would not reflect them"
        )
    layers = []
    for m in order:
        qual = names[id(m)]
        bns: list[nn.Module] = [
            r for r in readers.get(id(m), []) if isinstance(r, nn.modules.batchnorm._BatchNorm)
        ]
        groups = int(getattr(m, "groups", 1))
        layers.append(TrainLayer(node_names.get(qual, qual), m, groups, bns))
    return layers


def _stand_in_graph(layers: list[TrainLayer]) -> Graph:
    """The layers as an npas IR chain in execution order, enough for the compiler's `resolve`
    to apply its rules (shapes, groups, which conv comes first) to a torch module."""
    values: dict[str, Value] = {"input": Value("input", (1,))}
    ir_layers = []
    prev = "input"
    for i, lay in enumerate(layers):
        w = lay.weight.detach().cpu().numpy()
        wid, out = f"{i}:W", f"{i}:y"
        values[wid] = Value(wid, tuple(w.shape), "float32", w)
        values[out] = Value(out, (1,))
        if isinstance(lay.module, nn.Conv2d):
            kh, kw = w.shape[2:]
            attrs: Any = Conv2dAttrs((kh, kw), groups=lay.groups)
            op = Op.CONV2D
        else:
            attrs, op = Conv2dAttrs((1, 1)), Op.DENSE
        ir_layers.append(Layer(op, lay.name, (prev, wid), (out,), attrs))
        prev = out
    return Graph("module", ["input"], [prev], ir_layers, values)


def assign_rules(
    model: nn.Module, layers: list[TrainLayer], spec: PruneSpec, example: torch.Tensor
) -> None:
    """Give every layer its rule under `spec` (in place), with the compiler's rules."""
    cfg = spec.to_config()
    if isinstance(model, OnnxModule):
        from npas.frontend import load_onnx

        shapes = {model.input_names[0]: tuple(int(d) for d in example.shape)}
        rules = resolve(cfg, load_onnx(model.proto, input_shapes=shapes))
    else:
        rules = resolve(cfg, _stand_in_graph(layers))
    for lay in layers:
        lay.rule = rules.get(lay.name, Rule("auto", "auto"))


def weight_numpy(layer: TrainLayer) -> np.ndarray:
    return layer.weight.detach().cpu().numpy()
