"""Every environment knob npas reads, declared once and typed; read at use time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Knob:
    env: str
    default: str
    doc: str

    def get(self) -> str:
        return os.environ.get(self.env, self.default)

    def flag(self) -> bool:
        return self.get().lower() not in ("", "0", "false", "no")


CACHE_DIR = Knob("NPAS_CACHE_DIR", str(Path.home() / ".cache" / "npas"), "compile cache root")
CACHE_MAX_GB = Knob("NPAS_CACHE_MAX_GB", "4", "size cap of cached whole-model builds (LRU)")
ISA = Knob("NPAS_ISA", "", "force a lower ISA: scalar | avx2 | avx512 (x86), scalar | neon (arm)")
KEEP_BUILD = Knob("NPAS_KEEP_BUILD", "0", "keep every stage's output (sources, build tree)")
NO_CACHE = Knob("NPAS_NO_CACHE", "0", "ignore the compile cache")
JOBS = Knob("NPAS_JOBS", "", "parallel compile jobs (default: CPU count)")
SPARSE = Knob(
    "NPAS_SPARSE",
    "auto",
    "sparse kernels for pruned layers: auto (where the cost model expects a gain) | sparse "
    "(wherever one serves) | dense (never)",
)
DEVICE_DIR = Knob(
    "NPAS_DEVICE_DIR",
    "",
    "working directory on ssh/adb devices (default ~/.cache/npas/device, /data/local/tmp/npas)",
)
DEVICE_TIMEOUT = Knob("NPAS_DEVICE_TIMEOUT", "600", "seconds one command on a device may run")
SSH_IDENTITY = Knob("NPAS_SSH_IDENTITY", "", "private key for ssh:HOST devices (ssh -i)")
SSH_OPTIONS = Knob("NPAS_SSH_OPTIONS", "", "extra ssh/scp options for ssh:HOST devices")
# Read by the OpenCL host code of compiled models (runtime/src/opencl_backend.cpp), in C++:
# declared here so that every knob has one list.
OPENCL_DEVICE = Knob(
    "NPAS_OPENCL_DEVICE",
    "",
    "OpenCL device of opencl builds: 'P:D' (platform:device index) or part of its name; "
    "default the first GPU, else the first device",
)
OPENCL_CACHE_DIR = Knob(
    "NPAS_OPENCL_CACHE_DIR",
    "",
    "where OpenCL program binaries are cached (default <compiled dir>/opencl-cache)",
)
OPENCL_LIBRARY = Knob(
    "NPAS_OPENCL_LIBRARY",
    "",
    "the OpenCL library to dlopen (default libOpenCL.so.1, libOpenCL.so, Android vendor paths)",
)
