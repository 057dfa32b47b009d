"""Targets are data. Shared code reads these fields; a new target is mostly a new entry."""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Isa:
    """A SIMD instruction set as the templates see it."""

    name: str  # avx512 | avx2 | neon | scalar
    vector_floats: int  # fp32 lanes per vector register (1 for scalar)
    registers: int  # architectural vector registers
    cflags: tuple[str, ...]  # compiler flags that enable it


SCALAR = Isa("scalar", 1, 16, ())
AVX2 = Isa("avx2", 8, 16, ("-mavx2", "-mfma", "-mf16c"))
AVX512 = Isa(
    "avx512",
    16,
    32,
    ("-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"),
)
NEON = Isa("neon", 4, 32, ("-march=armv8.2-a",))


@dataclass(frozen=True)
class Target:
    name: str  # host | arm64 | arm64-android | opencl | opencl-android
    isa: Isa
    cxx: str = "g++"
    cxxflags: tuple[str, ...] = ("-O3", "-std=c++17", "-fPIC", "-fno-math-errno")
    template_dir: str = "host"
    cmake_toolchain: str | None = None
    runner: str = "host"


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.cache
def host_isa() -> Isa:
    """The best ISA this machine runs: AVX-512 (F/BW/DQ/VL), then AVX2+FMA, else scalar.
    NPAS_ISA (knobs) may force a lower one."""
    from npas import knobs

    forced = knobs.ISA.get()
    if platform.machine() not in ("x86_64", "AMD64"):
        return SCALAR
    flags = _cpu_flags()
    found = SCALAR
    if {"avx2", "fma", "f16c"} <= flags:
        found = AVX2
    if found is AVX2 and {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        found = AVX512
    if forced:
        order = [SCALAR, AVX2, AVX512]
        want = {i.name: i for i in order}.get(forced)
        if want is None:
            raise ValueError(f"NPAS_ISA={forced!r}: expected one of scalar, avx2, avx512")
        if order.index(want) > order.index(found):
            raise ValueError(f"NPAS_ISA={forced!r} but this CPU only supports {found.name}")
        return want
    return found


def get_target(name: str) -> Target:
    if name == "host":
        return Target("host", host_isa())
    raise KeyError(name)


TARGET_NAMES = ("host", "arm64", "arm64-android", "opencl", "opencl-android")
