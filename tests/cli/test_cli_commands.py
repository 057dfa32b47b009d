"""The `npasc` commands a user runs on a good model: zoo, compile (short form), inspect, bench."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from npas import zoo

from .test_cli_errors import assert_user_error, conv_relu_model, npasc


def test_zoo_list_names_every_model() -> None:
    r = npasc("zoo", "list")
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    assert listed == zoo.list_models()


def test_zoo_export_unknown_name() -> None:
    assert_user_error(
        npasc("zoo", "export", "resnet9000", "-o", "x.onnx"), "resnet9000", "resnet18"
    )


def test_short_form_compiles_and_inspect_shows_kernels(tmp_path: Path) -> None:
    model = conv_relu_model(tmp_path / "m.onnx")
    out = tmp_path / "m.npas"
    r = npasc(str(model), "--target", "host", "-o", str(out))  # `npasc MODEL.onnx` = compile
    assert r.returncode == 0, r.stderr
    for name in ("model.json", "weights.bin", "CMakeLists.txt", "libnpas_model.so", "npas_bench"):
        assert (out / name).exists(), name
    r = npasc("inspect", str(out))
    assert r.returncode == 0, r.stderr
    assert "conv/1" in r.stdout and "npas_f32_conv3x3s1_relu" in r.stdout


def test_inspect_onnx_ir_shows_fused_relu(tmp_path: Path) -> None:
    model = conv_relu_model(tmp_path / "m.onnx")
    r = npasc("inspect", str(model))
    assert r.returncode == 0, r.stderr
    assert "conv/1" in r.stdout and "relu:1" in r.stdout  # before passes: two layers
    r = npasc("inspect", str(model), "--ir")
    assert r.returncode == 0, r.stderr
    assert "+relu" in r.stdout and "relu:1" not in r.stdout  # after passes: fused


def test_inspect_sparsity_counts_zeros(tmp_path: Path) -> None:
    r = npasc("inspect", str(conv_relu_model(tmp_path / "m.onnx")), "--sparsity")
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.startswith("conv/1"))
    assert row.split()[2] == str(4 * 3 * 3 * 3)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_bench_onnx_compiles_then_compares(tmp_path: Path, threads: str) -> None:
    model = conv_relu_model(tmp_path / "m.onnx")
    js = tmp_path / "b.json"
    r = npasc("bench", str(model), "--repeat", "4", "--threads", threads,
              "--compare", "onnxruntime", "--json", str(js))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    assert rep["threads"] == int(threads) and rep["check"]["matches"]
    assert rep["npas"]["runs"] == 4 and rep["onnxruntime"]["runs"] == 4
    assert "speed-up vs onnxruntime" in r.stdout


def test_device_without_target_support_is_a_clear_error(tmp_path: Path) -> None:
    model = conv_relu_model(tmp_path / "m.onnx")
    out = tmp_path / "m.npas"
    assert npasc("compile", str(model), "-o", str(out)).returncode == 0
    assert_user_error(npasc("run", str(out), "--device", "qemu"), "qemu")
