"""npas.prune_onnx on zoo models, every scheme at 2x/5x/10x: the result is the same graph with
zeros written into its initializers, ONNX Runtime runs it, and npas detects from the zeros
alone (after BN folding) the scheme, parameters and rate of every pruned layer."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from prune_helpers import initializers, run_ort

import npas
from npas import zoo
from npas.errors import NpasError
from npas.frontend import load_onnx
from npas.passes import DEFAULT_PIPELINE, run_pipeline, shrink_filters
from npas.passes.prune import rate_of

SIZE = 64
SCHEMES = ("filter", "pattern", "block-punched", "block", "unstructured")
CASES = [
    (model, scheme, rate)
    for model in ("resnet18", "mobilenet_v2")
    for scheme in SCHEMES
    for rate in (2.0, 5.0, 10.0)
    if (model, scheme) != ("mobilenet_v2", "pattern")  # its only full 3x3 conv is the first
]


@pytest.fixture(scope="module")
def models() -> dict[str, onnx.ModelProto]:
    return {name: onnx.load(str(zoo.get(name, input_size=SIZE))) for name in ("resnet18",
            "mobilenet_v2")}  # fmt: skip


def same_graph(a: onnx.ModelProto, b: onnx.ModelProto) -> None:
    assert [(n.op_type, n.name, list(n.input), list(n.output)) for n in a.graph.node] == [
        (n.op_type, n.name, list(n.input), list(n.output)) for n in b.graph.node
    ]
    wa, wb = initializers(a), initializers(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert wa[k].shape == wb[k].shape and wa[k].dtype == wb[k].dtype, k
        assert not (wb[k] != 0)[wa[k] == 0].any(), k  # zeros only added


@pytest.mark.parametrize(("model", "scheme", "rate"), CASES)
def test_zoo_prune_runs_and_is_detected(models, model, scheme, rate) -> None:
    src = models[model]
    res = npas.prune_onnx(src, scheme=scheme, rate=rate)
    assert res.layers, res.summary()
    same_graph(src, res.model)
    x = np.random.default_rng(0).standard_normal((1, 3, SIZE, SIZE)).astype(np.float32)
    y = run_ort(res.model, {"input": x})
    assert y.shape == (1, 1000) and np.isfinite(y).all()

    # the rate of the pruned layers together is the asked one (pattern: at least 9/4)
    n = sum(int(np.prod(x.shape)) for x in res.layers)
    kept = sum(int(np.prod(x.shape)) / x.rate for x in res.layers)
    want = max(rate, 9 / 4) if scheme == "pattern" else rate
    assert n / kept == pytest.approx(want, rel=0.03 if scheme != "filter" else 0.1)

    # before the rewrite that removes filters: detection names every pruned layer
    graph = run_pipeline(load_onnx(res.model), [p for p in DEFAULT_PIPELINE if p is not
                         shrink_filters])  # fmt: skip
    found = {layer.name: layer.sparsity for layer in graph.layers}
    for x in res.layers:
        sp = found[x.name]
        assert sp is not None, x.name
        assert sp.scheme == scheme and dict(sp.params) == x.params, x.name
        assert rate_of(sp.mask) == pytest.approx(x.rate), x.name
    pruned = {x.name for x in res.layers}
    others = [n for n, sp in found.items() if sp is not None and n not in pruned]
    assert not others  # the dense layers stay dense
    # skipped: the first conv, depthwise convs, and layers the scheme does not fit
    assert all(why for _, why in res.skipped)


def test_first_conv_and_depthwise_only_when_named(models) -> None:
    src = models["mobilenet_v2"]
    with pytest.raises(NpasError, match="fits none"):
        npas.prune_onnx(src, scheme="pattern", rate=3.0)
    graph = load_onnx(src)
    convs = [layer for layer in graph.layers if layer.op.value == "conv2d"]
    first, dw = convs[0].name, next(c.name for c in convs if c.attrs.groups > 1)
    for name in (first, dw):
        res = npas.prune_onnx(src, scheme="pattern", rate=3.0, layers=name)
        assert [x.name for x in res.layers] == [name]
        sp = {lay.name: lay.sparsity for lay in run_pipeline(load_onnx(res.model)).layers}[name]
        assert sp is not None and sp.scheme == "pattern"
