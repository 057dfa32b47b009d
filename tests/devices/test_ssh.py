"""The ssh device against a real sshd on 127.0.0.1 (started by the test with its own keys):
a host build runs there through npas.load and npasc, with the outputs of the in-process run;
files are pushed once per build; scratch directories go away; remote failures carry the
remote stderr; a build of another architecture is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from device_helpers import (
    SshServer,
    assert_outputs_equal,
    feeds,
    npasc,
    onnxruntime_outputs,
)

import npas
from npas.errors import ShapeError, ToolchainError
from npas.runtime import BenchmarkResult
from npas.runtime.devices.model import DeviceModel
from npas.runtime.devices.transport import SshTransport


def _installed(remote: Path) -> list[Path]:
    return sorted(p for p in remote.iterdir() if p.is_dir() and p.name != "runs")


def test_ssh_run_matches_host(
    ssh_remote: tuple[SshServer, Path], host_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, remote = ssh_remote
    pushed: list[list[str]] = []
    real_push = SshTransport.push

    def counting_push(self, files, remote_dir):
        pushed.append([Path(f).name for f in files])
        return real_push(self, files, remote_dir)

    monkeypatch.setattr(SshTransport, "push", counting_push)
    x = feeds(seed=3)
    want = npas.load(host_out).run(x)  # in-process

    cm = npas.load(host_out, device=server.device)
    assert isinstance(cm, DeviceModel) and cm.device == server.device
    assert cm.input_names == ["x", "skip"] and cm.output_names == ["y", "z/sum"]
    assert cm.dev.machine == "x86_64" and cm.dev.root == str(remote)
    got = cm.run(x)
    assert_outputs_equal(got, want)
    np.testing.assert_array_equal(got["y"], want["y"])  # the same code on the same CPU
    assert pushed == [["npas_bench", "weights.bin"], ["input_0.bin", "input_1.bin"]]
    (build_dir,) = _installed(remote)
    assert sorted(p.name for p in build_dir.iterdir()) == ["npas_bench", "weights.bin"]
    assert not any((remote / "runs").iterdir())  # the scratch directory was removed
    assert cm.last_report is not None
    assert [r["kernel"] for r in cm.last_report["layers"]] == [la["kernel"] for la in cm.layers]

    # Calling forms and input checks are the shared ones.
    y, z = cm(x["x"], x["skip"])
    np.testing.assert_array_equal(y, got["y"])
    np.testing.assert_array_equal(z, got["z/sum"])
    with pytest.raises(ShapeError, match=r"'x': expected float32 .*float64.*astype"):
        cm.run({"x": x["x"].astype(np.float64), "skip": x["skip"]})

    # A second load of the same build pushes only inputs.
    pushed.clear()
    stamp = (build_dir / "weights.bin").stat().st_mtime_ns
    again = npas.load(host_out, device=server.device, threads=2)
    assert_outputs_equal(again.run(x), want)
    assert pushed == [["input_0.bin", "input_1.bin"]]
    assert _installed(remote) == [build_dir]
    assert (build_dir / "weights.bin").stat().st_mtime_ns == stamp


def test_ssh_benchmark(ssh_remote: tuple[SshServer, Path], host_out: Path) -> None:
    server, _ = ssh_remote
    cm = npas.load(host_out, device=server.device)
    r = cm.benchmark(repeat=4, warmup=1, threads=2)
    assert isinstance(r, BenchmarkResult)
    assert len(r.runs) == 4 and r.threads == 2 and r.p10_ms <= r.median_ms <= r.p90_ms
    assert [row["kernel"] for row in r.per_layer] == [la["kernel"] for la in cm.layers]
    assert all(row["median_ms"] >= 0 for row in r.per_layer)
    r = cm.benchmark(repeat=2, warmup=0, feeds=feeds(seed=1))  # the caller's inputs
    assert len(r.runs) == 2 and r.threads == 1


def test_ssh_remote_failure_shows_remote_stderr(
    ssh_remote: tuple[SshServer, Path], host_out: Path
) -> None:
    server, remote = ssh_remote
    cm = npas.load(host_out, device=server.device)
    cm.run(feeds())
    (build_dir,) = _installed(remote)
    weights = build_dir / "weights.bin"
    weights.write_bytes(weights.read_bytes()[:-8])  # the device's copy goes bad
    with pytest.raises(ToolchainError, match=r"npas_bench failed on device 'ssh:.*\n.*weights"):
        cm.run(feeds())
    assert not any((remote / "runs").iterdir())  # scratch removed after a failure too


def test_ssh_refuses_a_build_of_another_architecture(
    ssh_remote: tuple[SshServer, Path], host_out: Path, tmp_path: Path
) -> None:
    server, _ = ssh_remote
    foreign = tmp_path / "foreign.npas"
    npas.load(host_out).save(foreign)
    meta = json.loads((foreign / "model.json").read_text())
    meta["target"] = "arm64"  # what an arm64 build says
    (foreign / "model.json").write_text(json.dumps(meta))
    with pytest.raises(
        ToolchainError, match=r"compiled for target 'arm64' \(arm64 \(aarch64\) code\), but device"
        r" 'ssh:.*' is x86-64"
    ):  # fmt: skip
        npas.load(foreign, device=server.device)


def test_npasc_run_and_bench_over_ssh(
    ssh_remote: tuple[SshServer, Path], host_out: Path, two_io_onnx: Path, tmp_path: Path
) -> None:
    server, remote = ssh_remote
    env = {**os.environ, **server.env(remote)}
    x = feeds(seed=7)
    for name, arr in x.items():
        np.save(tmp_path / f"{name}.npy", arr)
    out_dir = tmp_path / "out"
    r = npasc("run", str(host_out), "--device", server.device, "--output-dir", str(out_dir),
              "--input", f"x={tmp_path / 'x.npy'}", "--input", f"skip={tmp_path / 'skip.npy'}",
              env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {"y": np.load(out_dir / "y.npy"), "z/sum": np.load(out_dir / "z_sum.npy")}
    assert_outputs_equal(got, onnxruntime_outputs(two_io_onnx, x))

    js = tmp_path / "bench.json"
    r = npasc("bench", str(host_out), "--device", server.device, "--repeat", "3",
              "--per-layer", "--compare", "onnxruntime", "--json", str(js), env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    assert rep["device"] == server.device and rep["target"] == "host"
    assert rep["npas"]["runs"] == 3 and rep["npas"]["median_ms"] > 0
    assert [la["kernel"] for la in rep["layers"]] == [
        la["kernel"] for la in json.loads((host_out / "model.json").read_text())["layers"]
    ]
    # onnxruntime runs here, npas there: outputs compared, no speed ratio.
    assert rep["check"]["matches"] and "onnxruntime" not in rep
    assert "speedup_vs_onnxruntime" not in rep and "no speed-up" in rep["compare_note"]
    assert "outputs vs onnxruntime: match" in r.stdout and "device=ssh:" in r.stdout
