"""Transports: how npas reaches the machine that runs a model. Three operations, nothing else:

    push(local files -> remote directory)
    exec(argv) -> (rc, stdout, stderr), with a timeout
    pull(remote file -> local path)

`LocalTransport` works on a directory of this machine (the qemu device runs its programs
under an emulator launcher, which is the device's business, not the transport's).
`CommandTransport` drives a client program; `SshTransport` and `AdbTransport` differ only in
the three command lines they build. Everything else a device needs (making and removing
directories, installing files atomically, `uname -m`) is a POSIX `sh` script run through
`exec`, so it works the same on every transport.

Remote paths are plain strings: npas only creates names from [A-Za-z0-9._/+-], which need no
quoting by a remote shell or by scp.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from npas import knobs
from npas.errors import ToolchainError

SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+-]+$")
SSH_INSTALL_HINT = (
    "install the OpenSSH client with `apt-get install openssh-client` (or run scripts/setup.sh)"
)
ADB_INSTALL_HINT = (
    "install the Android platform tools with `apt-get install adb` (or the Android SDK's "
    "platform-tools) and put adb on PATH"
)


class ExecResult(NamedTuple):
    rc: int
    stdout: str
    stderr: str


def check_remote_path(path: str, what: str) -> str:
    if not SAFE_PATH.match(path):
        raise ToolchainError(
            f"{what} {path!r} contains characters npas does not quote for remote shells; "
            "use a path of letters, digits and . _ / + -"
        )
    return path


def timeout_s() -> float:
    value = knobs.DEVICE_TIMEOUT.get()
    try:
        return float(value)
    except ValueError:
        raise ToolchainError(f"NPAS_DEVICE_TIMEOUT={value!r}: expected seconds") from None


class Transport(ABC):
    """Reaches one machine. `name` is how messages name it (the device string)."""

    name: str

    @abstractmethod
    def push(self, files: Sequence[Path], remote_dir: str) -> None:
        """Copy local `files` into the existing directory `remote_dir` (same base names)."""

    @abstractmethod
    def exec(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        """Run `argv` on the machine; a non-zero rc is returned, not raised."""

    @abstractmethod
    def pull(self, remote_file: str, local: Path) -> None:
        """Copy `remote_file` to the local path `local`."""

    def sh(self, script: str, *args: str, timeout: float | None = None) -> ExecResult:
        """A POSIX sh script with positional arguments ($1, $2, ...), so that paths are never
        pasted into the script text."""
        return self.exec(["sh", "-c", script, "npas", *args], timeout=timeout)

    def check(self, result: ExecResult, what: str) -> ExecResult:
        if result.rc != 0:
            raise ToolchainError(
                f"{what} on {self.name} failed (exit status {result.rc}):\n"
                f"{result.stderr.strip() or result.stdout.strip() or '(no output)'}"
            )
        return result


def _run_local(cmd: Sequence[str], timeout: float | None, name: str) -> ExecResult:
    limit = timeout_s() if timeout is None else timeout
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, errors="replace", timeout=limit
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(
            f"{name}: `{shlex.join(cmd)}` did not finish within {limit:g} s (raise "
            "NPAS_DEVICE_TIMEOUT for slow devices)"
        ) from None
    except OSError as e:
        raise ToolchainError(f"{name}: cannot run {cmd[0]}: {e}") from None
    return ExecResult(proc.returncode, proc.stdout, proc.stderr)


def _copy_atomic(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class LocalTransport(Transport):
    """This machine: push and pull are file copies, exec is a subprocess."""

    def __init__(self, name: str = "local") -> None:
        self.name = name

    def push(self, files: Sequence[Path], remote_dir: str) -> None:
        dest = Path(remote_dir)
        if not dest.is_dir():
            raise ToolchainError(f"{self.name}: cannot push into {dest}: no such directory")
        for f in files:
            _copy_atomic(Path(f), dest / Path(f).name)

    def exec(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        return _run_local(argv, timeout, self.name)

    def pull(self, remote_file: str, local: Path) -> None:
        src = Path(remote_file)
        if not src.is_file():
            raise ToolchainError(f"{self.name}: cannot pull {src}: no such file")
        _copy_atomic(src, Path(local))


class CommandTransport(Transport):
    """A transport driven by a local client program. Subclasses build the three command lines
    and nothing more; running them and reporting failures is shared."""

    tools: tuple[str, ...] = ()
    install_hint = ""

    def __init__(self, name: str) -> None:
        self.name = name
        missing = [t for t in self.tools if shutil.which(t) is None]
        if missing:
            raise ToolchainError(
                f"device {name!r} needs {' and '.join(missing)} on PATH, which this machine "
                f"lacks; {self.install_hint}"
            )

    @abstractmethod
    def push_command(self, files: Sequence[str], remote_dir: str) -> list[str]: ...

    @abstractmethod
    def exec_command(self, argv: Sequence[str]) -> list[str]: ...

    @abstractmethod
    def pull_command(self, remote_file: str, local: str) -> list[str]: ...

    def push(self, files: Sequence[Path], remote_dir: str) -> None:
        check_remote_path(remote_dir, "remote directory")
        cmd = self.push_command([str(f) for f in files], remote_dir)
        self.check(_run_local(cmd, None, self.name), f"copying files to {remote_dir}")

    def exec(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        return _run_local(self.exec_command(argv), timeout, self.name)

    def pull(self, remote_file: str, local: Path) -> None:
        check_remote_path(remote_file, "remote file")
        cmd = self.pull_command(remote_file, str(local))
        self.check(_run_local(cmd, None, self.name), f"copying {remote_file} back")


@dataclass(frozen=True)
class SshHost:
    """`[USER@]HOST[:PORT]`; an IPv6 address goes in brackets (`[::1]:2222`). HOST may be an
    alias from ~/.ssh/config, whose settings then apply."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> SshHost:
        m = re.fullmatch(
            r"(?:(?P<user>[^@\s:/]+)@)?(?:\[(?P<v6>[0-9A-Za-z:.%]+)\]|(?P<host>[^@\s:/\[\]]+))"
            r"(?::(?P<port>\d{1,5}))?",
            text,
        )
        if m is None or not (m["v6"] or m["host"]) or (m["port"] and int(m["port"]) > 65535):
            raise ToolchainError(
                f"ssh device {text!r}: expected ssh:[USER@]HOST[:PORT], e.g. ssh:pi@10.0.0.7 "
                "or ssh:root@127.0.0.1:2222 ([::1]:2222 for IPv6)"
            )
        port = int(m["port"]) if m["port"] else None
        return cls(m["v6"] or m["host"], m["user"], port)

    def destination(self, brackets: bool) -> str:
        host = f"[{self.host}]" if brackets and ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host


def _control_dir() -> str | None:
    """A directory for ssh's connection-sharing sockets that only this user can enter, or
    None (no sharing) when it cannot be had."""
    path = Path(tempfile.gettempdir()) / f"npas-ssh-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = path.stat()
    except OSError:
        return None
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or len(str(path)) > 60:
        return None
    return str(path)


class SshTransport(CommandTransport):
    """ssh/scp in batch mode (keys only, never a password prompt), sharing one connection
    per host between commands. The port goes as `-o Port=`, which ssh and scp both read;
    NPAS_SSH_IDENTITY adds `-i KEY` and NPAS_SSH_OPTIONS any other options, which win over
    npas' defaults (e.g. `-o UserKnownHostsFile=...`, `-o ControlMaster=no`)."""

    tools = ("ssh", "scp")
    install_hint = SSH_INSTALL_HINT
    default_dir = ".cache/npas/device"  # relative: ssh starts commands in the remote home

    def __init__(self, spec: str, name: str | None = None) -> None:
        self.host = SshHost.parse(spec)
        super().__init__(name or f"ssh:{spec}")

    def options(self) -> list[str]:
        # ssh keeps the first value it gets for an option: the port of the device string
        # first, then the user's options, then npas' defaults.
        opts = ["-o", f"Port={self.host.port}"] if self.host.port is not None else []
        identity = knobs.SSH_IDENTITY.get()
        if identity:
            opts += ["-i", os.path.expanduser(identity)]
        try:
            opts += shlex.split(knobs.SSH_OPTIONS.get())
        except ValueError as e:
            raise ToolchainError(f"NPAS_SSH_OPTIONS: cannot split it like a shell ({e})") from None
        opts += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        control = _control_dir()
        if control is not None:
            # One connection serves the several commands of a run (mkdir, push, exec, pull).
            opts += ["-o", "ControlMaster=auto", "-o", f"ControlPath={control}/%C",
                     "-o", "ControlPersist=30"]  # fmt: skip
        return opts

    def push_command(self, files: Sequence[str], remote_dir: str) -> list[str]:
        dest = f"{self.host.destination(brackets=True)}:{remote_dir}/"
        return ["scp", "-q", *self.options(), "--", *files, dest]

    def exec_command(self, argv: Sequence[str]) -> list[str]:
        # ssh joins its arguments with spaces for the remote shell: quote them once here.
        return ["ssh", *self.options(), "--", self.host.destination(brackets=False),
                shlex.join(argv)]  # fmt: skip

    def pull_command(self, remote_file: str, local: str) -> list[str]:
        src = f"{self.host.destination(brackets=True)}:{remote_file}"
        return ["scp", "-q", *self.options(), "--", src, local]

    def close(self) -> None:
        """End the shared connection now instead of when it has been idle for a while."""
        cmd = ["ssh", *self.options(), "-O", "exit", "--", self.host.destination(False)]
        _run_local(cmd, 30.0, self.name)


class AdbTransport(CommandTransport):
    """adb push/shell/pull, to the one attached device or to SERIAL. The exit status of
    `adb shell` is the remote command's on Android 7 and later."""

    tools = ("adb",)
    install_hint = ADB_INSTALL_HINT
    default_dir = "/data/local/tmp/npas"

    def __init__(self, serial: str | None, name: str | None = None) -> None:
        self.serial = serial or None
        super().__init__(name or (f"adb:{serial}" if serial else "adb"))

    def _adb(self) -> list[str]:
        return ["adb", "-s", self.serial] if self.serial else ["adb"]

    def push_command(self, files: Sequence[str], remote_dir: str) -> list[str]:
        return [*self._adb(), "push", *files, f"{remote_dir}/"]

    def exec_command(self, argv: Sequence[str]) -> list[str]:
        return [*self._adb(), "shell", shlex.join(argv)]

    def pull_command(self, remote_file: str, local: str) -> list[str]:
        return [*self._adb(), "pull", remote_file, local]


__all__ = [
    "AdbTransport",
    "CommandTransport",
    "ExecResult",
    "LocalTransport",
    "SshHost",
    "SshTransport",
    "Transport",
]
