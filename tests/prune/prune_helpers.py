"""Shared helpers of the pruning tests: a small CNN as ONNX that has every kind of prunable
layer (first conv, 3x3, 1x1 with remainders, depthwise, an unnamed node, BN to fold, a Gemm),
and ONNX Runtime."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

# layer names of tiny_cnn (the 1x1 "conv3" node is unnamed: the frontend calls it Conv_9)
FIRST, CONV3X3, CONV1X1, DEPTHWISE, UNNAMED, FC = (
    "conv0", "conv1", "conv2", "dw", "Conv_9", "fc",
)  # fmt: skip


def _bn(rng: np.random.Generator, name: str, c: int) -> dict[str, np.ndarray]:
    return {
        f"{name}.scale": rng.uniform(0.5, 1.5, c).astype(np.float32),
        f"{name}.bias": rng.normal(0, 0.2, c).astype(np.float32),
        f"{name}.mean": rng.normal(0, 0.2, c).astype(np.float32),
        f"{name}.var": rng.uniform(0.5, 2.0, c).astype(np.float32),
    }


def tiny_cnn(hw: int = 12, seed: int = 0) -> onnx.ModelProto:
    """x[1,3,hw,hw] -> conv0 3x3 (+BN, relu) -> conv1 3x3 (relu) -> conv2 1x1 (+BN) -> dw 3x3
    (relu) -> Conv_9 1x1 (relu) -> global pool -> fc (Gemm, transB)."""
    rng = np.random.default_rng(seed)

    def w(*shape: int) -> np.ndarray:
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    inits = {
        "w0": w(16, 3, 3, 3), "w1": w(24, 16, 3, 3), "b1": rng.normal(0, 0.1, 24).astype("f4"),
        "w2": w(20, 24, 1, 1), "wd": w(20, 1, 3, 3), "bd": rng.normal(0, 0.1, 20).astype("f4"),
        "w3": w(40, 20, 1, 1), "wf": w(10, 40), "bf": rng.normal(0, 0.1, 10).astype("f4"),
        **_bn(rng, "bn0", 16), **_bn(rng, "bn2", 20),
    }  # fmt: skip
    pad = [1, 1, 1, 1]
    bn = lambda n: [f"{n}.scale", f"{n}.bias", f"{n}.mean", f"{n}.var"]  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name=FIRST, pads=pad),
        helper.make_node("BatchNormalization", ["c0", *bn("bn0")], ["n0"], name="bn0"),
        helper.make_node("Relu", ["n0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1", "b1"], ["c1"], name=CONV3X3, pads=pad),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name=CONV1X1),
        helper.make_node("BatchNormalization", ["c2", *bn("bn2")], ["n2"], name="bn2"),
        helper.make_node("Conv", ["n2", "wd", "bd"], ["d"], name=DEPTHWISE, pads=pad, group=20),
        helper.make_node("Relu", ["d"], ["rd"], name="relud"),
        helper.make_node("Conv", ["rd", "w3"], ["c3"]),  # unnamed: the frontend says Conv_9
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name=FC, transB=1),
    ]
    assert nodes[9].name == "" and UNNAMED == "Conv_9"
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def save(m: onnx.ModelProto, path: Path) -> Path:
    onnx.save(m, str(path))
    return path


def run_ort(model: onnx.ModelProto | str | Path, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
    """The first output under ONNX Runtime (graph optimisations off, one thread)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    src = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, dict(feeds))[0]


def initializers(m: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


def npasc(*args: str, cwd: Path | None = None):
    """`npasc ARGS...` in a subprocess (as a user runs it)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "npas.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def assert_user_error(r, *needles: str) -> None:
    """Exit status 2, a message naming what is wrong, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle.lower() in r.stderr.lower(), (needle, r.stderr)
