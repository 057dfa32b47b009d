"""What the arm64 tier shares: the kernel harness (tests/host/kernel_harness.py, arch="arm64":
cross-compiled static executables under qemu-aarch64), the host tier's case lists (imported,
not copied: every case runs on NEON too), and the checks."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

HOST_TESTS = Path(__file__).resolve().parents[1] / "host"
if str(HOST_TESTS) not in sys.path:
    sys.path.insert(0, str(HOST_TESTS))

import kernel_harness as H  # noqa: E402

from npas.codegen.kernel import LayerKernel  # noqa: E402

ARCH = "arm64"
ISAS = ("neon", "scalar")


def require_tools() -> None:
    """Fail (never skip) when the cross toolchain or the emulator is missing."""
    missing = H.missing_arm64_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: {H.ARM64_TOOLS_HINT}", pytrace=False)


def lower(layer, graph, isa: str = "neon") -> LayerKernel:
    return H.lower(layer, graph, isa, arch=ARCH)


def prebuild(kernels: Sequence[LayerKernel | None]) -> None:
    require_tools()
    H.prebuild(kernels, arch=ARCH)


def check(
    kernel: LayerKernel,
    feeds: Sequence[np.ndarray],
    refs: Sequence[np.ndarray],
    *,
    rtol: float,
    atol: float,
    scale_atol: bool = False,
    threads: Sequence[int] = (1, 2),
) -> None:
    """Run `kernel` under qemu at every thread count and compare every output with its
    reference (atol relative to the output range when scale_atol)."""
    outs = H.run_arm64(kernel, feeds, [r.shape for r in refs], threads)
    for t, ys in outs.items():
        for i, (y, ref) in enumerate(zip(ys, refs, strict=True)):
            a = atol * max(1.0, float(np.abs(ref).max())) if scale_atol else atol
            np.testing.assert_allclose(
                y, ref, rtol=rtol, atol=a, err_msg=f"{kernel.kernel}: output {i}, threads={t}"
            )
