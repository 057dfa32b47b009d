"""Builds npas with its native extension (npas._runtime) through CMake.

`pip install --no-build-isolation -e .` (development) or `pip install .`; the extension is
compiled by the top-level CMakeLists.txt with pybind11's CMake config. A non-editable install
also packs runtime/include and the runtime sources into npas/_runtime_files, because every
compiled model is a standalone CMake project that carries copies of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RUNTIME_FILES = [
    "include", "src/threadpool.cpp", "src/executor.cpp", "src/model_desc.h", "src/bench_main.cpp",
    "src/opencl_backend.cpp", "src/opencl_backend.h", "src/npas_cl.h", "qemu_plugin",
]  # fmt: skip


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        sys.exit(
            f"npas: building the native runtime needs {name}; install it with "
            "`apt-get install g++ cmake ninja-build` or `pip install cmake ninja`, "
            "or run scripts/setup.sh"
        )
    return found


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import pybind11

        target = Path(self.get_ext_fullpath(ext.name)).resolve()
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or target.suffix
        cmake = _tool("cmake")
        configure = [
            cmake, "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            f"-DPython_EXECUTABLE={sys.executable}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DNPAS_EXTENSION_DIR={target.parent}", f"-DNPAS_EXTENSION_SUFFIX={suffix}",
        ]  # fmt: skip
        ninja = shutil.which("ninja") or shutil.which(
            "ninja", path=str(Path(sys.executable).parent)
        )
        if ninja:
            configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
        subprocess.check_call(configure)
        jobs = os.environ.get("NPAS_JOBS") or str(os.cpu_count() or 1)
        subprocess.check_call([cmake, "--build", str(build_dir), "-j", jobs])
        if not target.is_file():
            sys.exit(f"npas: CMake did not produce {target}")


class BuildPyWithRuntime(build_py):
    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "npas" / "_runtime_files"
        for rel in RUNTIME_FILES:
            src = ROOT / "runtime" / rel
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, out, dirs_exist_ok=True)
            else:
                shutil.copy2(src, out)


setup(
    ext_modules=[CMakeExtension("npas._runtime")],
    cmdclass={"build_ext": CMakeBuild, "build_py": BuildPyWithRuntime},
)
