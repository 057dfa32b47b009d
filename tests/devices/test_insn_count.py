"""Instruction counting under qemu-aarch64 with npas' TCG plugin: the plugin builds (also when
several callers build it at once), counts exactly what a hand-written aarch64 program
executes, and on an arm64-compiled model gives deterministic per-inference and per-layer counts
of code that computes the right outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npas
from npas.errors import ShapeError, ToolchainError
from npas.runtime.devices.insn_count import count_instructions, plugin_path, run_counted

TOOLS = {
    "qemu-aarch64": "apt-get install qemu-user",
    "aarch64-linux-gnu-gcc": "apt-get install g++-aarch64-linux-gnu",
    "aarch64-linux-gnu-g++": "apt-get install g++-aarch64-linux-gnu",
    "cc": "apt-get install gcc",
}


def require_tools() -> None:
    """Fail, never skip, when a tool is missing, saying what to install."""
    missing = [name for name in TOOLS if shutil.which(name) is None]
    if missing:
        hints = "; ".join(f"{name}: `{TOOLS[name]}`" for name in missing)
        pytest.fail(f"instruction counting needs {', '.join(missing)} ({hints}, or run "
                    "scripts/setup.sh)")  # fmt: skip


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("npas-cache")


@pytest.fixture(autouse=True)
def _private_cache(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPAS_CACHE_DIR", str(cache_dir))
    monkeypatch.delenv("NPAS_NO_CACHE", raising=False)
    monkeypatch.delenv("NPAS_ISA", raising=False)


# --------------------------------------------------------------------------------------------
# The plugin on a hand-written program
# --------------------------------------------------------------------------------------------

LOOP = 1000
# Three inferences of three layers between markers, with instructions before the start marker
# and after the end marker in the same basic blocks (they must not count), markers in the
# middle of blocks (attribution must be exact at the instruction), then one stray layer marker
# outside any inference.
#   prologue: mov                                    = 1
#   layer 0:  LOOP x (subs, b.ne) + mov              = 2 * LOOP + 1
#   layer 1:  10 x (sub, cbnz)                       = 20
#   layer 2:  (nothing)                              = 0
PROGRAM = textwrap.dedent(
    f"""
    int main(void) {{
      for (int r = 0; r < 3; ++r) {{
        __asm__ volatile(
            "mov x10, #5\\n"
            "add x10, x10, #1\\n"
            "hint #125\\n"
            "mov x9, #{LOOP}\\n"
            "hint #126\\n"
            "1: subs x9, x9, #1\\n"
            "b.ne 1b\\n"
            "mov x9, #10\\n"
            "hint #126\\n"
            "2: sub x9, x9, #1\\n"
            "cbnz x9, 2b\\n"
            "hint #126\\n"
            "hint #127\\n"
            "add x10, x10, #1\\n"
            "add x10, x10, #1\\n"
            ::: "x9", "x10", "cc", "memory");
      }}
      __asm__ volatile("hint #126\\n" ::: "memory");
      return 0;
    }}
    """
)
EXPECTED_LAYERS = [2 * LOOP + 1, 20, 0]


@pytest.fixture(scope="module")
def hand_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools()
    d = tmp_path_factory.mktemp("hand")
    (d / "p.c").write_text(PROGRAM)
    subprocess.run(
        ["aarch64-linux-gnu-gcc", "-O1", "-static", "-o", str(d / "p"), str(d / "p.c")],
        check=True,
        capture_output=True,
    )
    return d / "p"


def test_plugin_builds_once_and_is_cached() -> None:
    require_tools()
    first = plugin_path()
    assert first.is_file() and first.suffix == ".so"
    mtime = first.stat().st_mtime_ns
    assert plugin_path() == first and first.stat().st_mtime_ns == mtime


def test_plugin_builds_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tools()
    monkeypatch.setenv("NPAS_CACHE_DIR", str(tmp_path))
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: plugin_path(), range(4)))
    assert len(set(paths)) == 1 and paths[0].is_file()
    assert [p.name for p in paths[0].parent.iterdir()] == [paths[0].name]  # no temp leftovers


@pytest.mark.parametrize("per_instruction", [False, True], ids=["per-block", "per-insn"])
def test_counts_exactly_what_a_program_executes(hand_program: Path, per_instruction) -> None:
    run = run_counted([str(hand_program)], per_instruction=per_instruction)
    assert len(run.inferences) == 3
    for i, inf in enumerate(run.inferences):
        assert inf == {
            "inference": i,
            "total": 1 + sum(EXPECTED_LAYERS),
            "prologue": 1,
            "layers": EXPECTED_LAYERS,
        }
    s = run.summary
    assert (s["inferences"], s["incomplete"], s["stray_markers"], s["vcpus"]) == (3, 0, 1, 1)
    assert s["mode"] == ("insn" if per_instruction else "tb")
    # The whole process (start-up included) executes far more than the marked regions.
    assert s["executed"] > 3 * (1 + sum(EXPECTED_LAYERS)) + 1000


# --------------------------------------------------------------------------------------------
# A compiled model
# --------------------------------------------------------------------------------------------


def small_cnn(path: Path) -> Path:
    """conv 3->8, conv 8->16 (5.3x the MACs of the first), max-pool, flatten (a view), gemm."""
    rng = np.random.default_rng(0)

    def const(name: str, *shape: int) -> onnx.TensorProto:
        scale = 1.0 / np.sqrt(np.prod(shape[1:]))
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [const("w1", 8, 3, 3, 3), const("b1", 8), const("w2", 16, 8, 3, 3),
             const("w3", 10, 256)]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node(
            "MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[4, 4], strides=[4, 4]
        ),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3"], ["y"], name="fc", transB=1),
    ]
    g = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.fixture(scope="module")
def arm_model(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    require_tools()
    d = tmp_path_factory.mktemp("arm_model")
    onnx_path = small_cnn(d / "small_cnn.onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NPAS_CACHE_DIR", str(cache_dir))
        npas.compile(str(onnx_path), target="arm64", out=d / "out")
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    return d / "out", onnx_path, x


def test_model_counts_are_deterministic_and_right(arm_model) -> None:
    out, onnx_path, x = arm_model
    a = count_instructions(out, {"x": x}, warmup=1, repeat=2)
    b = count_instructions(out, {"x": x}, warmup=1, repeat=2)
    assert a.deterministic and b.deterministic, (a.note, b.note)
    assert len(a.runs) == 2 and len(set(a.runs)) == 1
    assert (a.per_inference, a.per_layer) == (b.per_inference, b.per_layer)
    # The counted code computes the model: compare with ONNX Runtime.
    import onnxruntime as ort

    want = ort.InferenceSession(str(onnx_path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(a.outputs["y"], want, rtol=1e-3, atol=1e-4)


def test_model_per_layer_counts(arm_model) -> None:
    out, _, x = arm_model
    r = count_instructions(out, {"x": x}, warmup=0, repeat=1)
    meta = json.loads((out / "model.json").read_text())
    names = [layer["name"] for layer in meta["layers"]]
    assert [row.name for row in r.layers] == names and len(r.per_layer) == len(names)
    # The layers and the executor's prologue make up the whole inference; the prologue (work
    # between the start of a run and its first layer) is small.
    assert sum(r.per_layer) <= r.per_inference
    assert r.per_inference - sum(r.per_layer) == r.prologue < 200
    assert r.macs == meta["macs"] and r.instructions_per_mac == r.per_inference / r.macs
    by_name = {row.name: row for row in r.layers}
    conv1, conv2 = by_name["conv1"], by_name["conv2"]
    assert conv2.macs > conv1.macs
    assert conv2.instructions > conv1.instructions > 0
    assert conv2.instructions_per_mac == conv2.instructions / conv2.macs
    assert all(n > 0 for n in r.per_layer)  # the loop step of a view layer counts too


def test_warmup_runs_are_dropped(arm_model) -> None:
    out, _, x = arm_model
    r = count_instructions(out, {"x": x}, warmup=2, repeat=3)
    assert len(r.runs) == 3 and r.deterministic
    # The process ran five inferences; only the last three are reported.
    argv = [str(out / "npas_bench"), str(out / "weights.bin"), "--markers", "--threads", "1",
            "--warmup", "2", "--repeat", "3"]  # fmt: skip
    run = run_counted(argv)
    assert run.summary["inferences"] == 5 and len(run.inferences) == 5


def test_block_counting_agrees_with_per_instruction_counting(arm_model) -> None:
    out, _, x = arm_model
    fast = count_instructions(out, {"x": x}, warmup=0, repeat=1)
    exact = count_instructions(out, {"x": x}, warmup=0, repeat=1, per_instruction=True)
    assert (fast.per_inference, fast.per_layer) == (exact.per_inference, exact.per_layer)


def test_input_directory_and_random_inputs(arm_model, tmp_path: Path) -> None:
    out, _, x = arm_model
    x.tofile(tmp_path / "input_0.bin")
    from_dir = count_instructions(out, tmp_path, warmup=0, repeat=1)
    from_dict = count_instructions(out, {"x": x}, warmup=0, repeat=1)
    np.testing.assert_array_equal(from_dir.outputs["y"], from_dict.outputs["y"])
    random = count_instructions(out, warmup=0, repeat=1)
    assert random.per_inference > 0 and random.outputs["y"].shape == (1, 10)


def test_bad_inputs_and_artifacts(arm_model, tmp_path: Path) -> None:
    out, _, x = arm_model
    with pytest.raises(ShapeError, match=r"'x': expected float32 \(1, 3, 16, 16\)"):
        count_instructions(out, {"x": x.astype(np.float64)})
    with pytest.raises(ShapeError, match=r"unknown \['z'\], missing \['x'\]"):
        count_instructions(out, {"z": x})
    host_like = tmp_path / "host_like"
    shutil.copytree(out, host_like)
    shutil.copy(shutil.which("true") or "/bin/true", host_like / "npas_bench")
    with pytest.raises(ToolchainError, match="not an aarch64 Linux executable"):
        count_instructions(host_like)


def test_missing_tools_say_what_to_install(
    arm_model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, _, _ = arm_model
    plugin_path()  # built while the tools are there
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"C compiler.*apt-get install gcc"):
        count_instructions(out)
    # A C compiler but no qemu-aarch64.
    (tmp_path / "cc").symlink_to(os.path.realpath(shutil.which("cc", path=os.defpath) or ""))
    with pytest.raises(ToolchainError, match=r"qemu-aarch64.*apt-get install qemu-user"):
        count_instructions(out)
