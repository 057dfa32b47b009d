"""The arm64 targets end to end: a small model compiled with npas.compile(target="arm64") is a
standalone CMake project carrying its toolchain file, with an aarch64 libnpas_model.so and a
statically linked aarch64 npas_bench that matches ONNX Runtime under qemu-aarch64, refuses an
ARMv8.0 CPU with a message (not SIGILL), and builds again by hand with cmake. Also: NPAS_ISA=
scalar arm64 builds, host and arm64 cache entries kept apart, and the errors for a missing
cross compiler or Android NDK."""

from __future__ import annotations

import json
import os
import platform
import shutil
import struct
import subprocess
from pathlib import Path

import arm64_support as A
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npas
from npas.codegen import build
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import get_target
from npas.errors import ToolchainError

H = A.H
INPUT_SHAPE = (1, 3, 19, 21)
TOOLCHAIN = "toolchains/aarch64-linux-gnu.cmake"


def small_model() -> onnx.ModelProto:
    """Stem conv (3x3 s2) + relu, depthwise 3x3 + relu6, 1x1 expand + hardswish, 1x1 project
    + residual add, global average pool, flatten, FC: every GEMM/window family once."""
    rng = np.random.default_rng(0)

    def w(name: str, *shape: int):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)

    inits = [
        w("w1", 16, 3, 3, 3), w("b1", 16), w("w2", 16, 1, 3, 3), w("b2", 16),
        w("w3", 24, 16, 1, 1), w("b3", 24), w("w4", 16, 24, 1, 1), w("b4", 16),
        w("fw", 10, 16), w("fb", 10),
        numpy_helper.from_array(np.array(0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6, np.float32), "hi"),
    ]  # fmt: skip
    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2],
             pads=[1, 1, 1, 1], name="stem"),
        node("Relu", ["c1"], ["r1"]),
        node("Conv", ["r1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
             group=16, name="dw"),
        node("Clip", ["c2", "lo", "hi"], ["r2"]),
        node("Conv", ["r2", "w3", "b3"], ["c3"], kernel_shape=[1, 1], name="expand"),
        node("HardSwish", ["c3"], ["r3"]),
        node("Conv", ["r3", "w4", "b4"], ["c4"], kernel_shape=[1, 1], name="project"),
        node("Add", ["c4", "r2"], ["s"]),
        node("GlobalAveragePool", ["s"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("Gemm", ["f", "fw", "fb"], ["y"], transB=1, name="fc"),
    ]  # fmt: skip
    graph = helper.make_graph(
        nodes, "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("arm64-build")


@pytest.fixture(scope="module")
def model_path(workdir: Path) -> Path:
    path = workdir / "small.onnx"
    onnx.save(small_model(), str(path))
    return path


def _compile(model_path: Path, out: Path, isa: str = "") -> Path:
    A.require_tools()
    with pytest.MonkeyPatch.context() as mp:
        if isa:
            mp.setenv("NPAS_ISA", isa)
        else:
            mp.delenv("NPAS_ISA", raising=False)
        npas.compile(str(model_path), target="arm64", out=out)
    return out


@pytest.fixture(scope="module")
def neon_out(model_path: Path, workdir: Path) -> Path:
    return _compile(model_path, workdir / "neon.npas")


@pytest.fixture(scope="module")
def scalar_out(model_path: Path, workdir: Path) -> Path:
    return _compile(model_path, workdir / "scalar.npas", isa="scalar")


def elf_info(path: Path) -> tuple[int, int, bool]:
    """(e_machine, e_type, has PT_INTERP) of a 64-bit little-endian ELF file: an executable
    without an interpreter is statically linked."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path}: not ELF64 LE"
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    e_phoff = struct.unpack_from("<Q", data, 32)[0]
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    interp = any(
        struct.unpack_from("<I", data, e_phoff + i * e_phentsize)[0] == 3  # PT_INTERP
        for i in range(e_phnum)
    )
    return e_machine, e_type, interp


EM_AARCH64, EM_X86_64, ET_DYN = 183, 62, 3


def assert_static_aarch64(bench: Path) -> None:
    machine, _, interp = elf_info(bench)
    assert machine == EM_AARCH64, f"{bench} is not an aarch64 executable"
    assert not interp, f"{bench} is dynamically linked (it has an ELF interpreter)"
    if shutil.which("file"):
        desc = subprocess.run(["file", str(bench)], capture_output=True, text=True).stdout
        assert "ARM aarch64" in desc and "statically linked" in desc, desc


def run_bench(out: Path, x: np.ndarray, cpu: str | None = None) -> subprocess.CompletedProcess:
    io = out.parent / f"io-{out.name}-{cpu or 'max'}"
    io.mkdir(exist_ok=True)
    np.ascontiguousarray(x, np.float32).tofile(io / "input_0.bin")
    cmd = [H.QEMU_AARCH64, *(["-cpu", cpu] if cpu else []), "-L", H.ARM64_SYSROOT]
    cmd += [str(out / "npas_bench"), str(out / "weights.bin"), "--repeat", "1"]
    cmd += ["--inputs", str(io), "--outputs", str(io)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def bench_output(out: Path, cpu: str | None = None) -> np.ndarray:
    return np.fromfile(out.parent / f"io-{out.name}-{cpu or 'max'}" / "output_0.bin", np.float32)


def ort_reference(model_path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0].reshape(-1)


def test_project_is_standalone_with_its_toolchain(neon_out: Path) -> None:
    meta = json.loads((neon_out / "model.json").read_text())
    assert (meta["target"], meta["isa"]) == ("arm64", "neon")
    assert (neon_out / TOOLCHAIN).is_file()
    assert TOOLCHAIN in (neon_out / "CMakeLists.txt").read_text()
    assert_static_aarch64(neon_out / "npas_bench")
    machine, e_type, _ = elf_info(neon_out / "libnpas_model.so")
    assert (machine, e_type) == (EM_AARCH64, ET_DYN)
    # Every layer with a kernel runs a NEON variant: nothing fell back to the reference.
    for layer in meta["layers"]:
        if layer["kernel"] != "view":
            info = parse_kernel_name(layer["kernel"])
            assert (info["isa"], info["scheme"]) == ("neon", "dense"), layer["kernel"]


def test_model_matches_onnxruntime_under_qemu(neon_out: Path, model_path: Path) -> None:
    x = np.random.default_rng(1).standard_normal(INPUT_SHAPE).astype(np.float32)
    proc = run_bench(neon_out, x)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(
        bench_output(neon_out), ort_reference(model_path, x), rtol=1e-3, atol=1e-4
    )


def test_armv8_0_cpu_is_refused_with_a_message(neon_out: Path) -> None:
    # -march=armv8.2-a kernels on a Cortex-A53 (ARMv8.0: no LSE atomics): the executor,
    # built without the ISA flags, checks AT_HWCAP before any kernel instruction runs.
    x = np.zeros(INPUT_SHAPE, np.float32)
    proc = run_bench(neon_out, x, cpu="cortex-a53")
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "compiled for neon, but this CPU lacks 'atomics'" in proc.stderr, proc.stderr
    assert "signal" not in proc.stderr.lower()
    # An ARMv8.2 core runs the same binary.
    ok = run_bench(neon_out, x, cpu="cortex-a76")
    assert ok.returncode == 0, ok.stderr


def test_scalar_arm64_build_runs_on_armv8_0(scalar_out: Path, model_path: Path) -> None:
    meta = json.loads((scalar_out / "model.json").read_text())
    assert meta["isa"] == "scalar"
    kernels = [layer["kernel"] for layer in meta["layers"] if layer["kernel"] != "view"]
    assert all(parse_kernel_name(k)["isa"] == "scalar" for k in kernels), kernels
    assert "-march" not in (scalar_out / "CMakeLists.txt").read_text()
    x = np.random.default_rng(2).standard_normal(INPUT_SHAPE).astype(np.float32)
    proc = run_bench(scalar_out, x, cpu="cortex-a53")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(
        bench_output(scalar_out, "cortex-a53"), ort_reference(model_path, x), rtol=1e-3, atol=1e-4
    )


def test_project_builds_by_hand_with_its_toolchain_file(neon_out: Path, workdir: Path) -> None:
    cmake, ninja = shutil.which("cmake"), shutil.which("ninja")
    assert cmake and ninja, "cmake and ninja are needed: apt-get install cmake ninja-build"
    bdir = workdir / "by-hand"
    configure = [cmake, "-S", str(neon_out), "-B", str(bdir), "-G", "Ninja"]
    configure.append(f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN}")  # relative: found in the project
    for cmd in (configure, [cmake, "--build", str(bdir)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert_static_aarch64(bdir / "npas_bench")
    assert elf_info(bdir / "libnpas_model.so")[0] == EM_AARCH64


def test_host_and_arm64_builds_are_cached_apart(model_path: Path, neon_out: Path) -> None:
    arm, host = get_target("arm64"), get_target("host")
    arm_fp = build.target_fingerprint(arm, build.toolchain(arm))
    host_fp = build.target_fingerprint(host, build.toolchain(host))
    assert arm_fp != host_fp
    # The same model for both targets: two cache entries, built in per-target trees.
    builds = {t: npas.compile(str(model_path), target=t).compile_info for t in ("arm64", "host")}
    assert builds["arm64"].key != builds["host"].key
    for t, fp in (("arm64", arm_fp), ("host", host_fp)):
        info = builds[t]
        assert json.loads((info.path / "model.json").read_text())["target"] == t
        if info.tree is not None:  # None: a cache hit
            assert info.tree.name.startswith(fp + "-"), (t, info.tree)
    assert elf_info(builds["arm64"].path / "npas_bench")[0] == EM_AARCH64
    host_machine = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}.get(platform.machine())
    assert elf_info(builds["host"].path / "npas_bench")[0] == host_machine


def test_missing_cross_compiler_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    # PATH with cmake and ninja only.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cmake", "ninja"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed: apt-get install cmake ninja-build"
        (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(ToolchainError, match="apt-get install g\\+\\+-aarch64-linux-gnu") as e:
        build.toolchain(get_target("arm64"))
    assert "aarch64-linux-gnu-g++" in str(e.value) and "scripts/setup.sh" in str(e.value)


def test_android_without_ndk(model_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ANDROID_NDK_HOME", raising=False)
    monkeypatch.delenv("ANDROID_NDK_ROOT", raising=False)
    with pytest.raises(ToolchainError) as e:
        npas.compile(str(model_path), target="arm64-android")
    msg = str(e.value)
    assert "ANDROID_NDK_HOME" in msg and "developer.android.com/ndk" in msg, msg


def test_android_with_a_directory_that_is_no_ndk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ANDROID_NDK_ROOT", raising=False)
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"android\.toolchain\.cmake") as e:
        get_target("arm64-android")
    assert str(tmp_path) in str(e.value)
    # A toolchain file but no compiler (an incomplete unpack) is named too.
    (tmp_path / "build" / "cmake").mkdir(parents=True)
    (tmp_path / "build" / "cmake" / "android.toolchain.cmake").write_text("")
    monkeypatch.delenv("ANDROID_NDK_HOME")
    monkeypatch.setenv("ANDROID_NDK_ROOT", str(tmp_path))
    with pytest.raises(ToolchainError, match="clang\\+\\+"):
        get_target("arm64-android")


def test_android_target_data(tmp_path: Path, monkeypatch) -> None:
    # With an NDK layout present, the target is the NEON kernels through the NDK's clang and
    # the project's android toolchain file (which includes the NDK's own).
    clang = tmp_path / "toolchains" / "llvm" / "prebuilt" / "linux-x86_64" / "bin" / "clang++"
    clang.parent.mkdir(parents=True)
    clang.write_text("")
    (tmp_path / "build" / "cmake").mkdir(parents=True)
    (tmp_path / "build" / "cmake" / "android.toolchain.cmake").write_text("")
    monkeypatch.setenv("ANDROID_NDK_HOME", str(tmp_path))
    t = get_target("arm64-android")
    assert (t.isa.name, t.cxx, t.runner) == ("neon", str(clang.resolve()), "adb")
    assert t.cmake_toolchain == "toolchains/android-arm64.cmake"
    assert f"-DNPAS_ANDROID_NDK={tmp_path.resolve()}" in t.cmake_args
    text = (build.TOOLCHAINS_DIR / "android-arm64.cmake").read_text()
    assert "android.toolchain.cmake" in text and "arm64-v8a" in text
    assert os.path.basename(t.cmake_toolchain) in {p.name for p in build.TOOLCHAINS_DIR.iterdir()}
