"""Devices: a device string -> a transport, the machine's architecture and a working directory.

    host               this process (npas.runtime.compiled.CompiledModel)
    qemu[:CPU]         this machine under qemu-aarch64 (CPU: a qemu model, e.g. cortex-a53)
    ssh:[USER@]HOST[:PORT]
    adb[:SERIAL]

A device keeps one directory per artifact, named by the content hash of npas_bench and
weights.bin, so loading the same build again pushes nothing; each run works in a fresh scratch
directory that is removed afterwards. The architecture comes from one `uname -m` over the
transport when the device is opened (qemu's is aarch64 by construction).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import platform
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from npas import knobs
from npas.errors import ToolchainError
from npas.runtime.devices.transport import (
    AdbTransport,
    ExecResult,
    LocalTransport,
    SshTransport,
    Transport,
    check_remote_path,
)

DEVICE_SYNTAX = "host, qemu[:CPU], adb[:SERIAL] or ssh:[USER@]HOST[:PORT]"
PROBE_TIMEOUT_S = 60.0

# Machines (as `uname -m` spells them, normalised) that run each target's code.
_ALIASES = {"arm64": "aarch64", "armv8l": "aarch64", "amd64": "x86_64", "x64": "x86_64"}


def normalise_machine(machine: str) -> str:
    m = machine.strip().lower()
    return _ALIASES.get(m, m)


def target_machine(target: str) -> str:
    """The architecture a build of `target` runs on."""
    if target in ("arm64", "arm64-android", "opencl-android"):
        return "aarch64"
    return normalise_machine(platform.machine())  # host, opencl: this machine's


@dataclass(frozen=True)
class DeviceSpec:
    text: str  # as the user wrote it
    kind: str  # host | qemu | ssh | adb
    arg: str | None  # qemu CPU, ssh host, adb serial


def parse_device(text: str) -> DeviceSpec:
    """Check a device string's syntax (nothing is contacted)."""
    kind, sep, arg = str(text).partition(":")
    if kind == "host" and not sep:
        return DeviceSpec(text, kind, None)
    if kind in ("qemu", "adb") and (not sep or arg):
        return DeviceSpec(text, kind, arg or None)
    if kind == "ssh":
        if not arg:
            raise ToolchainError(
                f"device {text!r}: ssh needs a host, e.g. ssh:pi@10.0.0.7 or ssh:user@host:2222"
            )
        return DeviceSpec(text, kind, arg)
    raise ToolchainError(f"unknown device {text!r}: expected {DEVICE_SYNTAX}")


@functools.cache
def _local_root() -> str:
    """This process's working directory for the qemu device, removed at exit: emulated runs
    need no persistent copies, only one copy per artifact per process."""
    root = tempfile.mkdtemp(prefix="npas-qemu-")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _digest(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:24]


class Device:
    """An opened device: where artifacts go and how programs run there."""

    def __init__(
        self,
        spec: DeviceSpec,
        transport: Transport,
        machine: str,
        root: str,
        launcher: Sequence[str] = (),
        timed: bool = True,
    ) -> None:
        self.spec = spec
        self.name = spec.text
        self.transport = transport
        self.machine = machine
        self.root = check_remote_path(root, f"working directory of {spec.text}")
        self.launcher = list(launcher)  # e.g. qemu-aarch64 -L SYSROOT
        self.timed = timed  # False where time means nothing (emulation)

    @property
    def cpu(self) -> str | None:
        return self.spec.arg if self.spec.kind == "qemu" else None

    def run_program(self, argv: Sequence[str], timeout: float | None = None) -> ExecResult:
        """Run a program of the device's architecture (under the launcher, if any)."""
        return self.transport.exec([*self.launcher, *argv], timeout=timeout)

    def install(self, files: Sequence[Path]) -> str:
        """The device directory holding `files`, pushed only if no earlier push left them."""
        digest = _digest(files)
        final = f"{self.root}/{digest}"
        names = " ".join(f'"$1/{f.name}"' for f in files)
        present = self.transport.sh(f'for f in {names}; do test -f "$f" || exit 1; done', final)
        if present.rc != 0:
            tmp = f"{self.root}/.{digest}.{uuid.uuid4().hex[:12]}"
            t = self.transport
            t.check(t.sh('mkdir -p "$1"', tmp), f"creating {tmp}")
            try:
                t.push(files, tmp)
                # Rename into place: a directory named by the hash is always complete. Another
                # process may have installed the same files meanwhile; then ours is dropped.
                t.check(
                    t.sh(
                        'chmod 755 "$1"/* && if [ -d "$2" ]; then rm -rf "$1"; '
                        'else mv "$1" "$2"; fi', tmp, final,
                    ),
                    f"installing {final}",
                )  # fmt: skip
            except BaseException:
                t.sh('rm -rf "$1"', tmp)
                raise
        return final

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        """A fresh directory for one run's inputs and outputs, removed afterwards."""
        path = f"{self.root}/runs/{uuid.uuid4().hex[:16]}"
        self.transport.check(self.transport.sh('mkdir -p "$1"', path), f"creating {path}")
        try:
            yield path
        finally:
            self.transport.sh('rm -rf "$1"', path)

    def __repr__(self) -> str:
        return f"<Device {self.name} {self.machine} root={self.root}>"


def _probe(transport: Transport, root: str) -> tuple[str, str]:
    """(machine, absolute working directory): one round trip that also proves the device is
    reachable and its working directory writable. Tagged lines, because a remote shell's
    start-up files may print text of their own."""
    result = transport.sh(
        'echo "npas-machine=$(uname -m)" && mkdir -p "$1" && cd "$1" && echo "npas-root=$(pwd)"',
        root,
        timeout=PROBE_TIMEOUT_S,
    )
    found = dict(
        line.strip().split("=", 1)
        for line in result.stdout.splitlines()
        if line.startswith(("npas-machine=", "npas-root="))
    )
    if result.rc != 0 or not found.get("npas-machine") or not found.get("npas-root"):
        detail = (result.stderr.strip() or result.stdout.strip() or "(no output)")[-4000:]
        raise ToolchainError(
            f"cannot reach device {transport.name!r} or prepare its working directory {root} "
            f"(exit status {result.rc}):\n{detail}"
        )
    return normalise_machine(found["npas-machine"]), found["npas-root"]


def open_device(spec: DeviceSpec | str) -> Device:
    """Open a non-host device: check the client tools, reach it once, learn its machine."""
    if isinstance(spec, str):
        spec = parse_device(spec)
    if spec.kind == "qemu":
        from npas.runtime.devices.qemu import check_cpu, qemu_command

        launcher = qemu_command(cpu=spec.arg)
        if spec.arg:
            check_cpu(spec.arg)
        return Device(spec, LocalTransport(spec.text), "aarch64", _local_root(), launcher, False)
    transport: SshTransport | AdbTransport
    if spec.kind == "ssh":
        transport = SshTransport(str(spec.arg), name=spec.text)
    elif spec.kind == "adb":
        transport = AdbTransport(spec.arg, name=spec.text)
    else:
        raise ToolchainError(f"device {spec.text!r} is not a remote device")
    root = knobs.DEVICE_DIR.get() or transport.default_dir
    check_remote_path(root, "NPAS_DEVICE_DIR")
    machine, abs_root = _probe(transport, root)
    return Device(spec, transport, machine, abs_root)


__all__ = [
    "DEVICE_SYNTAX",
    "Device",
    "DeviceSpec",
    "normalise_machine",
    "open_device",
    "parse_device",
    "target_machine",
]
