"""CompiledModel end to end on hand-built graphs: numerics against numpy, input checking,
threads, profiling, benchmarking, npas_bench, save/load, devices."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_build_helpers import (  # noqa: F401 -- _private_cache is an autouse fixture
    S,
    _private_cache,
    branchy_graph,
    chain_graph,
    make_graph,
    rand,
    toy_lower,
)

import npas
from npas.errors import ModelError, ShapeError, ToolchainError
from npas.ir import Op


@pytest.fixture(scope="module")
def branchy(tmp_path_factory: pytest.TempPathFactory):
    g, ref = branchy_graph()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NPAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "npas-cache"))
        cm = npas.compile(g, out=tmp_path_factory.mktemp("branchy") / "out")
    return cm, ref, g


def test_branchy_graph_matches_numpy(branchy) -> None:
    cm, ref, g = branchy
    x, y = rand(seed=1), rand(seed=2)
    got = cm.run({"x": x, "y": y})
    want = ref(x, y)
    assert list(got) == ["f", "b", "y_out"]
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)
    assert cm.input_names == ["x", "y"] and cm.output_shapes == [S, S, S]
    assert cm.peak_activation_bytes < sum(v.nbytes for v in g.values.values())
    # Runs do not leak state into each other.
    x2 = rand(seed=5)
    np.testing.assert_allclose(cm.run({"x": x2, "y": y})["f"], ref(x2, y)["f"], atol=1e-6)


def test_call_and_single_array_forms(branchy) -> None:
    cm, ref, _ = branchy
    x, y = rand(seed=1), rand(seed=2)
    f, _, y_out = cm(x, y)
    np.testing.assert_allclose(f, ref(x, y)["f"], atol=1e-6)
    np.testing.assert_array_equal(y_out, y)
    f2, _, _ = cm(x, y=y)
    np.testing.assert_array_equal(f, f2)
    with pytest.raises(ShapeError, match="pass a dict"):
        cm.run(x)


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"x": rand(), "z": rand()}, r"unknown \['z'\], missing \['y'\]"),
        ({"x": rand((1, 4, 8, 9)), "y": rand()}, r"'x': expected shape \(1, 4, 8, 8\).*8, 9\)"),
        ({"x": rand().astype(np.float64), "y": rand()}, r"'x': expected float32 .*float64.*astype"),
        ({"x": rand(), "y": np.zeros(S, np.int32)}, r"'y': expected float32 .*got int32"),
    ],
)  # fmt: skip
def test_bad_inputs_are_shape_errors(branchy, feeds, message) -> None:
    cm, _, _ = branchy
    with pytest.raises(ShapeError, match=message):
        cm.run(feeds)


def test_non_contiguous_float32_input_is_accepted(branchy) -> None:
    cm, ref, _ = branchy
    x = np.asfortranarray(rand(seed=7))
    y = rand((1, 4, 8, 16), seed=8)[..., ::2]
    assert not x.flags.c_contiguous and not y.flags.c_contiguous
    np.testing.assert_allclose(cm.run({"x": x, "y": y})["f"], ref(x, y)["f"], atol=1e-6)


def test_threads_give_the_same_result(tmp_path: Path) -> None:
    g, ref = chain_graph([0.5, 2.0, 1.0], name="threads")
    big = make_graph(
        "threads_big", {"x": (1, 16, 64, 64)}, ["r1"],
        [(Op.RELU, "r0", ("x",), ("r0",), None), (Op.ADD, "r1", ("r0", "x"), ("r1",), None)],
    )  # fmt: skip
    for graph in (g, big):
        cm1 = npas.compile(graph, out=tmp_path / graph.name, lower=toy_lower(), threads=1)
        cm2 = npas.load(tmp_path / graph.name, threads=2)
        assert cm2.threads == 2
        x = rand(graph.shape("x"), seed=3)
        np.testing.assert_array_equal(cm1(x), cm2(x))
        cm1.set_threads(2)
        np.testing.assert_array_equal(cm1(x), cm2(x))
    np.testing.assert_array_equal(npas.load(tmp_path / "threads", threads=2)(x := rand()), ref(x))


def test_profile_and_benchmark_cover_every_layer(branchy) -> None:
    cm, _, g = branchy
    prof = cm.profile()
    assert [p["name"] for p in prof] == [layer.name for layer in g.layers]
    assert all(p["median_ms"] >= 0 for p in prof)
    assert {p["kernel"] for p in prof if p["op"] in ("reshape", "identity")} == {"view"}
    r = cm.benchmark(repeat=7, warmup=2, threads=2)
    assert len(r.runs) == 7 and r.p10_ms <= r.median_ms <= r.p90_ms and r.threads == 2
    assert cm.threads == 1  # the benchmark's thread count does not stick
    assert set(r.per_layer[0]) == {"name", "op", "kernel", "scheme", "macs", "median_ms"}
    assert json.loads(json.dumps(r.to_dict()))["median_ms"] == r.median_ms


def test_npas_bench_prints_json(branchy) -> None:
    cm, _, g = branchy
    proc = subprocess.run(
        [str(cm.path / "npas_bench"), str(cm.path / "weights.bin"), "--repeat", "5",
         "--warmup", "1", "--threads", "2", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert len(report["runs"]) == 5 and report["threads"] == 2
    assert report["p10_ms"] <= report["median_ms"] <= report["p90_ms"]
    assert [layer["name"] for layer in report["layers"]] == [layer.name for layer in g.layers]
    assert set(report["layers"][0]) >= {"name", "op", "kernel", "scheme", "median_ms"}
    bad = subprocess.run([str(cm.path / "npas_bench")], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_untrusted_names_survive_codegen(tmp_path: Path) -> None:
    names = ['x"; system("rm -rf /"); //', "ünï/😀", "a\nb\\", "*/ ??/"]
    layers = [
        (Op.RELU, names[0], (names[1],), (names[2],), None),
        (Op.RELU, names[3], (names[2],), (names[3] + "out",), None),
    ]
    g = make_graph('we"ird */ name\n', {names[1]: S}, [names[3] + "out", names[2]], layers)
    cm = npas.compile(g, out=tmp_path / "weird")
    x = rand()
    out = cm.run({names[1]: x})
    assert list(out) == [names[3] + "out", names[2]]
    np.testing.assert_array_equal(out[names[2]], np.maximum(x, 0))
    assert [p["name"] for p in cm.profile(repeat=1)] == [names[0], names[3]]
    assert [n for n, _ in cm._native.inputs] == [names[1]]


def test_recompiling_into_the_same_directory_loads_the_new_code(tmp_path: Path) -> None:
    out = tmp_path / "same"
    x = rand()
    first = npas.compile(chain_graph([0.5])[0], out=out, lower=toy_lower())
    np.testing.assert_array_equal(first(x), chain_graph([0.5])[1](x))
    second = npas.compile(chain_graph([0.25])[0], out=out, lower=toy_lower())
    np.testing.assert_array_equal(second(x), chain_graph([0.25])[1](x))
    np.testing.assert_array_equal(first(x), chain_graph([0.5])[1](x))  # still its own code


def test_save_and_load(branchy, tmp_path: Path) -> None:
    cm, ref, _ = branchy
    dest = cm.save(tmp_path / "saved")
    assert (dest / "model.json").is_file() and not list(tmp_path.glob(".saved*"))
    again = npas.load(dest, threads=2)
    x, y = rand(seed=1), rand(seed=2)
    np.testing.assert_allclose(again.run({"x": x, "y": y})["f"], ref(x, y)["f"], atol=1e-6)
    cm.save(dest)  # overwriting an artifact is fine
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.csv").write_text("1,2")
    with pytest.raises(npas.NpasError, match="not an npas output directory"):
        cm.save(tmp_path / "foreign")


def test_load_errors(branchy, tmp_path: Path) -> None:
    cm, _, _ = branchy
    with pytest.raises(ToolchainError, match=r"compiled for target 'host'.*device 'qemu' is arm64"):
        npas.load(cm.path, device="qemu")
    with pytest.raises(ToolchainError, match="unknown device"):
        npas.load(cm.path, device="gpu0")
    with pytest.raises(ModelError, match="not a compiled npas directory"):
        npas.load(tmp_path)


def test_import_npas_is_lazy() -> None:
    code = (
        "import sys, npas\n"
        "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'npas._runtime', 'jinja2')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(npas.compile) and callable(npas.load) and npas.CompiledModel\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_signature_edge_cases(tmp_path: Path) -> None:
    # An input passed straight through as an output (twice), a constant output, an input that
    # nothing reads, and an output that a later in-place candidate also reads.
    k = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = make_graph(
        "edges", {"x": S, "unused": (3,)}, ["x", "k", "r", "x"],
        [(Op.RELU, "r", ("x",), ("r",), None)], consts={"k": k},
    )  # fmt: skip
    cm = npas.compile(g, out=tmp_path / "edges")
    x = rand()
    out = cm.run({"x": x, "unused": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(out["x"], x)
    np.testing.assert_array_equal(out["k"], k)
    np.testing.assert_array_equal(out["r"], np.maximum(x, 0))


def test_compile_from_onnx_path_bytes_and_proto(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Add", ["r", "x"], ["y"], name="add")],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    x = rand((2, 4, 8, 8))
    from_path = npas.compile(str(path), input_shapes={"x": (2, 4, 8, 8)})
    assert from_path.source_model == str(path.resolve())
    np.testing.assert_allclose(from_path(x), np.maximum(x, 0) + x, rtol=1e-6)
    from_bytes = npas.compile(path.read_bytes(), input_shapes={"x": (2, 4, 8, 8)})
    from_proto = npas.compile(model, input_shapes={"x": (2, 4, 8, 8)})
    assert from_bytes.compile_info.cache_hit and from_proto.compile_info.cache_hit
    np.testing.assert_array_equal(from_proto(x), from_path(x))
    other_batch = npas.compile(model)  # the symbolic batch becomes 1
    assert not other_batch.compile_info.cache_hit and other_batch.input_shapes == [S]
