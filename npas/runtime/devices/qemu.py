"""qemu-aarch64 user-mode emulation: how npas starts an arm64 executable on this machine.

Emulated time means nothing, so a qemu device never reports milliseconds; code quality under
qemu is measured as executed aarch64 instructions (see the instruction-counting plugin).
"""

from __future__ import annotations

import functools
import shutil
import subprocess

from npas.errors import ToolchainError

QEMU = "qemu-aarch64"
# Debian's cross libc (libc6-arm64-cross), for dynamically linked executables.
SYSROOT = "/usr/aarch64-linux-gnu"
INSTALL_HINT = "install it with `apt-get install qemu-user` (or run scripts/setup.sh)"


def qemu_binary() -> str:
    found = shutil.which(QEMU)
    if found is None:
        raise ToolchainError(
            f"running arm64 code on this machine needs {QEMU}, which is not on PATH; {INSTALL_HINT}"
        )
    return found


def qemu_command(cpu: str | None = None, plugin: list[str] | None = None) -> list[str]:
    """The command prefix that runs an aarch64 Linux executable: qemu-aarch64 with the cross
    sysroot, optionally as CPU model `cpu` (e.g. cortex-a53) and with a TCG plugin
    (`plugin` = [path.so, "arg=value", ...])."""
    cmd = [qemu_binary(), "-L", SYSROOT]
    if cpu:
        cmd += ["-cpu", cpu]
    if plugin:
        cmd += ["-plugin", ",".join(plugin)]
    return cmd


@functools.cache
def _cpu_models(qemu: str) -> tuple[str, ...]:
    try:
        out = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"{qemu} does not run: {e}; {INSTALL_HINT}") from None
    return tuple(line.split()[0] for line in out.stdout.splitlines()[1:] if line.strip())


def check_cpu(cpu: str) -> None:
    """A CPU model this qemu-aarch64 knows, or a ToolchainError listing those it does."""
    models = _cpu_models(qemu_binary())
    if models and cpu not in models:
        raise ToolchainError(
            f"qemu-aarch64 has no CPU model {cpu!r}; it has {', '.join(models)} "
            "(device string qemu:CPU)"
        )
