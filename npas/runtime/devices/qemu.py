"""qemu-aarch64 user-mode emulation: how npas starts an arm64 executable on this machine.

Emulated time means nothing, so a qemu device never reports milliseconds; code quality under
qemu is measured as executed aarch64 instructions (see the instruction-counting plugin).
"""

from __future__ import annotations

import shutil

from npas.errors import ToolchainError

QEMU = "qemu-aarch64"
# Debian's cross libc (libc6-arm64-cross), for dynamically linked executables.
SYSROOT = "/usr/aarch64-linux-gnu"
INSTALL_HINT = "install it with `apt-get install qemu-user` (or run scripts/setup.sh)"


def qemu_binary() -> str:
    found = shutil.which(QEMU)
    if found is None:
        raise ToolchainError(
            f"running arm64 code on this machine needs {QEMU}, which is not on PATH; "
            f"{INSTALL_HINT}"
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
