"""Run one OpenCL LayerKernel on numpy arrays, without the graph emitter or a C++ build.

The kernel's source (behind the prelude) is built with the OpenCL driver found here (PoCL in
CI) through ctypes, its buffers are bound exactly as the executor binds them (buffer + element
offset per input, output and weight blob), and it is enqueued with its own global/local sizes.
Every array sits at a non-zero offset inside a larger buffer whose guard zones are checked
afterwards, so a kernel that writes outside its output (or ignores its offset) fails.

Programs are cached per (source, options) for the process; PoCL also caches compiled kernels
on disk (~/.cache/pocl), so a second test run is quick.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence

import numpy as np

from npas.codegen.kernel import LayerKernel
from npas.codegen.opencl.common import PRELUDE

INSTALL_HINT = (
    "install an OpenCL ICD loader and PoCL: `apt-get install ocl-icd-libopencl1 "
    "pocl-opencl-icd` (or run scripts/setup.sh)"
)
GUARD = 64  # elements before and after every array
GUARD_VALUE = -12345.0

CL_SUCCESS = 0
CL_DEVICE_TYPE_ALL = 0xFFFFFFFF
CL_MEM_READ_WRITE = 1 << 0
CL_MEM_COPY_HOST_PTR = 1 << 5
CL_PROGRAM_BUILD_LOG = 0x1183
CL_DEVICE_NAME = 0x102B

_vp = ctypes.c_void_p
_sz = ctypes.c_size_t
_i32 = ctypes.c_int32
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64


class ClError(RuntimeError):
    pass


@functools.cache
def _lib() -> ctypes.CDLL:
    for name in ("libOpenCL.so.1", "libOpenCL.so"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise ClError(f"no OpenCL loader (libOpenCL.so.1) on this machine; {INSTALL_HINT}")
    sigs = {
        "clGetPlatformIDs": (_i32, [_u32, ctypes.POINTER(_vp), ctypes.POINTER(_u32)]),
        "clGetDeviceIDs": (_i32, [_vp, _u64, _u32, ctypes.POINTER(_vp), ctypes.POINTER(_u32)]),
        "clGetDeviceInfo": (_i32, [_vp, _u32, _sz, _vp, ctypes.POINTER(_sz)]),
        "clCreateContext": (_vp, [_vp, _u32, ctypes.POINTER(_vp), _vp, _vp, ctypes.POINTER(_i32)]),
        "clCreateCommandQueue": (_vp, [_vp, _vp, _u64, ctypes.POINTER(_i32)]),
        "clCreateBuffer": (_vp, [_vp, _u64, _sz, _vp, ctypes.POINTER(_i32)]),
        "clEnqueueReadBuffer": (_i32, [_vp, _vp, _u32, _sz, _sz, _vp, _u32, _vp, _vp]),
        "clCreateProgramWithSource": (
            _vp, [_vp, _u32, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(_sz),
                  ctypes.POINTER(_i32)]
        ),
        "clBuildProgram": (_i32, [_vp, _u32, ctypes.POINTER(_vp), ctypes.c_char_p, _vp, _vp]),
        "clGetProgramBuildInfo": (_i32, [_vp, _vp, _u32, _sz, _vp, ctypes.POINTER(_sz)]),
        "clCreateKernel": (_vp, [_vp, ctypes.c_char_p, ctypes.POINTER(_i32)]),
        "clSetKernelArg": (_i32, [_vp, _u32, _sz, _vp]),
        "clEnqueueNDRangeKernel": (
            _i32, [_vp, _vp, _u32, ctypes.POINTER(_sz), ctypes.POINTER(_sz),
                   ctypes.POINTER(_sz), _u32, _vp, _vp]
        ),
        "clFinish": (_i32, [_vp]),
        "clReleaseMemObject": (_i32, [_vp]),
        "clReleaseKernel": (_i32, [_vp]),
    }  # fmt: skip
    for fn, (res, args) in sigs.items():
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    return lib


def _check(code: int, what: str) -> None:
    if code != CL_SUCCESS:
        raise ClError(f"{what} failed with OpenCL error {code}")


class _Device:
    def __init__(self) -> None:
        lib = _lib()
        n = _u32()
        platforms = (_vp * 8)()
        code = lib.clGetPlatformIDs(8, platforms, ctypes.byref(n))
        if code != CL_SUCCESS or n.value == 0:
            raise ClError(f"no OpenCL platform (clGetPlatformIDs: {code}); {INSTALL_HINT}")
        for p in platforms[: n.value]:
            dev = _vp()
            nd = _u32()
            if (
                lib.clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, ctypes.byref(dev), ctypes.byref(nd))
                == 0
            ):
                break
        else:
            raise ClError(f"no OpenCL device on any platform; {INSTALL_HINT}")
        self.device = dev
        name = ctypes.create_string_buffer(256)
        lib.clGetDeviceInfo(dev, CL_DEVICE_NAME, 256, name, None)
        self.name = name.value.decode(errors="replace")
        err = _i32()
        self.ctx = lib.clCreateContext(None, 1, ctypes.byref(dev), None, None, ctypes.byref(err))
        _check(err.value, "clCreateContext")
        self.queue = lib.clCreateCommandQueue(self.ctx, dev, 0, ctypes.byref(err))
        _check(err.value, "clCreateCommandQueue")
        self.programs: dict[tuple[str, str], int] = {}

    def program(self, source: str, options: str) -> int:
        key = (source, options)
        if key in self.programs:
            return self.programs[key]
        lib = _lib()
        err = _i32()
        text = ctypes.c_char_p(source.encode())
        prog = lib.clCreateProgramWithSource(
            self.ctx, 1, ctypes.byref(text), None, ctypes.byref(err)
        )
        _check(err.value, "clCreateProgramWithSource")
        code = lib.clBuildProgram(prog, 1, ctypes.byref(self.device), options.encode(), None, None)
        if code != CL_SUCCESS:
            size = _sz()
            lib.clGetProgramBuildInfo(
                prog, self.device, CL_PROGRAM_BUILD_LOG, 0, None, ctypes.byref(size)
            )
            log = ctypes.create_string_buffer(size.value + 1)
            lib.clGetProgramBuildInfo(
                prog, self.device, CL_PROGRAM_BUILD_LOG, size.value, log, None
            )
            raise ClError(f"OpenCL build failed ({code}):\n{log.value.decode(errors='replace')}")
        self.programs[key] = prog
        return prog

    def buffer(self, host: np.ndarray) -> int:
        err = _i32()
        host = np.ascontiguousarray(host)
        mem = _lib().clCreateBuffer(
            self.ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, host.nbytes,
            host.ctypes.data_as(_vp), ctypes.byref(err),
        )  # fmt: skip
        _check(err.value, "clCreateBuffer")
        return mem  # type: ignore[no-any-return]

    def read(self, mem: int, like: np.ndarray) -> np.ndarray:
        out = np.empty_like(like)
        code = _lib().clEnqueueReadBuffer(
            self.queue, mem, 1, 0, out.nbytes, out.ctypes.data_as(_vp), 0, None, None
        )
        _check(code, "clEnqueueReadBuffer")
        return out


@functools.cache
def device() -> _Device:
    return _Device()


def device_name() -> str:
    return device().name


def _guarded(a: np.ndarray, dtype: type) -> np.ndarray:
    flat = np.asarray(a, np.float32).reshape(-1).astype(dtype)
    buf = np.full(flat.size + 2 * GUARD, GUARD_VALUE, dtype)
    buf[GUARD : GUARD + flat.size] = flat
    return buf


def run(
    kernel: LayerKernel,
    inputs: Sequence[np.ndarray],
    out_shapes: Sequence[Sequence[int]],
    *,
    fp16: bool = False,
) -> list[np.ndarray]:
    """Run `kernel` once: inputs in LayerArgs::in order, outputs of `out_shapes`; returns the
    outputs as float32 (widened from half under fp16 storage)."""
    if kernel.cl is None:
        raise ValueError(f"{kernel.kernel} is not an OpenCL kernel")
    lib = _lib()
    dev = device()
    dtype = np.float16 if fp16 else np.float32
    options = "-cl-std=CL1.2" + (" -DNPAS_FP16_STORAGE" if fp16 else "")
    prog = dev.program(PRELUDE + "\n" + kernel.cl.source, options)
    err = _i32()
    k = lib.clCreateKernel(prog, kernel.cl.function.encode(), ctypes.byref(err))
    _check(err.value, f"clCreateKernel({kernel.cl.function})")
    hosts = [_guarded(a, dtype) for a in inputs]
    outs = [_guarded(np.zeros(int(np.prod(s)), np.float32), dtype) for s in out_shapes]
    ws = [_guarded(w, dtype) for w in kernel.weights]
    mems = [dev.buffer(h) for h in (*hosts, *outs, *ws)]
    try:
        for i, mem in enumerate(mems):
            m = _vp(mem)
            _check(
                lib.clSetKernelArg(k, 2 * i, ctypes.sizeof(_vp), ctypes.byref(m)), "clSetKernelArg"
            )
            off = _i32(GUARD)
            _check(lib.clSetKernelArg(k, 2 * i + 1, 4, ctypes.byref(off)), "clSetKernelArg")
        gs = kernel.cl.global_size
        gsz = (_sz * len(gs))(*gs)
        lsz = None if kernel.cl.local_size is None else (_sz * len(gs))(*kernel.cl.local_size)
        code = lib.clEnqueueNDRangeKernel(dev.queue, k, len(gs), None, gsz, lsz, 0, None, None)
        _check(code, f"clEnqueueNDRangeKernel({kernel.kernel}, {gs}, {kernel.cl.local_size})")
        _check(lib.clFinish(dev.queue), "clFinish")
        results = []
        n_in = len(hosts)
        for j, (shape, host) in enumerate(zip(out_shapes, outs, strict=True)):
            got = dev.read(mems[n_in + j], host)
            n = int(np.prod(shape))
            for what, zone in (("before", got[:GUARD]), ("after", got[GUARD + n :])):
                if not np.all(zone == dtype(GUARD_VALUE)):
                    raise AssertionError(f"{kernel.kernel} wrote outside output {j} ({what} it)")
            results.append(got[GUARD : GUARD + n].astype(np.float32).reshape(tuple(shape)))
        for i, (host, mem) in enumerate(zip(hosts, mems, strict=False)):
            if not np.array_equal(dev.read(mem, host), host):
                raise AssertionError(f"{kernel.kernel} wrote into its input {i}")
        return results
    finally:
        for mem in mems:
            lib.clReleaseMemObject(mem)
        lib.clReleaseKernel(k)
