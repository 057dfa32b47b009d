"""Transports and device strings without a network: the local transport's three operations,
the ssh and adb command lines, device-string syntax, and the errors for bad strings, missing
client programs and an unreachable host."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from device_helpers import npasc

import npas
from npas.errors import ToolchainError
from npas.runtime.devices.device import open_device, parse_device
from npas.runtime.devices.transport import AdbTransport, LocalTransport, SshHost, SshTransport


def test_local_transport_push_exec_pull(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"\x00\x01payload")
    remote = tmp_path / "remote"
    remote.mkdir()
    t = LocalTransport()
    t.push([src / "a.bin"], str(remote))
    assert (remote / "a.bin").read_bytes() == b"\x00\x01payload"
    assert not [p for p in remote.iterdir() if p.name != "a.bin"]  # no temp files left
    r = t.exec(["sh", "-c", 'cat "$1"; echo err >&2; exit 3', "npas", str(remote / "a.bin")])
    assert (r.rc, r.stdout, r.stderr) == (3, "\x00\x01payload", "err\n")
    r = t.sh('printf "%s|%s" "$1" "$2"', "with space", "$HOME")  # arguments are never expanded
    assert r.stdout == "with space|$HOME"
    t.pull(str(remote / "a.bin"), tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == b"\x00\x01payload"
    with pytest.raises(ToolchainError, match="no such file"):
        t.pull(str(remote / "missing.bin"), tmp_path / "x")
    with pytest.raises(ToolchainError, match="no such directory"):
        t.push([src / "a.bin"], str(tmp_path / "nowhere"))


def test_local_transport_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    t = LocalTransport("slow")
    with pytest.raises(ToolchainError, match=r"slow: .*sleep 5.* within 0.2 s"):
        t.exec(["sleep", "5"], timeout=0.2)
    monkeypatch.setenv("NPAS_DEVICE_TIMEOUT", "0.2")
    with pytest.raises(ToolchainError, match="NPAS_DEVICE_TIMEOUT"):
        t.exec(["sleep", "5"])


@pytest.mark.parametrize(
    ("text", "host", "user", "port"),
    [
        ("board", "board", None, None),
        ("pi@10.0.0.7", "10.0.0.7", "pi", None),
        ("root@127.0.0.1:2222", "127.0.0.1", "root", 2222),
        ("[::1]:2200", "::1", None, 2200),
        ("me@[fe80::1%eth0]", "fe80::1%eth0", "me", None),
    ],
)
def test_ssh_host_syntax(text: str, host: str, user: str | None, port: int | None) -> None:
    assert SshHost.parse(text) == SshHost(host, user, port)


@pytest.mark.parametrize("text", ["user@", "a@b@c", "host:port", "host:99999", "h/x", "[::1"])
def test_ssh_host_syntax_errors(text: str) -> None:
    with pytest.raises(ToolchainError, match=r"expected ssh:\[USER@\]HOST\[:PORT\]"):
        SshHost.parse(text)


def test_ssh_and_adb_command_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPAS_SSH_IDENTITY", "/keys/board")
    monkeypatch.setenv("NPAS_SSH_OPTIONS", "-o 'ProxyJump=gate host'")
    ssh = SshTransport("pi@[::1]:2222")
    opts = ssh.options()
    # ssh keeps the first value of an option: the device string's port, then the user's.
    assert opts[:8] == ["-o", "Port=2222", "-i", "/keys/board", "-o", "ProxyJump=gate host",
                        "-o", "BatchMode=yes"]  # fmt: skip
    assert "ControlMaster=auto" in opts
    argv = ["/r/npas_bench", "/r/weights.bin", "--json"]
    assert ssh.exec_command(argv) == ["ssh", *opts, "--", "pi@::1", shlex.join(argv)]
    assert ssh.push_command(["/l/a", "/l/b"], "/r/d") == [
        "scp", "-q", *opts, "--", "/l/a", "/l/b", "pi@[::1]:/r/d/"
    ]  # fmt: skip
    assert ssh.pull_command("/r/d/o.bin", "/l/o.bin") == [
        "scp", "-q", *opts, "--", "pi@[::1]:/r/d/o.bin", "/l/o.bin"
    ]  # fmt: skip
    assert ssh.name == "ssh:pi@[::1]:2222"

    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    adb = AdbTransport("R58M")
    assert adb.exec_command(argv) == ["adb", "-s", "R58M", "shell", shlex.join(argv)]
    assert adb.push_command(["/l/a"], "/r/d") == ["adb", "-s", "R58M", "push", "/l/a", "/r/d/"]
    assert adb.pull_command("/r/o", "/l/o") == ["adb", "-s", "R58M", "pull", "/r/o", "/l/o"]
    assert AdbTransport(None).exec_command(["true"]) == ["adb", "shell", "true"]


def test_device_strings() -> None:
    assert parse_device("host").kind == "host"
    assert (parse_device("qemu").kind, parse_device("qemu").arg) == ("qemu", None)
    assert parse_device("qemu:cortex-a53").arg == "cortex-a53"
    assert (parse_device("adb").arg, parse_device("adb:R58M").arg) == (None, "R58M")
    assert parse_device("ssh:pi@board:22").arg == "pi@board:22"
    for bad in ("gpu0", "host:1", "qemu:", "adb:", "tcp:1.2.3.4", ""):
        with pytest.raises(ToolchainError, match="unknown device"):
            parse_device(bad)
    for bad in ("ssh", "ssh:"):
        with pytest.raises(ToolchainError, match="ssh needs a host"):
            parse_device(bad)


def test_unknown_device_on_load_and_cli(host_out: Path) -> None:
    with pytest.raises(ToolchainError, match=r"unknown device 'gpu0': expected host, qemu"):
        npas.load(host_out, device="gpu0")
    r = npasc("run", str(host_out), "--device", "phone")
    assert r.returncode == 2 and "unknown device 'phone'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("device", "needle"),
    [
        ("ssh:127.0.0.1", "apt-get install openssh-client"),
        ("adb", "apt-get install adb"),
        ("adb:R58M", "needs adb on PATH"),
        ("qemu", "apt-get install qemu-user"),
    ],
)
def test_missing_client_programs(
    host_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str, needle: str
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolchainError, match=needle):
        open_device(device)
    with pytest.raises(ToolchainError, match=needle):
        npas.load(host_out, device=device)
    r = npasc("bench", str(host_out), "--device", device, env={"PATH": str(empty)})
    assert r.returncode == 2 and needle in r.stderr, r.stderr


def test_unreachable_ssh_host(host_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from device_helpers import free_port

    port = free_port()  # nothing listens there
    monkeypatch.setenv("NPAS_DEVICE_DIR", str(tmp_path / "remote"))
    with pytest.raises(ToolchainError, match=r"cannot reach device .*\n.*Connection refused"):
        npas.load(host_out, device=f"ssh:127.0.0.1:{port}")
    r = npasc("run", str(host_out), "--device", f"ssh:127.0.0.1:{port}")
    assert r.returncode == 2 and "Connection refused" in r.stderr, r.stderr
