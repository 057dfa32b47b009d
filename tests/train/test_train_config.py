"""Per-layer configs for training: the dataclass, tuples and the JSON format are the same
configuration; the compiler's rules decide which layer gets what (pattern only on 3x3 convs,
block on 1x1 convs and linear layers, the first conv and depthwise convs dense unless named);
a typo is an error that lists the layers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from train_helpers import CONV1X1, CONV3X3, dense_model, example

import npas.train as T
from npas.errors import NpasError
from npas.train.config import as_spec, assign_rules, trace_layers


def rules_of(model: nn.Module, config, x: torch.Tensor) -> dict[str, tuple]:
    layers = trace_layers(model, x)
    assign_rules(model, layers, as_spec(config), x)
    return {lay.name: (lay.rule.scheme, lay.rule.rate, dict(lay.rule.params)) for lay in layers}


def test_forms_are_one_configuration(tmp_path: Path) -> None:
    as_json = {
        "default": {"scheme": "dense"},
        "layers": {"layer*": {"scheme": "pattern", "rate": 6.0, "entries": 5},
                   "expand.0": {"scheme": "block", "rate": 2.5, "bf": 4}},
    }  # fmt: skip
    spec = T.PruneSpec(
        {"layer*": T.LayerPrune("pattern", 6.0, {"entries": 5}),
         "expand.0": T.LayerPrune("block", 2.5, {"bf": 4})}
    )  # fmt: skip
    tuples = {"layer*": ("pattern", 6.0, {"entries": 5}), "expand.0": ("block", 2.5, {"bf": 4})}
    path = tmp_path / "layers.json"
    path.write_text(json.dumps(as_json))
    model, x = dense_model(), example()
    got = [rules_of(model, c, x) for c in (as_json, spec, tuples, path, str(path))]
    assert all(g == got[0] for g in got)
    assert T.PruneSpec.from_json(path).to_json() == as_json
    assert as_spec(spec).to_json() == as_json


def test_the_compiler_rules_choose_the_layers() -> None:
    model, x = dense_model(), example()
    r = rules_of(model, {"*": ("pattern", 6.0)}, x)
    assert {n for n, v in r.items() if v[0] == "pattern"} == set(CONV3X3)  # 3x3 only
    assert r["stem.0"][0] == "dense"  # the first conv stays dense
    r = rules_of(model, {"*": ("block", 2.0)}, x)
    assert {n for n, v in r.items() if v[0] == "block"} == {*CONV1X1, "fc"}
    # an exact name prunes the first conv; an exact misfit is an error naming the layer
    assert rules_of(model, {"stem.0": ("unstructured", 2.0)}, x)["stem.0"][0] == "unstructured"
    with pytest.raises(NpasError, match=r"expand\.0.*pattern pruning needs 3x3"):
        rules_of(model, {"expand.0": ("pattern", 6.0)}, x)
    with pytest.raises(NpasError, match=r"no layer is named 'layer9'.*expand\.0, fc, layer1"):
        rules_of(model, {"layer9": ("pattern", 6.0)}, x)
    with pytest.raises(NpasError, match="unknown scheme 'patern'"):
        rules_of(model, {"*": ("patern", 6.0)}, x)
    with pytest.raises(NpasError, match="rate"):
        rules_of(model, {"*": ("pattern", 0.5)}, x)


class DepthwiseNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.conv = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pw(self.dw(self.first(x)).relu()).relu())
        return self.fc(x.mean(dim=(2, 3)))


def test_depthwise_and_first_conv_dense_unless_named() -> None:
    model, x = DepthwiseNet(), torch.randn(1, 1, 8, 8)
    r = rules_of(model, {"default": {"scheme": "unstructured", "rate": 2.0}, "layers": {}}, x)
    assert {n for n, v in r.items() if v[0] == "unstructured"} == {"pw", "conv", "fc"}
    r = rules_of(model, {"dw": ("pattern", 2.25)}, x)
    assert r["dw"][0] == "pattern"
    with pytest.raises(NpasError, match="first conv or depthwise"):
        rules_of(model, {"d*": ("pattern", 2.25)}, x)


def test_onnx_models_use_node_names(tmp_path: Path) -> None:
    path = T.export_onnx(dense_model(), tmp_path / "m.onnx", example())
    module = T.OnnxModule(path)
    r = rules_of(module, {"/layer1/*": ("pattern", 6.0)}, example())
    assert {n for n, v in r.items() if v[0] == "pattern"} == {
        "/layer1/body/body.0/body.0.0/Conv", "/layer1/body/body.1/body.1.0/Conv"
    }  # fmt: skip
    assert r["/stem/stem.0/Conv"][0] == "dense"
