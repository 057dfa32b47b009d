"""Targets are data. Shared code reads these fields; a new target is mostly a new entry."""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from npas.errors import ToolchainError


@dataclass(frozen=True)
class Isa:
    """A SIMD instruction set as the templates see it."""

    name: str  # avx512 | avx2 | neon | scalar
    vector_floats: int  # fp32 lanes per vector register (1 for scalar)
    registers: int  # architectural vector registers
    cflags: tuple[str, ...]  # compiler flags that enable it
    lane_fma: bool = False  # FMA by one lane of a register (simd.h kLaneFma)


SCALAR = Isa("scalar", 1, 16, ())
AVX2 = Isa("avx2", 8, 16, ("-mavx2", "-mfma", "-mf16c"))
AVX512 = Isa(
    "avx512",
    16,
    32,
    ("-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"),
)
NEON = Isa("neon", 4, 32, ("-march=armv8.2-a",), lane_fma=True)
# OpenCL kernels are compiled by the device's driver at run time: no compiler flags here; the
# C++ around them (executor, OpenCL host code) is plain code for the CPU the library runs on.
OPENCL = Isa("opencl", 4, 0, ())

# The ISAs one architecture's CPUs step through, lowest first: NPAS_ISA may force any rung
# below the target's own.
ISA_LADDERS = {"x86_64": (SCALAR, AVX2, AVX512), "aarch64": (SCALAR, NEON)}

HOST_INSTALL_HINT = (
    "install them with `apt-get install g++ cmake ninja-build` (or `pip install cmake ninja`), "
    "or run scripts/setup.sh"
)
ARM64_INSTALL_HINT = (
    "install the aarch64 cross compiler with `apt-get install g++-aarch64-linux-gnu` (and "
    "`apt-get install qemu-user` to run the result here), or run scripts/setup.sh"
)
NDK_DOWNLOAD = "https://developer.android.com/ndk/downloads"
ANDROID_API = 24  # Android 7.0: nearly every arm64 phone in use runs it or newer


@dataclass(frozen=True)
class Target:
    name: str  # host | arm64 | arm64-android | opencl | opencl-android
    isa: Isa
    cxx: str = "g++"
    cxxflags: tuple[str, ...] = ("-O3", "-std=c++17", "-fPIC", "-fno-math-errno")
    template_dir: str = "host"
    # CMake toolchain file inside the generated project (written there from
    # npas/codegen/toolchains/), passed as -DCMAKE_TOOLCHAIN_FILE; None: the host compiler.
    cmake_toolchain: str | None = None
    runner: str = "host"  # host (in-process) | qemu | adb
    arch: str = "x86_64"  # the ISA ladder NPAS_ISA moves on
    cmake_args: tuple[str, ...] = ()  # further -D cache entries of the configure step
    install_hint: str = HOST_INSTALL_HINT  # what to install when cxx is missing
    # OpenCL targets: buffers hold half instead of float (`--fp16`); arithmetic stays fp32.
    fp16_storage: bool = False


def _cpu_flags() -> set[str]:
    """x86 'flags' or aarch64 'Features' of /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _machine() -> str:
    m = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(m, m)


def force_isa(found: Isa, arch: str, forced: str, what: str) -> Isa:
    """`found` lowered to NPAS_ISA=`forced` (a rung of arch's ladder at most as high)."""
    ladder = ISA_LADDERS.get(arch, (SCALAR,))
    names = [i.name for i in ladder]
    if forced not in names:
        raise ValueError(f"NPAS_ISA={forced!r}: expected one of {', '.join(names)} for {what}")
    want = ladder[names.index(forced)]
    if found in ladder and names.index(forced) > ladder.index(found):
        raise ValueError(f"NPAS_ISA={forced!r} but {what} only supports {found.name}")
    return want


@functools.cache
def detected_isa() -> Isa:
    """The best ISA this machine runs: AVX-512 (F/BW/DQ/VL), then AVX2+FMA, else scalar on
    x86-64; NEON (with the ARMv8.1 atomics that -march=armv8.2-a code may use) on aarch64.
    Read from /proc/cpuinfo once per process."""
    arch = _machine()
    flags = _cpu_flags()
    found = SCALAR
    if arch == "x86_64":
        if {"avx2", "fma", "f16c"} <= flags:
            found = AVX2
        if found is AVX2 and {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
            found = AVX512
    elif arch == "aarch64" and {"asimd", "atomics"} <= flags:
        found = NEON
    return found


def host_isa() -> Isa:
    """detected_isa(), lowered by NPAS_ISA (knobs), which is read at every call: a process
    that sets it for one compile does not keep it for the next."""
    from npas import knobs

    forced = knobs.ISA.get().strip().lower()
    if forced:
        return force_isa(detected_isa(), _machine(), forced, "this CPU")
    return detected_isa()


def _host() -> Target:
    arch = _machine()
    return Target("host", host_isa(), arch=arch if arch in ISA_LADDERS else "x86_64")


def _arm64() -> Target:
    return Target(
        "arm64",
        NEON,
        cxx="aarch64-linux-gnu-g++",
        cmake_toolchain="toolchains/aarch64-linux-gnu.cmake",
        runner="qemu",
        arch="aarch64",
        install_hint=ARM64_INSTALL_HINT,
    )


def android_ndk(target: str = "arm64-android") -> Path:
    """The Android NDK named by ANDROID_NDK_HOME (or ANDROID_NDK_ROOT), checked."""
    without = (
        "target 'opencl' builds the same kernels for this machine without it"
        if target.startswith("opencl")
        else "target 'arm64' cross-compiles for aarch64 Linux without it"
    )
    for var in ("ANDROID_NDK_HOME", "ANDROID_NDK_ROOT"):
        value = os.environ.get(var, "").strip()
        if value:
            break
    else:
        raise ToolchainError(
            f"target {target!r} needs the Android NDK, but neither ANDROID_NDK_HOME nor "
            f"ANDROID_NDK_ROOT is set; download an NDK (r23 or newer) from {NDK_DOWNLOAD} (or "
            "`sdkmanager 'ndk;26.3.11579264'`), unpack it and set ANDROID_NDK_HOME to its "
            f"directory; {without}"
        )
    ndk = Path(value).expanduser()
    if not (ndk / "build" / "cmake" / "android.toolchain.cmake").is_file():
        raise ToolchainError(
            f"{var}={value!r} is not an Android NDK: it has no build/cmake/"
            f"android.toolchain.cmake; point {var} at an unpacked NDK (r23 or newer, from "
            f"{NDK_DOWNLOAD})"
        )
    return ndk.resolve()


def _android_clang(ndk: Path) -> Path:
    prebuilt = ndk / "toolchains" / "llvm" / "prebuilt"
    hosts = sorted(prebuilt.glob("*/bin/clang++")) if prebuilt.is_dir() else []
    if not hosts:
        raise ToolchainError(
            f"the Android NDK at {str(ndk)!r} has no toolchains/llvm/prebuilt/*/bin/clang++ "
            f"(an NDK older than r19, or an incomplete unpack); install a current NDK from "
            f"{NDK_DOWNLOAD}"
        )
    return hosts[0]


def _arm64_android(name: str = "arm64-android") -> Target:
    ndk = android_ndk(name)
    return Target(
        "arm64-android",
        NEON,
        cxx=str(_android_clang(ndk)),
        cmake_toolchain="toolchains/android-arm64.cmake",
        runner="adb",
        arch="aarch64",
        cmake_args=(f"-DNPAS_ANDROID_NDK={ndk}", f"-DANDROID_PLATFORM=android-{ANDROID_API}"),
        install_hint=f"install the Android NDK from {NDK_DOWNLOAD} and set ANDROID_NDK_HOME",
    )


def _opencl() -> Target:
    """OpenCL kernels with host code for this machine's CPU: runs on any OpenCL driver here
    (PoCL in CI, a desktop GPU's ICD elsewhere)."""
    arch = _machine()
    return Target("opencl", OPENCL, template_dir="opencl", arch=arch)


def _opencl_android() -> Target:
    """The same kernels and host code built with the NDK for arm64 phones (Adreno, Mali...):
    libOpenCL.so is found on the phone at run time."""
    return dataclasses.replace(
        _arm64_android("opencl-android"), name="opencl-android", isa=OPENCL, template_dir="opencl"
    )


def get_target(name: str) -> Target:
    """The Target called `name`; ToolchainError when its toolchain cannot exist here (e.g.
    arm64-android without an NDK), KeyError for a name that is no target."""
    if name == "host":
        return _host()
    if name == "arm64":
        return _arm64()
    if name == "arm64-android":
        return _arm64_android()
    if name == "opencl":
        return _opencl()
    if name == "opencl-android":
        return _opencl_android()
    raise KeyError(name)


TARGET_NAMES = ("host", "arm64", "arm64-android", "opencl", "opencl-android")
