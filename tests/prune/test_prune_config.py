"""annotate_sparsity in the pass pipeline, and per-layer prune configs through run_pipeline:
which layer takes which entry, the pruned weights, and clear errors for bad configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prune_helpers import CONV1X1, CONV3X3, DEPTHWISE, FC, FIRST, UNNAMED, run_ort, tiny_cnn

from npas.errors import NpasError
from npas.frontend import load_onnx
from npas.ir import Graph
from npas.ir.interp import run_graph
from npas.ir.printer import format_graph
from npas.passes import DEFAULT_PIPELINE, annotate_sparsity, shrink_filters
from npas.passes import run_pipeline as _run_pipeline
from npas.passes.prune import rate_of
from npas.passes.prune.annotate import sparsity_report

# what annotation says, before filter pruning's graph rewrite makes removed filters disappear
NO_SHRINK = [p for p in DEFAULT_PIPELINE if p is not shrink_filters]
X = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype(np.float32)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_onnx(tiny_cnn())


def run_pipeline(graph: Graph, **kw) -> Graph:
    return _run_pipeline(graph, NO_SHRINK, **kw)


def sparsity(g: Graph) -> dict[str, object]:
    return {layer.name: layer.sparsity for layer in g.layers if layer.op.value in ("conv2d",
            "dense")}  # fmt: skip


def test_annotate_runs_after_batchnorm_folding() -> None:
    names = [p.__name__ for p in DEFAULT_PIPELINE]
    assert names.index("annotate_sparsity") > names.index("fold_batchnorm")


def test_dense_model_gets_no_annotation(graph: Graph) -> None:
    g = run_pipeline(graph, verify=True)
    assert set(sparsity(g)) == {FIRST, CONV3X3, CONV1X1, DEPTHWISE, UNNAMED, FC}
    assert all(sp is None for sp in sparsity(g).values())
    assert "sparsity=" not in format_graph(g)


def test_config_projects_and_annotates(graph: Graph) -> None:
    cfg = {
        "default": {"scheme": "dense"},
        "layers": {
            CONV3X3: {"scheme": "pattern", "rate": 6.0},
            CONV1X1: {"scheme": "block-punched", "rate": 2.5, "bf": 4, "bc": 4},
            UNNAMED: {"scheme": "block", "rate": 3},
            FC: {"scheme": "unstructured", "rate": 5},
        },
    }
    dense = run_pipeline(graph)
    g = run_pipeline(graph, verify=True, prune_config=cfg)
    sp = sparsity(g)
    assert sp[FIRST] is None and sp[DEPTHWISE] is None
    assert sp[CONV3X3].scheme == "pattern" and rate_of(sp[CONV3X3].mask) == pytest.approx(6, 0.05)
    assert sp[CONV1X1].scheme == "block-punched" and dict(sp[CONV1X1].params) == {"bf": 4, "bc": 4}
    assert sp[UNNAMED].scheme == "block" and sp[FC].scheme == "unstructured"
    before = {layer.name: dense.const(layer.inputs[1]) for layer in dense.layers if
              layer.name in sp}  # fmt: skip
    for layer in g.layers:
        if layer.name in sp and sp[layer.name] is not None:
            w = g.const(layer.inputs[1])
            mask = sp[layer.name].mask
            # the layer's weights are the folded ones where kept, zero elsewhere
            assert np.array_equal(w, np.where(mask, before[layer.name], 0))
    # the pruned weights compute what the interpreter says they compute, and differ from dense
    y = run_graph(g, {"x": X})["y"]
    assert not np.allclose(y, run_graph(dense, {"x": X})["y"])
    # re-detection on the pruned graph gives the same annotations back
    again = sparsity(annotate_sparsity(g))
    for name, s in sp.items():
        assert again[name] == s, name
    text = format_graph(g)
    assert "sparsity=pattern(entries=4,library=((" in text
    assert "sparsity=block-punched(bf=4,bc=4," in text


def test_globs_skip_first_depthwise_and_unfit_layers(graph: Graph) -> None:
    g = run_pipeline(graph, prune_config={"layers": {"*": {"scheme": "pattern", "rate": 4}}})
    sp = sparsity(g)
    assert sp[CONV3X3].scheme == "pattern"
    assert all(sp[n] is None for n in (FIRST, DEPTHWISE, CONV1X1, UNNAMED, FC))
    # later globs win; exact names beat globs; exact names reach the first conv and depthwise
    cfg = {
        "layers": {
            "conv*": {"scheme": "unstructured", "rate": 2},
            "conv[12]": {"scheme": "filter", "rate": 2},
            FIRST: {"scheme": "pattern", "rate": 3},
            DEPTHWISE: {"scheme": "pattern", "rate": 3},
        }
    }
    sp = sparsity(run_pipeline(graph, prune_config=cfg))
    assert {n: s.scheme for n, s in sp.items() if s is not None} == {
        FIRST: "pattern", CONV3X3: "filter", CONV1X1: "filter", DEPTHWISE: "pattern",
    }  # fmt: skip


def test_default_entry_applies_where_it_fits(graph: Graph) -> None:
    cfg = {"default": {"scheme": "block-punched", "rate": 3}}
    sp = sparsity(run_pipeline(graph, prune_config=cfg))
    assert {n for n, s in sp.items() if s is not None} == {CONV3X3, CONV1X1, UNNAMED, FC}


def test_dense_forces_dense_and_auto_detects(tmp_path: Path) -> None:
    import npas

    pruned = npas.prune_onnx(tiny_cnn(), scheme="unstructured", rate=4).model
    g = load_onnx(pruned)
    assert sparsity(run_pipeline(g))[CONV3X3].scheme == "unstructured"  # auto by default
    forced = {"default": {"scheme": "dense"}}
    assert all(s is None for s in sparsity(run_pipeline(g, prune_config=forced)).values())
    mixed = {"default": {"scheme": "dense"}, "layers": {CONV3X3: {"scheme": "auto"}}}
    sp = sparsity(run_pipeline(g, prune_config=mixed))
    assert sp[CONV3X3].scheme == "unstructured" and sp[CONV1X1] is None
    # and the pruned ONNX still runs where it came from
    assert np.isfinite(run_ort(pruned, {"x": X})).all()


def test_config_from_a_json_file(graph: Graph, tmp_path: Path) -> None:
    path = tmp_path / "layers.json"
    path.write_text(json.dumps({"layers": {CONV3X3: {"scheme": "pattern", "rate": 6}}}))
    assert sparsity(run_pipeline(graph, prune_config=str(path)))[CONV3X3].scheme == "pattern"
    assert sparsity(run_pipeline(graph, prune_config=path))[CONV3X3].scheme == "pattern"


BAD = [
    ({"layers": {CONV3X3: {"scheme": "stripes", "rate": 2}}}, ["conv1", "stripes", "known"]),
    ({"layers": {CONV1X1: {"scheme": "pattern", "rate": 2}}}, ["conv2", "3x3", "1x1"]),
    ({"layers": {FC: {"scheme": "pattern", "rate": 2}}}, ["'fc'", "3x3"]),
    ({"layers": {"block9*": {"scheme": "filter", "rate": 2}}}, ["block9*", "matches no"]),
    ({"layers": {"conv7": {"scheme": "filter", "rate": 2}}}, ["conv7", "conv1"]),
    ({"layers": {"relu1": {"scheme": "filter", "rate": 2}}}, ["relu1", "no constant weights"]),
    ({"layers": {CONV3X3: {"scheme": "filter", "rate": 0.5}}}, ["conv1", "below 1"]),
    ({"layers": {CONV3X3: {"scheme": "filter"}}}, ["conv1", 'needs a "rate"']),
    ({"layers": {CONV3X3: {"scheme": "pattern", "rate": 2, "bf": 8}}}, ["conv1", "bf"]),
    ({"layers": {CONV3X3: "pattern"}}, ["conv1", "must be an object"]),
    ({"layers": {"*": {"scheme": "block", "rate": 2}}, "extra": 1}, ["extra"]),
    ({"layers": [CONV3X3]}, ['"layers"']),
    ({"layers": {"dw*": {"scheme": "pattern", "rate": 2}}}, ["dw*", "depthwise"]),
    ({"layers": {"conv1*": {"scheme": "block", "rate": 2}}}, ["conv1*", "fits none"]),
    ({"layers": {CONV3X3: {"scheme": "dense", "rate": 3}}}, ["conv1", "no rate"]),
]


@pytest.mark.parametrize(("cfg", "needles"), BAD)
def test_bad_configs_name_the_key(graph: Graph, cfg, needles) -> None:
    with pytest.raises(NpasError) as e:
        run_pipeline(graph, prune_config=cfg)
    for needle in needles:
        assert needle in str(e.value), (needle, str(e.value))


def test_bad_config_files(graph: Graph, tmp_path: Path) -> None:
    with pytest.raises(NpasError, match="cannot read"):
        run_pipeline(graph, prune_config=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(NpasError, match="not valid JSON"):
        run_pipeline(graph, prune_config=bad)
    with pytest.raises(NpasError, match="annotate_sparsity"):
        _run_pipeline(graph, passes=[], prune_config={})


def test_sparsity_report(graph: Graph) -> None:
    cfg = {"layers": {CONV3X3: {"scheme": "pattern", "rate": 6}, FC: {"scheme": "block",
           "rate": 2}}}  # fmt: skip
    rep = sparsity_report(run_pipeline(graph, prune_config=cfg))
    rows = rep["layers"]
    assert rows[CONV3X3]["scheme"] == "pattern" and rows[CONV3X3]["rate"] == pytest.approx(6)
    assert (
        sum(h["kernels"] for h in rows[CONV3X3]["pattern_histogram"])
        == rows[CONV3X3]["kernels_kept"]
    )
    assert rows[FC]["scheme"] == "block" and "occupancy" in rows[FC]
    assert rows[FIRST] == {"op": "conv2d", "shape": [16, 3, 3, 3], "weights": 432, "zeros": 0,
                           "scheme": "dense", "rate": 1.0}  # fmt: skip
    total = rep["total"]
    assert total["weights"] == sum(r["weights"] for r in rows.values())
    assert total["rate"] == pytest.approx(total["weights"] / total["kept"])
    json.dumps(rep)  # JSON-able, as model.json stores it
