"""A PyTorch round trip: the numpy projections applied to the zoo's torch modules, exported
to ONNX by torch (as the zoo exports), and npas finds the same schemes, parameters and masks in
the exported weights, from the zeros alone (no side file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from prune_helpers import run_ort

from npas.frontend import load_onnx
from npas.ir.graph import Sparsity
from npas.passes import DEFAULT_PIPELINE, run_pipeline, shrink_filters
from npas.passes.prune import project
from npas.zoo import exporter
from npas.zoo.registry import MODELS

SIZE = 64
RATES = (2.5, 5.0, 7.0)


def choose(module: torch.nn.Module, index: int) -> str | None:
    """A scheme for every kind of layer, cycling so that each scheme appears."""
    if isinstance(module, torch.nn.Linear):
        return ("block", "block-punched", "unstructured")[index % 3]
    k = module.kernel_size
    if module.in_channels == 3:
        return None  # the first conv stays dense
    if module.groups > 1:
        return ("pattern", "unstructured")[index % 2] if k == (3, 3) else "filter"
    if k == (1, 1):
        return ("block", "block-punched", "filter", "unstructured")[index % 4]
    return ("pattern", "block-punched", "unstructured", "filter")[index % 4]


def prune_module(model: torch.nn.Module) -> dict[str, Sparsity]:
    """Project every conv/linear weight in place; returns the projections by weight name."""
    expected = {}
    layers = [
        (n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
    ]
    with torch.no_grad():
        for i, (name, m) in enumerate(layers):
            scheme = choose(m, i)
            if scheme is None:
                continue
            w = m.weight.detach().numpy()
            sp = project(w, scheme, RATES[i % 3], getattr(m, "groups", 1))
            m.weight.mul_(torch.from_numpy(sp.mask.astype(np.float32)))
            expected[f"{name}.weight"] = sp
    return expected


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_torch_export_keeps_detectable_structure(name: str, tmp_path: Path) -> None:
    model = exporter.build(MODELS[name], (SIZE, SIZE), seed=0)
    expected = prune_module(model)
    schemes = {sp.scheme for sp in expected.values()}
    assert schemes == {"pattern", "block-punched", "block", "filter", "unstructured"}
    path = exporter.to_onnx(model, (SIZE, SIZE), tmp_path / f"{name}.onnx", 17)

    proto = onnx.load(str(path))
    weight_of = {n.name: n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "Gemm")}
    # BN folded (zeros must survive it), filters not yet removed
    no_shrink = [p for p in DEFAULT_PIPELINE if p is not shrink_filters]
    graph = run_pipeline(load_onnx(proto), no_shrink)
    seen = 0
    for layer in graph.layers:
        if layer.op.value not in ("conv2d", "dense"):
            continue
        want = expected.get(weight_of[layer.name])
        got = layer.sparsity
        if want is None:
            assert got is None, layer.name
            continue
        seen += 1
        assert got is not None, layer.name
        assert (got.scheme, got.params) == (want.scheme, want.params), layer.name
        assert np.array_equal(got.mask, want.mask), layer.name
    assert seen == len(expected)

    # and the exported model computes what the pruned torch module computes
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(run_ort(path, {"input": x.numpy()}), ref, rtol=1e-3, atol=1e-4)
