"""The qemu device: an arm64 build of a small model runs under qemu-aarch64 through
npas.load and npasc, matches ONNX Runtime, and benchmarks to instruction counts, never to
times. Builds of another architecture are refused on both sides."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from device_helpers import assert_outputs_equal, feeds, npasc, onnxruntime_outputs

import npas
from npas.errors import ToolchainError
from npas.runtime import InstructionCountResult
from npas.runtime.devices.model import DeviceModel

QEMU_TOOLS = {
    "qemu-aarch64": "apt-get install qemu-user",
    "aarch64-linux-gnu-g++": "apt-get install g++-aarch64-linux-gnu",
}


@pytest.fixture(autouse=True)
def _tools() -> None:
    missing = [t for t in QEMU_TOOLS if shutil.which(t) is None]
    if missing:
        hints = "; ".join(f"{t}: `{QEMU_TOOLS[t]}`" for t in missing)
        pytest.fail(f"the qemu device tests need {', '.join(missing)} ({hints})", pytrace=False)


def test_qemu_run_matches_onnxruntime(arm64_out: Path, two_io_onnx: Path) -> None:
    x = feeds(seed=11)
    cm = npas.load(arm64_out)  # an arm64 build runs on qemu here unless told otherwise
    assert isinstance(cm, DeviceModel) and cm.device == "qemu" and cm.target == "arm64"
    assert_outputs_equal(cm.run(x), onnxruntime_outputs(two_io_onnx, x))
    assert cm.last_report is not None and len(cm.last_report["layers"]) == len(cm.layers)
    # The CPU model is part of the device string.
    a76 = npas.load(arm64_out, device="qemu:cortex-a76", threads=2)
    assert a76.dev.cpu == "cortex-a76"
    assert_outputs_equal(a76.run(x), onnxruntime_outputs(two_io_onnx, x))
    with pytest.raises(ToolchainError, match=r"no CPU model 'cortex-a9000'; it has .*cortex-a53"):
        npas.load(arm64_out, device="qemu:cortex-a9000")


def test_qemu_benchmark_counts_instructions(arm64_out: Path) -> None:
    cm = npas.load(arm64_out, device="qemu")
    r = cm.benchmark(repeat=7, warmup=2, feeds=feeds(seed=2))
    assert isinstance(r, InstructionCountResult) and r.deterministic, r.note
    assert not hasattr(r, "median_ms")
    assert [row["name"] for row in r.per_layer] == [la["name"] for la in cm.layers]
    assert sum(row["instructions_per_inference"] for row in r.per_layer) <= (
        r.instructions_per_inference
    )
    conv = next(row for row in r.per_layer if row["op"] == "conv2d")
    # A 3x3 conv cannot take fewer instructions than its MACs divided by the widest FMA.
    assert conv["macs"] > 0 and conv["instructions_per_mac"] >= 1 / 4
    assert r.instructions_per_mac == r.instructions_per_inference / cm.macs
    assert cm.benchmark(feeds=feeds(seed=2)).instructions_per_inference == (
        r.instructions_per_inference
    )  # exact counts: the same inputs give the same number


def test_npasc_on_qemu_reports_instructions(
    arm64_out: Path, two_io_onnx: Path, tmp_path: Path
) -> None:
    x = feeds(seed=4)
    for name, arr in x.items():
        np.save(tmp_path / f"{name}.npy", arr)
    inputs = ["--input", f"x={tmp_path / 'x.npy'}", "--input", f"skip={tmp_path / 'skip.npy'}"]
    r = npasc(
        "run", str(arm64_out), "--device", "qemu", "--output-dir", str(tmp_path / "o"), *inputs
    )
    assert r.returncode == 0, r.stderr
    got = {"y": np.load(tmp_path / "o" / "y.npy"), "z/sum": np.load(tmp_path / "o" / "z_sum.npy")}
    assert_outputs_equal(got, onnxruntime_outputs(two_io_onnx, x))

    js = tmp_path / "bench.json"
    r = npasc("bench", str(arm64_out), "--device", "qemu", "--per-layer",
              "--compare", "onnxruntime", "--json", str(js))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    assert rep["device"] == "qemu" and rep["target"] == "arm64"
    assert set(rep["npas"]) == {"instructions_per_inference", "instructions_per_mac"}
    assert rep["npas"]["instructions_per_inference"] > 0
    for layer in rep["layers"]:
        assert "median_ms" not in layer and layer["instructions_per_inference"] >= 0
    assert "median_ms" not in json.dumps(rep) and "speedup_vs_onnxruntime" not in rep
    assert rep["check"]["matches"] and "no speed-up" in rep["compare_note"]
    assert "instructions/inference" in r.stdout and " ms" not in r.stdout


def test_targets_and_devices_must_agree(arm64_out: Path, host_out: Path) -> None:
    with pytest.raises(ToolchainError, match=r"target 'host' \(x86-64 code\), but device 'qemu' "
                       r"is arm64 \(aarch64\); run it with device='host'"):  # fmt: skip
        npas.load(host_out, device="qemu")
    with pytest.raises(ToolchainError, match=r"target 'arm64', which cannot run on the host "
                       r"device .*device='qemu'"):  # fmt: skip
        npas.load(arm64_out, device="host")
    r = npasc("bench", str(arm64_out), "--device", "host")
    assert r.returncode == 2 and "device='qemu'" in r.stderr, r.stderr


def test_missing_bench_executable(arm64_out: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.npas"
    shutil.copytree(arm64_out, broken)
    (broken / "npas_bench").unlink()
    with pytest.raises(npas.ModelError, match="npas_bench is missing; recompile"):
        npas.load(broken, device="qemu")


def test_cpu_refusal_on_the_device_carries_its_message(arm64_out: Path) -> None:
    cm = npas.load(arm64_out, device="qemu:cortex-a53")  # ARMv8.0: no ARMv8.1 atomics
    assert cm.isa == "neon"
    with pytest.raises(
        ToolchainError, match=r"npas_bench failed on device 'qemu:cortex-a53' .*\n.*CPU lacks"
    ):
        cm.run(feeds())
