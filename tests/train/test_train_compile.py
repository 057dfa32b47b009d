"""A model pruned by training exports to plain ONNX that npas compiles for the host: the
compiled layers run the trained schemes (detected from the zeros alone), the artifact records
them, and the compiled output matches PyTorch. Needs the host C++ toolchain (g++, cmake,
ninja)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import CONV1X1, CONV3X3, data, dense_model, node_of_weight, run_ort, threads

import npas
import npas.train as T
from npas.codegen.naming import parse_kernel_name
from npas.frontend import load_onnx
from npas.passes.prune import annotate_sparsity, sparsity_report

# one layer per scheme; the filter-pruned conv feeds a padded 3x3 conv through BN and ReLU, so
# the compiler removes its filters (zero channels) and it becomes a smaller dense layer
CONFIG = {
    "default": {"scheme": "dense"},
    "layers": {
        "layer*.body.*": {"scheme": "pattern", "rate": 6.0},
        CONV3X3[0]: {"scheme": "filter", "rate": 2.0},
        CONV3X3[3]: {"scheme": "block-punched", "rate": 5.0},
        CONV1X1[0]: {"scheme": "block-punched", "rate": 2.0, "bf": 4, "bc": 2},
        CONV1X1[1]: {"scheme": "block", "rate": 2.5},
        "fc": {"scheme": "unstructured", "rate": 2.0},
    },
}
EXPECTED = {
    CONV3X3[1]: "pattern", CONV3X3[2]: "pattern", CONV3X3[4]: "pattern", CONV3X3[5]: "pattern",
    CONV3X3[3]: "block-punched", CONV1X1[0]: "block-punched", CONV1X1[1]: "block",
    "fc": "unstructured", "stem.0": "dense",
}  # fmt: skip


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, T.PruneReport]:
    threads()
    s = data()
    model, report = T.prune(dense_model(), CONFIG, s.train, s.val, method="rgl", epochs=2,
                            progress=False)  # fmt: skip
    path = T.export_onnx(model, tmp_path_factory.mktemp("pruned") / "pruned.onnx", s.val[:1][0])
    return model, path, report


def test_exported_zeros_are_detected_as_trained(pruned) -> None:
    _, path, report = pruned
    nodes = node_of_weight(path)
    rows = sparsity_report(annotate_sparsity(load_onnx(str(path))))["layers"]
    reached = {r.name: r for r in report.layers}
    for name, scheme in {**EXPECTED, CONV3X3[0]: "filter"}.items():
        row = rows[nodes[name]]
        assert row["scheme"] == scheme, name
        assert reached[name].scheme == scheme, name
        assert row["rate"] == pytest.approx(reached[name].rate), name


def test_compiled_model_runs_the_trained_schemes(
    pruned, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, path, _ = pruned
    # a sparse kernel wherever one serves: the narrow test layers are too small for the cost
    # model to expect a gain, and the test must see the trained scheme's kernel run
    monkeypatch.setenv("NPAS_SPARSE", "sparse")
    cm = npas.compile(str(path), target="host", out=tmp_path / "out")
    nodes = node_of_weight(path)
    meta = json.loads((cm.path / "model.json").read_text())
    compiled = {x["name"]: x for x in meta["layers"]}
    for name, scheme in EXPECTED.items():
        layer = compiled[nodes[name]]
        assert layer["scheme"] == scheme, name
        if scheme != "dense":
            assert parse_kernel_name(layer["kernel"])["scheme"] == scheme.replace("-", ""), layer
    # filter pruning made the layer a smaller dense one: half of its 8 filters are gone
    shrunk = meta["sparsity"]["layers"][nodes[CONV3X3[0]]]
    assert compiled[nodes[CONV3X3[0]]]["scheme"] == "dense" and shrunk["shape"][0] == 4

    x = data().val[:1][0]
    with torch.no_grad():
        ref = model(x).numpy()
    got = cm.run({"input": x.numpy()})["output"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(run_ort(path, np.concatenate([x.numpy()] * 2))[:1], ref,
                               rtol=1e-4, atol=1e-4)  # fmt: skip
