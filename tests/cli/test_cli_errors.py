"""Bad input through `npasc`: exit status 2, a message saying what/where/what to do, and no
partial output directory left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def npasc(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "npas.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def conv_relu_model(path: Path, batch: int | str = 1, hw: int | str = 8) -> Path:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv/1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu:1"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, hw, hw])],
        [w],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, path)
    return path


def assert_user_error(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle.lower() in r.stderr.lower(), (needle, r.stderr)


def test_truncated_model(tmp_path: Path) -> None:
    good = conv_relu_model(tmp_path / "good.onnx")
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    out = tmp_path / "out"
    assert_user_error(npasc("compile", str(bad), "-o", str(out)), "truncated.onnx")
    assert not out.exists()


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a model\n" * 20)
    out = tmp_path / "out"
    assert_user_error(npasc(str(bad), "-o", str(out)), "notes.onnx")
    assert not out.exists()


def test_missing_file(tmp_path: Path) -> None:
    assert_user_error(npasc("compile", str(tmp_path / "nope.onnx")), "nope.onnx")


def test_unsupported_op_names_op_node_opset(tmp_path: Path) -> None:
    g = helper.make_graph(
        [helper.make_node("Celu", ["x"], ["y"], name="my_celu")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    path = tmp_path / "celu.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    out = tmp_path / "out"
    assert_user_error(npasc("compile", str(path), "-o", str(out)), "Celu", "my_celu", "13")
    assert not out.exists()


def test_unresolvable_dynamic_dim_then_input_shape_resolves_it(tmp_path: Path) -> None:
    path = conv_relu_model(tmp_path / "dyn.onnx", batch="N", hw="H")
    out = tmp_path / "out"
    assert_user_error(npasc("compile", str(path), "-o", str(out)), "--input-shape", "x")
    assert not out.exists()
    r = npasc("compile", str(path), "-o", str(out), "--input-shape", "x=1x3x10x10")
    assert r.returncode == 0, r.stderr
    assert (out / "model.json").is_file()


def test_malformed_input_shape_flag(tmp_path: Path) -> None:
    path = conv_relu_model(tmp_path / "m.onnx")
    assert_user_error(npasc("compile", str(path), "--input-shape", "x=1by3"), "--input-shape")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("compiled")
    model = conv_relu_model(tmp / "m.onnx")
    out = tmp / "m.npas"
    r = npasc("compile", str(model), "-o", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_run_writes_every_output(compiled: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = npasc("run", str(compiled), "--input", f"x={tmp_path / 'x.npy'}",
              "--output-dir", str(tmp_path / "res"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "res" / "y.npy")
    import onnxruntime as ort

    ref = ort.InferenceSession(str(compiled.parent / "m.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-4)


def test_run_wrong_shape_and_dtype(compiled: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((1, 3, 9, 9), np.float32))
    r = npasc("run", str(compiled), "--input", f"x={tmp_path / 'bad.npy'}")
    assert_user_error(r, "x", "1, 3, 8, 8")
    np.save(tmp_path / "f64.npy", np.zeros((1, 3, 8, 8), np.float64))
    assert_user_error(npasc("run", str(compiled), "--input", f"x={tmp_path / 'f64.npy'}"),
                      "float64")  # fmt: skip
    assert_user_error(npasc("run", str(compiled), "--input", f"zz={tmp_path / 'f64.npy'}"), "zz")


def test_run_on_a_directory_that_is_not_compiled(tmp_path: Path) -> None:
    assert_user_error(npasc("run", str(tmp_path)), "npasc compile")


def test_bench_json_schema(compiled: Path, tmp_path: Path) -> None:
    js = tmp_path / "b.json"
    r = npasc("bench", str(compiled), "--repeat", "5", "--compare", "onnxruntime",
              "--json", str(js), "--per-layer")  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    for key in ("model", "target", "device", "threads", "npas", "onnxruntime",
                "speedup_vs_onnxruntime", "macs", "layers"):  # fmt: skip
        assert key in rep, key
    assert set(rep["npas"]) == {"median_ms", "p10_ms", "p90_ms", "runs"}
    assert rep["npas"]["runs"] == 5 and rep["npas"]["median_ms"] > 0
    assert rep["check"]["matches"] is True
    assert rep["macs"] == 4 * 3 * 9 * 8 * 8
    assert {layer["op"] for layer in rep["layers"]} == {"conv2d"}
    assert all(set(layer) == {"name", "op", "kernel", "scheme", "median_ms"}
               for layer in rep["layers"])  # fmt: skip


def test_missing_compiler_is_a_clear_error(tmp_path: Path) -> None:
    model = conv_relu_model(tmp_path / "m.onnx", hw=6)
    env = dict(os.environ, PATH=str(tmp_path / "empty-bin"), NPAS_NO_CACHE="1",
               NPAS_CACHE_DIR=str(tmp_path / "cache"))  # fmt: skip
    out = tmp_path / "out"
    r = npasc("compile", str(model), "-o", str(out), env=env)
    assert_user_error(r, "install")
    assert not out.exists()
