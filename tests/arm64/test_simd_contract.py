"""npas/simd.h: every ISA struct meets the same contract (simd_check.cpp): the NEON block under
qemu-aarch64, and, natively, the x86 blocks this machine runs plus Scalar, so the abstraction
the one set of templates relies on cannot drift between ISAs."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import arm64_support as A
import pytest

H = A.H
SOURCE = Path(__file__).resolve().parent / "simd_check.cpp"
STRUCTS = {"scalar": "Scalar", "avx2": "Avx2", "avx512": "Avx512", "neon": "Neon"}


def _build(isa: str) -> Path:
    arm = isa == "neon"
    target = H.arm64_target(isa) if arm else H.target_for(isa)
    cmd = [
        H.ARM64_CXX if arm else "g++",
        *H.flags(target),
        f"-DNPAS_SIMD_STRUCT={STRUCTS[isa]}",
        *(["-static"] if arm else []),
        str(SOURCE),
    ]
    key = hashlib.sha256(("\0".join(cmd)).encode() + SOURCE.read_bytes())
    key.update(H._headers_digest().encode())
    exe = H.CACHE / f"simd-check-{isa}-{key.hexdigest()[:12]}"
    if not exe.exists():
        H._compile(cmd, exe)
    return exe


@pytest.mark.parametrize("isa", ["neon", *H.vector_isas(), "scalar"])
def test_simd_struct_contract(isa: str) -> None:
    if isa == "neon":
        A.require_tools()
    exe = _build(isa)
    cmd = [H.QEMU_AARCH64, "-L", H.ARM64_SYSROOT, str(exe)] if isa == "neon" else [str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{isa}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    assert f"{isa}: 0 failures" in proc.stdout
