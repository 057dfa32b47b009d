"""`npasc prune` and `npasc inspect --sparsity` as a user runs them; bad input exits 2 with a
message and leaves no output behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from prune_helpers import (
    CONV1X1,
    CONV3X3,
    FIRST,
    UNNAMED,
    assert_user_error,
    npasc,
    run_ort,
    save,
    tiny_cnn,
)

X = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype(np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(tiny_cnn(), tmp_path_factory.mktemp("cli") / "tiny.onnx")


def test_prune_writes_a_runnable_model_and_reports_rates(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "pruned.onnx"
    r = npasc("prune", str(model), "--scheme", "pattern", "--rate", "6", "-o", str(out))
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith(CONV3X3 + " "))
    assert row.split()[1:] == ["pattern", "6.00x"]
    assert f"{FIRST}" in r.stdout and "first conv" in r.stdout  # left dense, and why
    assert "1 layer(s) pruned" in r.stdout and str(out) in r.stdout
    assert np.isfinite(run_ort(out, {"x": X})).all()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    r = npasc("inspect", str(out), "--sparsity")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith(CONV3X3 + " "))
    cols = row.split()
    assert cols[1:3] == ["conv2d", str(24 * 16 * 9)] and cols[4:6] == ["pattern", "6.00x"]
    assert "4-entry x8" in row and "patterns" in row
    total = r.stdout.splitlines()[-1]
    assert total.startswith("total") and "dense 5" in total and "pattern 1" in total


def test_prune_layers_and_params(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "bp.onnx"
    r = npasc("prune", str(model), "--scheme", "block-punched", "--rate", "2.5", "--layers",
              "Conv_*", "--param", "bf=4", "--param", "bc=2", "-o", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = npasc("inspect", str(out), "--sparsity")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith(UNNAMED + " "))
    assert "block-punched" in row and "4x2 blocks" in row
    assert "dense" in next(ln for ln in r.stdout.splitlines() if ln.startswith(CONV1X1 + " "))

    out5 = tmp_path / "p5.onnx"
    r = npasc("prune", str(model), "--scheme", "pattern", "--rate", "4", "--param", "entries=5",
              "-o", str(out5))  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = npasc("inspect", str(out5), "--sparsity")
    assert "5-entry" in r.stdout


def test_prune_block_on_1x1_and_fc(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "blk.onnx"
    r = npasc("prune", str(model), "--scheme", "block", "--rate", "3", "-o", str(out))
    assert r.returncode == 0, r.stderr
    pruned = {ln.split()[0] for ln in r.stdout.splitlines() if " block " in f" {ln} "}
    assert pruned == {CONV1X1, UNNAMED, "fc"}
    r = npasc("inspect", str(out), "--sparsity")
    assert "8-row blocks" in r.stdout


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--scheme", "stripes", "--rate", "2"], ["invalid choice", "stripes"]),
        (["--scheme", "pattern", "--rate", "0.5"], ["below 1"]),
        (["--scheme", "pattern", "--rate", "2", "--layers", "nomatch*"], ["nomatch*", "no"]),
        (["--scheme", "pattern", "--rate", "2", "--layers", CONV1X1], [CONV1X1, "3x3", "1x1"]),
        (["--scheme", "pattern", "--rate", "2", "--param", "bf"], ["KEY=VALUE"]),
        (["--scheme", "pattern", "--rate", "2", "--param", "bf=4"], ["unknown parameter", "bf"]),
        (["--scheme", "block", "--rate", "fast"], ["invalid float value"]),
    ],
)
def test_prune_bad_input(model: Path, tmp_path: Path, args, needles) -> None:
    out = tmp_path / "out.onnx"
    assert_user_error(npasc("prune", str(model), *args, "-o", str(out)), *needles)
    assert not out.exists()


def test_prune_output_is_a_directory(model: Path, tmp_path: Path) -> None:
    r = npasc("prune", str(model), "--scheme", "filter", "--rate", "2", "-o", str(tmp_path))
    assert_user_error(r, "is a directory")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_prune_bad_model(tmp_path: Path) -> None:
    out = tmp_path / "out.onnx"
    assert_user_error(
        npasc("prune", str(tmp_path / "nope.onnx"), "--scheme", "filter", "--rate", "2", "-o",
              str(out)), "nope.onnx")  # fmt: skip
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model\n" * 10)
    assert_user_error(
        npasc("prune", str(bad), "--scheme", "filter", "--rate", "2", "-o", str(out)), "bad.onnx"
    )
    assert not out.exists()


def test_inspect_sparsity_of_a_dense_model(model: Path) -> None:
    r = npasc("inspect", str(model), "--sparsity")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:6] == ["layer", "op", "weights", "zeros", "scheme", "rate"]
    assert all(" dense " in ln for ln in lines[1:-1])
    assert lines[-1].startswith("total") and "1.00x" in lines[-1]
    onnx.checker.check_model(str(model))


def test_inspect_sparsity_of_an_artifact_without_a_record() -> None:
    """Artifacts compiled before the sparsity record still list their layers' schemes."""
    from npas.cli import format_sparsity

    meta = {"layers": [{"name": "c", "op": "conv2d", "scheme": "pattern", "kernel": "k"},
                       {"name": "r", "op": "relu", "scheme": "dense", "kernel": "k"}]}  # fmt: skip
    lines = format_sparsity(meta).splitlines()
    assert lines[1].split() == ["c", "conv2d", "pattern"] and len(lines) == 2
