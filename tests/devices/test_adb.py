"""The adb device through a fake `adb` (first on PATH) that implements push/shell/pull on this
machine and logs its command lines: adb differs from ssh only in those commands, so this
checks exactly what npas sends, and that a host build runs with the in-process outputs."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from device_helpers import FakeAdb, assert_outputs_equal, feeds, npasc

import npas
from npas.errors import ToolchainError

ROOT = "/data/local/tmp/npas"


def _sh(call: list[str]) -> list[str]:
    """The argv npas ran through `adb shell`."""
    assert call[:3] == ["-s", "EMU42", "shell"] and len(call) == 4, call
    return shlex.split(call[3])


def test_adb_run_sends_exactly_these_commands(fake_adb: FakeAdb, host_out: Path) -> None:
    x = feeds(seed=5)
    want = npas.load(host_out).run(x)
    cm = npas.load(host_out, device="adb:EMU42")
    assert cm.device == "adb:EMU42" and cm.dev.machine == "x86_64" and cm.dev.root == ROOT
    got = cm.run(x)
    assert_outputs_equal(got, want)
    np.testing.assert_array_equal(got["z/sum"], want["z/sum"])

    calls = fake_adb.calls()
    assert [c[2] for c in calls] == ["shell", "shell", "shell", "push", "shell", "shell",
                                     "push", "shell", "pull", "pull", "shell"]  # fmt: skip
    assert all(c[:2] == ["-s", "EMU42"] for c in calls)
    probe, present, mkdir_tmp, push_build, install, mkdir_run, push_in, bench, pull0, pull1, rm = (
        calls
    )
    assert _sh(probe)[:2] == ["sh", "-c"] and _sh(probe)[3:] == ["npas", ROOT]
    assert "uname -m" in _sh(probe)[2] and "pwd" in _sh(probe)[2]
    digest_dir = _sh(present)[-1]
    assert re.fullmatch(rf"{ROOT}/[0-9a-f]{{24}}", digest_dir), digest_dir
    tmp = _sh(mkdir_tmp)[-1]
    assert _sh(mkdir_tmp)[2] == 'mkdir -p "$1"' and tmp.startswith(f"{ROOT}/.")
    assert push_build[3:] == [str(host_out / "npas_bench"), str(host_out / "weights.bin"),
                              f"{tmp}/"]  # fmt: skip
    assert _sh(install)[-2:] == [tmp, digest_dir]
    scratch = _sh(mkdir_run)[-1]
    assert re.fullmatch(rf"{ROOT}/runs/[0-9a-f]{{16}}", scratch), scratch
    assert [Path(p).name for p in push_in[3:-1]] == ["input_0.bin", "input_1.bin"]
    assert push_in[-1] == f"{scratch}/"
    assert _sh(bench) == [
        f"{digest_dir}/npas_bench", f"{digest_dir}/weights.bin", "--inputs", scratch,
        "--outputs", scratch, "--repeat", "1", "--warmup", "0", "--threads", "1", "--json",
    ]  # fmt: skip
    assert pull0[3] == f"{scratch}/output_0.bin" and pull1[3] == f"{scratch}/output_1.bin"
    assert _sh(rm)[2:] == ['rm -rf "$1"', "npas", scratch]
    device_root = fake_adb.root / ROOT.lstrip("/")
    assert not any((device_root / "runs").iterdir())

    # Loaded again: the build is found by its hash and nothing but inputs is pushed.
    fake_adb.log.unlink()
    again = npas.load(host_out, device="adb:EMU42")
    assert_outputs_equal(again.run(x), want)
    pushes = [c[3:-1] for c in fake_adb.calls() if c[2] == "push"]
    assert [[Path(p).name for p in files] for files in pushes] == [["input_0.bin", "input_1.bin"]]


def test_adb_without_serial_and_with_a_wrong_one(
    fake_adb: FakeAdb, host_out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ToolchainError, match=r"cannot reach device 'adb:OTHER'.*\n.*not found"):
        npas.load(host_out, device="adb:OTHER")
    monkeypatch.setenv("FAKE_ADB_SERIAL", "")  # one device attached: no -s
    fake_adb.log.unlink()
    cm = npas.load(host_out, device="adb")
    cm.run(feeds())
    assert all(c[0] in ("shell", "push", "pull") for c in fake_adb.calls())


def test_adb_remote_failure_and_bench_cli(fake_adb: FakeAdb, host_out: Path, tmp_path: Path):
    js = tmp_path / "bench.json"
    r = npasc("bench", str(host_out), "--device", "adb:EMU42", "--repeat", "3", "--threads",
              "2", "--json", str(js), env={**os.environ})  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads(js.read_text())
    assert rep["device"] == "adb:EMU42" and rep["threads"] == 2 and rep["npas"]["runs"] == 3
    assert all("median_ms" in la for la in rep["layers"])
    (build,) = [p for p in (fake_adb.root / ROOT.lstrip("/")).iterdir() if p.name != "runs"]
    (build / "weights.bin").write_bytes(b"\0" * 12)  # the copy on the phone is damaged
    r = npasc("bench", str(host_out), "--device", "adb:EMU42", env={**os.environ})
    assert r.returncode == 2 and "npas_bench failed on device 'adb:EMU42'" in r.stderr, r.stderr
    assert "npas_bench: " in r.stderr  # the remote stderr itself
