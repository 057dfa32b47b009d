"""Fixtures of the device tests (none autouse): compiled builds of the small two-input model,
a real sshd, and a fake adb."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from device_helpers import FakeAdb, SshServer, make_fake_adb, run_sshd, two_io_model

import npas


@pytest.fixture(scope="session")
def two_io_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_io_model(tmp_path_factory.mktemp("model") / "two_io.onnx")


@pytest.fixture(scope="session")
def host_out(two_io_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("host") / "two_io.npas"
    npas.compile(str(two_io_onnx), target="host", out=str(out))
    return out


@pytest.fixture(scope="session")
def arm64_out(two_io_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("arm64") / "two_io.npas"
    npas.compile(str(two_io_onnx), target="arm64", out=str(out))
    return out


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with run_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def ssh_remote(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SshServer, Path]:
    """The sshd with npas pointed at it (environment) and the remote working directory."""
    remote = tmp_path / "remote"
    for key, value in sshd.env(remote).items():
        monkeypatch.setenv(key, value)
    return sshd, remote


@pytest.fixture
def fake_adb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeAdb:
    adb = make_fake_adb(tmp_path)
    monkeypatch.delenv("NPAS_DEVICE_DIR", raising=False)
    for key, value in adb.env("EMU42").items():
        monkeypatch.setenv(key, value)
    return adb
