"""A pruned model compiles for the host (dense kernels on zeroed weights) and matches ONNX
Runtime on the pruned ONNX; the artifact records the detected schemes; npas.compile takes a
prune config. Needs the host C++ toolchain (g++, cmake, ninja)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prune_helpers import CONV1X1, CONV3X3, DEPTHWISE, UNNAMED, npasc, run_ort, save, tiny_cnn

import npas
from npas.frontend import load_onnx
from npas.ir.interp import run_graph
from npas.passes import run_pipeline

RTOL, ATOL = 1e-3, 1e-4
X = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
SCHEMES = {CONV3X3: "pattern", CONV1X1: "block-punched", UNNAMED: "filter", "fc": "unstructured",
           DEPTHWISE: "pattern"}  # fmt: skip


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    m = tiny_cnn()
    for layer, scheme in SCHEMES.items():
        m = npas.prune_onnx(m, scheme=scheme, rate=3.0, layers=layer).model
    return save(m, tmp_path_factory.mktemp("pruned") / "pruned.onnx")


@pytest.fixture(scope="module")
def compiled(pruned: Path, tmp_path_factory: pytest.TempPathFactory):
    return npas.compile(str(pruned), target="host", out=tmp_path_factory.mktemp("c") / "out")


def test_pruned_model_matches_onnxruntime(pruned: Path, compiled) -> None:
    np.testing.assert_allclose(
        compiled.run({"x": X})["y"], run_ort(pruned, {"x": X}), rtol=RTOL, atol=ATOL
    )


def test_artifact_records_the_detected_schemes(compiled) -> None:
    meta = json.loads((compiled.path / "model.json").read_text())
    schemes = {x["name"]: x["scheme"] for x in meta["layers"]}
    for layer, scheme in SCHEMES.items():
        if scheme != "filter":
            assert schemes[layer] == scheme, layer
    # the filter-pruned layer lost its removed filters: a smaller dense layer
    assert schemes[UNNAMED] == "dense" and schemes["conv0"] == "dense"
    assert meta["sparsity"]["layers"][UNNAMED]["shape"] == [13, 20, 1, 1]  # 40 / 3 kept
    assert meta["sparsity"]["layers"]["fc"]["shape"] == [10, 13]
    rows = meta["sparsity"]["layers"]
    assert rows[CONV3X3]["scheme"] == "pattern" and rows[CONV3X3]["pattern_histogram"]
    assert rows[CONV1X1]["bf"] == 8 and rows[CONV1X1]["bc"] == 4

    r = npasc("inspect", str(compiled.path), "--sparsity")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith(CONV3X3 + " "))
    assert " pattern " in row and "4-entry" in row
    assert r.stdout.splitlines()[-1].startswith("total")


CONFIG = {
    "default": {"scheme": "dense"},
    "layers": {CONV3X3: {"scheme": "pattern", "rate": 6.0}, "Conv_*": {"scheme": "block",
               "rate": 2.5}, "fc": {"scheme": "filter", "rate": 2}},
}  # fmt: skip


@pytest.mark.parametrize("as_file", [False, True])
def test_compile_with_prune_config(tmp_path: Path, as_file: bool) -> None:
    model = save(tiny_cnn(seed=3), tmp_path / "dense.onnx")
    cfg = CONFIG
    arg: object = cfg
    if as_file:
        arg = tmp_path / "layers.json"
        arg.write_text(json.dumps(cfg))
    cm = npas.compile(str(model), target="host", prune_config=arg)
    want = run_graph(run_pipeline(load_onnx(str(model)), prune_config=cfg), {"x": X})["y"]
    np.testing.assert_allclose(cm.run({"x": X})["y"], want, rtol=RTOL, atol=ATOL)
    dense = run_ort(model, {"x": X})
    assert not np.allclose(want, dense, rtol=RTOL, atol=ATOL)  # the config did prune
    schemes = {x["name"]: x["scheme"] for x in cm.metadata["layers"]}
    # fc computes the graph output: its zero filters stay (outputs keep their shape)
    assert (schemes[CONV3X3], schemes[UNNAMED], schemes["fc"]) == ("pattern", "block", "filter")


def test_cli_compile_with_prune_config(tmp_path: Path) -> None:
    model = save(tiny_cnn(seed=3), tmp_path / "dense.onnx")
    cfg = tmp_path / "layers.json"
    cfg.write_text(json.dumps(CONFIG))
    out = tmp_path / "out"
    r = npasc("compile", str(model), "--prune-config", str(cfg), "-o", str(out))
    assert r.returncode == 0, r.stderr
    r = npasc("inspect", str(out), "--sparsity")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith(CONV3X3 + " "))
    assert " pattern " in row and "6.00x" in row

    cfg.write_text(json.dumps({"layers": {"nothing*": {"scheme": "filter", "rate": 2}}}))
    bad = tmp_path / "bad"
    r = npasc("compile", str(model), "--prune-config", str(cfg), "-o", str(bad))
    assert r.returncode == 2 and "nothing*" in r.stderr and "Traceback" not in r.stderr
    assert not bad.exists()
