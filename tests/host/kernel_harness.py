"""Run one LayerKernel on numpy arrays, without the graph emitter.

Host: build(kernel) compiles the kernel's sources with the Target's flags into an object, links
it with runtime/src/threadpool.cpp and a tiny generated extern "C" shim (which fills LayerArgs
from raw pointers) into a shared library, and caches everything by content hash under
$NPAS_TEST_KERNEL_CACHE (default /tmp/npas-kernel-cache-<uid>), so a second test run compiles
nothing. prebuild(kernels) compiles many in parallel. run(kernel, inputs, out_shapes) calls it.

arm64 (arch="arm64"): an aarch64 library cannot be dlopened here, so the kernel is cross-compiled
(aarch64-linux-gnu-g++) and statically linked with a fixed driver (kernel_driver.cpp: reads raw
float32 inputs from files, fills LayerArgs, runs the kernel at each thread count, checks guard
zones, writes the outputs) into an executable, cached the same way, run under qemu-aarch64.

Also: tiny graph builders for single-layer tests (one_layer_graph).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from npas.codegen.kernel import LayerKernel
from npas.codegen.lower import lower_layer
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import AVX2, AVX512, NEON, SCALAR, Isa, Target, detected_isa, get_target
from npas.ir.attrs import Activation, Epilogue, NoAttrs
from npas.ir.graph import Graph, Layer, Value
from npas.ir.ops import Op

# Every activation kernels fuse, with its numpy reference (one table for every kernel test).
ACTIVATIONS = {
    "relu": (Activation(Op.RELU), lambda v: np.maximum(v, 0)),
    "relu6": (Activation(Op.CLIP, 0.0, 6.0), lambda v: np.clip(v, 0, 6)),
    "clip": (Activation(Op.CLIP, -0.5, 0.75), lambda v: np.clip(v, -0.5, 0.75)),
    "leaky": (Activation(Op.LEAKY_RELU, 0.1), lambda v: np.where(v >= 0, v, 0.1 * v)),
    "hswish": (Activation(Op.HARDSWISH), lambda v: v * np.clip(v + 3, 0, 6) / 6),
    "hsigmoid": (Activation(Op.HARDSIGMOID, 0.2, 0.5), lambda v: np.clip(0.2 * v + 0.5, 0, 1)),
    "sigmoid": (Activation(Op.SIGMOID), lambda v: 1 / (1 + np.exp(-v))),
    "tanh": (Activation(Op.TANH), np.tanh),
    "silu": (Activation(Op.SILU), lambda v: v / (1 + np.exp(-v))),
}

REPO = Path(__file__).resolve().parents[2]
INCLUDE = REPO / "runtime" / "include"
THREADPOOL_SRC = REPO / "runtime" / "src" / "threadpool.cpp"
CACHE = Path(
    os.environ.get(
        "NPAS_TEST_KERNEL_CACHE", f"{tempfile.gettempdir()}/npas-kernel-cache-{os.getuid()}"
    )
)

# Compile times of kernel TUs built by this process (entry -> seconds), for reports.
COMPILE_SECONDS: dict[str, float] = {}

_SHIM = """\
#include <chrono>
#include <cstddef>
#include "npas/kernel_abi.h"
#include "npas/threadpool.h"

extern "C" void {entry}(const npas::LayerArgs*);

extern "C" void* npas_harness_pool_new(int threads) {{ return new npas::ThreadPool(threads); }}
extern "C" void npas_harness_pool_free(void* pool) {{
  delete static_cast<npas::ThreadPool*>(pool);
}}
extern "C" void npas_harness_run(void* pool, const float** in, int nin, float** out, int nout,
                                 const float** w, int nw, float* scratch, std::size_t bytes) {{
  npas::LayerArgs args{{}};
  for (int i = 0; i < nin; ++i) args.in[i] = in[i];
  for (int i = 0; i < nout; ++i) args.out[i] = out[i];
  for (int i = 0; i < nw; ++i) args.w[i] = w[i];
  args.scratch = scratch;
  args.scratch_bytes_per_thread = bytes;
  args.pool = static_cast<npas::ThreadPool*>(pool);
  {entry}(&args);
}}
// `reps` back-to-back calls, as layers run inside a model (the pool's workers stay hot);
// returns the mean seconds per call.
extern "C" double npas_harness_bench(void* pool, const float** in, int nin, float** out,
                                     int nout, const float** w, int nw, float* scratch,
                                     std::size_t bytes, int reps) {{
  npas::LayerArgs args{{}};
  for (int i = 0; i < nin; ++i) args.in[i] = in[i];
  for (int i = 0; i < nout; ++i) args.out[i] = out[i];
  for (int i = 0; i < nw; ++i) args.w[i] = w[i];
  args.scratch = scratch;
  args.scratch_bytes_per_thread = bytes;
  args.pool = static_cast<npas::ThreadPool*>(pool);
  const auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) {entry}(&args);
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  return dt.count() / reps;
}}
"""


ISAS = {i.name: i for i in (SCALAR, AVX2, AVX512)}


def best_isa() -> Isa:
    """The best ISA of this CPU, whatever NPAS_ISA says."""
    return detected_isa()


def target_for(isa: str) -> Target:
    """The host Target a kernel of ISA `isa` is built with (so AVX2 kernels are compiled
    without AVX-512 and references with no SIMD flags at all)."""
    return Target("host", ISAS[isa])


def vector_isas() -> list[str]:
    """The vector ISAs this machine can run, best first."""
    order = ["avx512", "avx2"]
    best = best_isa().name
    return order[order.index(best) :] if best in order else []


def lower(layer: Layer, graph: Graph, isa: str, arch: str = "host") -> LayerKernel:
    """lower_layer for the host (or arm64) target with NPAS_ISA=isa (the user's knob, read at
    use time)."""
    saved = os.environ.get("NPAS_ISA")
    os.environ["NPAS_ISA"] = isa
    try:
        target = get_target("arm64") if arch == "arm64" else Target("host", best_isa())
        kernel = lower_layer(layer, graph, target)
    finally:
        if saved is None:
            os.environ.pop("NPAS_ISA", None)
        else:
            os.environ["NPAS_ISA"] = saved
    assert kernel is not None
    return kernel


def expect_kernel(kernel: LayerKernel, isa: str, family: str | None = None) -> dict:
    """Assert the intended variant was selected: the vector kernel of `isa` (not a silent
    scalar fallback), or the scalar reference when isa == 'scalar'."""
    info = parse_kernel_name(kernel.kernel)
    if isa == "scalar":
        assert (info["scheme"], info["isa"]) == ("ref", "scalar"), kernel.kernel
    else:
        assert (info["scheme"], info["isa"]) == ("dense", isa), kernel.kernel
    if family is not None:
        assert info["family"] == family, kernel.kernel
    return info


def flags(target: Target | str | None = None) -> list[str]:
    if target is None:
        target = Target("host", best_isa())
    elif isinstance(target, str):
        target = target_for(target)
    return [*target.cxxflags, *target.isa.cflags, f"-I{INCLUDE}"]


def _headers_digest() -> str:
    h = hashlib.sha256()
    for path in sorted((INCLUDE / "npas").glob("*.h")):
        h.update(path.read_bytes())
    h.update(THREADPOOL_SRC.read_bytes())
    return h.hexdigest()[:16]


def _compile(args: list[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    proc = subprocess.run([*args, "-o", str(tmp)], capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"compile failed: {' '.join(args)}\n{proc.stderr[-6000:]}")
    os.replace(tmp, out)


def _threadpool_obj(fl: list[str]) -> Path:
    key = hashlib.sha256(("\0".join(fl) + _headers_digest()).encode()).hexdigest()[:16]
    obj = CACHE / f"threadpool-{key}.o"
    if not obj.exists():
        _compile(["g++", *fl, "-c", str(THREADPOOL_SRC)], obj)
    return obj


def library_path(kernel: LayerKernel, target: Target | None = None) -> Path:
    fl = flags(target or kernel.isa)
    h = hashlib.sha256()
    for name, text in sorted(kernel.sources.items()):
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    h.update("\0".join(fl).encode() + _headers_digest().encode() + _SHIM.encode())
    return CACHE / f"{kernel.entry}-{h.hexdigest()[:12]}.so"


@contextlib.contextmanager
def _claim(product: Path, wait: bool) -> Iterator[bool]:
    """Hold the build lock of `product`: True once held (blocking when `wait`), False when
    another process or thread is building it and `wait` is off. Parallel test workers run the
    same prebuild lists; the lock keeps them from compiling the same kernel twice."""
    product.parent.mkdir(parents=True, exist_ok=True)
    with open(product.with_name(f".{product.name}.lock"), "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def build(kernel: LayerKernel, target: Target | None = None, arch: str = "host") -> Path:
    """Compile and link `kernel` (cached); returns the shared library path (the static
    executable for arch="arm64")."""
    built = _build(kernel, target, arch, wait=True)
    assert built is not None
    return built


def _build(kernel: LayerKernel, target: Target | None, arch: str, wait: bool) -> Path | None:
    product = arm64_executable_path(kernel) if arch == "arm64" else library_path(kernel, target)
    if product.exists():
        return product
    with _claim(product, wait) as mine:
        if not mine:
            return None
        if product.exists():
            return product
        if arch == "arm64":
            return _build_arm64(kernel)
        return _build_host(kernel, target)


def _build_host(kernel: LayerKernel, target: Target | None) -> Path:
    lib = library_path(kernel, target)
    fl = flags(target or kernel.isa)
    work = lib.with_suffix(".d")
    work.mkdir(parents=True, exist_ok=True)
    objs = []
    for name, text in kernel.sources.items():
        src = work / name
        src.write_text(text)
        obj = src.with_suffix(".o")
        t0 = time.perf_counter()
        _compile(["g++", *fl, "-c", str(src)], obj)
        COMPILE_SECONDS[kernel.entry] = time.perf_counter() - t0
        objs.append(obj)
    shim = work / "shim.cpp"
    shim.write_text(_SHIM.format(entry=kernel.entry))
    _compile(
        ["g++", *fl, "-shared", str(shim), *map(str, objs), str(_threadpool_obj(fl)), "-lpthread"],
        lib,
    )
    return lib


def prebuild(
    kernels: Iterable[LayerKernel | None], jobs: int | None = None, arch: str = "host"
) -> None:
    """Build many kernels in parallel (the compile of each TU is single-threaded). Kernels
    another worker is building are skipped, then waited for at the end; each worker takes the
    list in its own order, so two workers share the list instead of racing through it."""
    todo = {k.entry: k for k in kernels if k is not None}
    path = arm64_executable_path if arch == "arm64" else library_path
    pending = [k for k in todo.values() if not path(k).exists()]
    if not pending:
        return
    random.Random(os.getpid()).shuffle(pending)
    with ThreadPoolExecutor(jobs or os.cpu_count() or 1) as ex:
        built = list(ex.map(lambda k: _build(k, None, arch, wait=False), pending))
        rest = [k for k, b in zip(pending, built, strict=True) if b is None]
        list(ex.map(lambda k: build(k, arch=arch), rest))


# ---- running ----

_LIBS: dict[Path, ctypes.CDLL] = {}
_POOLS: dict[tuple[Path, int], int] = {}


def _lib(kernel: LayerKernel) -> ctypes.CDLL:
    path = build(kernel)
    if path not in _LIBS:
        lib = ctypes.CDLL(str(path))
        lib.npas_harness_pool_new.restype = ctypes.c_void_p
        lib.npas_harness_pool_new.argtypes = [ctypes.c_int]
        lib.npas_harness_pool_free.argtypes = [ctypes.c_void_p]
        fp = ctypes.POINTER(ctypes.c_float)
        lib.npas_harness_run.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(fp), ctypes.c_int,
            ctypes.POINTER(fp), ctypes.c_int,
            ctypes.POINTER(fp), ctypes.c_int,
            fp, ctypes.c_size_t,
        ]  # fmt: skip
        lib.npas_harness_bench.argtypes = [*lib.npas_harness_run.argtypes, ctypes.c_int]
        lib.npas_harness_bench.restype = ctypes.c_double
        _LIBS[path] = lib
    return _LIBS[path]


GUARD = 256  # floats of sentinel before and after every buffer a kernel gets
_SENTINEL = np.float32(-1.2345e-37)


def aligned(a: np.ndarray | int, align: int = 64) -> np.ndarray:
    """A 64-byte aligned float32 copy of `a` (or an uninitialised array of that many floats),
    between two guard zones of sentinels that check_guards() verifies."""
    n = a if isinstance(a, int) else np.asarray(a).size
    raw = np.full(n + 2 * GUARD + align // 4, _SENTINEL, np.float32)
    off = (-raw[GUARD:].ctypes.data % align) // 4 + GUARD
    buf = raw[off : off + n]
    if not isinstance(a, int):
        buf[...] = np.asarray(a, np.float32).reshape(-1)
    _GUARDED[id(buf)] = (raw, off, n)
    return buf


_GUARDED: dict[int, tuple[np.ndarray, int, int]] = {}


def check_guards(buf: np.ndarray, what: str) -> None:
    """Fail if anything wrote into the guard zones around `buf` (an out-of-bounds store)."""
    raw, off, n = _GUARDED[id(buf)]
    before, after = raw[off - GUARD : off], raw[off + n : off + n + GUARD]
    bad = np.flatnonzero(before.view(np.int32) != _SENTINEL.view(np.int32))
    if bad.size:
        raise AssertionError(f"kernel wrote {GUARD - bad[0]} floats before the start of {what}")
    bad = np.flatnonzero(after.view(np.int32) != _SENTINEL.view(np.int32))
    if bad.size:
        raise AssertionError(f"kernel wrote {bad[-1] + 1} floats past the end of {what}")


def _ptrs(arrays: Sequence[np.ndarray]) -> Any:
    fp = ctypes.POINTER(ctypes.c_float)
    arr = (fp * max(1, len(arrays)))()
    for i, a in enumerate(arrays):
        arr[i] = a.ctypes.data_as(fp)
    return arr


class Runner:
    """A kernel bound to aligned input/weight/output/scratch buffers, callable repeatedly."""

    def __init__(
        self,
        kernel: LayerKernel,
        inputs: Sequence[np.ndarray],
        out_shapes: Sequence[tuple[int, ...]],
        threads: int = 1,
        poison: float = np.nan,
    ) -> None:
        self.kernel = kernel
        self.lib = _lib(kernel)
        key = (build(kernel), threads)
        if key not in _POOLS:
            _POOLS[key] = self.lib.npas_harness_pool_new(threads)
        self.pool = _POOLS[key]
        self.ins = [aligned(np.ascontiguousarray(x, np.float32)) for x in inputs]
        self.ws = [aligned(w) for w in kernel.weights]
        self.outs = [aligned(int(np.prod(s, dtype=np.int64))) for s in out_shapes]
        for o in self.outs:
            o[...] = poison
        self.out_shapes = [tuple(s) for s in out_shapes]
        nscratch = max(1, threads * kernel.scratch_bytes_per_thread // 4)
        self.scratch = aligned(nscratch)
        self.scratch[...] = np.nan  # kernels must not read scratch they did not write
        self._args = (
            self.pool,
            _ptrs(self.ins), len(self.ins),
            _ptrs(self.outs), len(self.outs),
            _ptrs(self.ws), len(self.ws),
            self.scratch.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            kernel.scratch_bytes_per_thread,
        )  # fmt: skip

    def seconds(self, reps: int) -> float:
        """Mean seconds per call over `reps` back-to-back calls made from C."""
        return float(self.lib.npas_harness_bench(*self._args, reps))

    def __call__(self) -> list[np.ndarray]:
        self.lib.npas_harness_run(*self._args)
        for i, o in enumerate(self.outs):
            check_guards(o, f"output {i}")
        check_guards(self.scratch, "scratch")
        return [o.reshape(s).copy() for o, s in zip(self.outs, self.out_shapes, strict=True)]


def run(
    kernel: LayerKernel,
    inputs: Sequence[np.ndarray],
    out_shapes: Sequence[tuple[int, ...]],
    threads: int = 1,
    arch: str = "host",
) -> list[np.ndarray]:
    """Run `kernel` once on `inputs` (LayerArgs::in order); returns the outputs."""
    if arch == "arm64":
        return run_arm64(kernel, inputs, out_shapes, (threads,))[threads]
    return Runner(kernel, inputs, out_shapes, threads)()


# ---- arm64: cross-compiled static executables under qemu-aarch64 ----

ARM64_CXX = "aarch64-linux-gnu-g++"
QEMU_AARCH64 = "qemu-aarch64"
ARM64_SYSROOT = "/usr/aarch64-linux-gnu"
DRIVER_SRC = Path(__file__).resolve().parent / "kernel_driver.cpp"
ARM64_TOOLS_HINT = (
    "the arm64 kernel tests cross-compile with aarch64-linux-gnu-g++ and run under "
    "qemu-aarch64: install them with `apt-get install g++-aarch64-linux-gnu qemu-user` (or "
    "run scripts/setup.sh)"
)


def missing_arm64_tools() -> list[str]:
    """The cross compiler / emulator / sysroot pieces that are not installed."""
    missing = [t for t in (ARM64_CXX, QEMU_AARCH64) if shutil.which(t) is None]
    if not Path(ARM64_SYSROOT, "lib", "libc.a").is_file():
        missing.append(f"{ARM64_SYSROOT}/lib/libc.a (libc6-dev-arm64-cross)")
    return missing


def arm64_target(isa: str) -> Target:
    """The arm64 Target a kernel of ISA `isa` is compiled with (references: no NEON flags)."""
    return dataclasses.replace(get_target("arm64"), isa=NEON if isa == "neon" else SCALAR)


def _arm64_flags(isa: str) -> list[str]:
    return flags(arm64_target(isa))


def _arm64_common_objects() -> tuple[Path, Path]:
    """The driver and the thread pool, compiled for aarch64 without ISA flags (cached)."""
    fl = _arm64_flags("scalar")
    key = hashlib.sha256(
        ("\0".join(fl) + _headers_digest()).encode() + DRIVER_SRC.read_bytes()
    ).hexdigest()[:16]
    objs = (CACHE / f"arm64-driver-{key}.o", CACHE / f"arm64-threadpool-{key}.o")
    for src, obj in zip((DRIVER_SRC, THREADPOOL_SRC), objs, strict=True):
        if not obj.exists():
            _compile([ARM64_CXX, *fl, "-c", str(src)], obj)
    return objs


def arm64_executable_path(kernel: LayerKernel) -> Path:
    fl = _arm64_flags(kernel.isa)
    h = hashlib.sha256()
    for name, text in sorted(kernel.sources.items()):
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    h.update("\0".join(fl).encode() + _headers_digest().encode() + DRIVER_SRC.read_bytes())
    return CACHE / f"{kernel.entry}-{h.hexdigest()[:12]}.arm64"


def build_arm64(kernel: LayerKernel) -> Path:
    """Cross-compile `kernel` and link it statically with the driver (cached)."""
    return build(kernel, arch="arm64")


def _build_arm64(kernel: LayerKernel) -> Path:
    exe = arm64_executable_path(kernel)
    fl = _arm64_flags(kernel.isa)
    work = exe.with_suffix(".d")
    work.mkdir(parents=True, exist_ok=True)
    objs = []
    for name, text in kernel.sources.items():
        src = work / name
        src.write_text(text)
        obj = src.with_suffix(".o")
        t0 = time.perf_counter()
        _compile([ARM64_CXX, *fl, "-c", str(src)], obj)
        COMPILE_SECONDS[kernel.entry] = time.perf_counter() - t0
        objs.append(obj)
    driver, pool = _arm64_common_objects()
    _compile(
        [
            ARM64_CXX, "-static", "-pthread", str(driver), *map(str, objs), str(pool),
            f"-Wl,--defsym=npas_harness_kernel={kernel.entry}",
        ],
        exe,
    )  # fmt: skip
    return exe


def run_arm64(
    kernel: LayerKernel,
    inputs: Sequence[np.ndarray],
    out_shapes: Sequence[tuple[int, ...]],
    threads: Sequence[int] = (1, 2),
    cpu: str | None = None,
) -> dict[int, list[np.ndarray]]:
    """Run `kernel` under qemu-aarch64 once per thread count (one emulator start for all);
    returns {threads: outputs}. Writes outside the output/scratch buffers or a crash fail."""
    exe = build_arm64(kernel)
    with tempfile.TemporaryDirectory(prefix="npas-arm64-") as tmp:
        d = Path(tmp)
        spec = [
            "threads " + " ".join(str(int(t)) for t in threads),
            f"scratch {int(kernel.scratch_bytes_per_thread)}",
        ]
        for kind, arrays in (("in", inputs), ("w", kernel.weights)):
            for i, a in enumerate(arrays):
                data = np.ascontiguousarray(a, np.float32).reshape(-1)
                data.tofile(d / f"{kind}_{i}.bin")
                spec.append(f"{kind} {data.size}")
        for shape in out_shapes:
            spec.append(f"out {int(np.prod(shape, dtype=np.int64))}")
        (d / "spec.txt").write_text("\n".join(spec) + "\n")
        cmd = [QEMU_AARCH64, *(["-cpu", cpu] if cpu else []), "-L", ARM64_SYSROOT, str(exe), tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise AssertionError(
                f"{kernel.kernel} under qemu-aarch64 exited with {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
            )
        return {
            t: [
                np.fromfile(d / f"out_{t}_{i}.bin", np.float32).reshape(shape)
                for i, shape in enumerate(out_shapes)
            ]
            for t in threads
        }


# ---- single-layer graphs ----


def one_layer_graph(
    op: Op,
    inputs: Sequence[tuple[str, np.ndarray | tuple[int, ...]]],
    outputs: Sequence[tuple[str, tuple[int, ...]]],
    attrs: Any = None,
    epilogue: Epilogue | None = None,
    name: str = "layer",
) -> tuple[Layer, Graph]:
    """A graph holding one layer. Inputs given as arrays are constants, as shapes activations."""
    values: dict[str, Value] = {}
    graph_inputs = []
    for n, spec in inputs:
        if isinstance(spec, np.ndarray):
            values[n] = Value(n, tuple(spec.shape), "float32", spec.astype(np.float32))
        else:
            values[n] = Value(n, tuple(spec))
            graph_inputs.append(n)
    for n, shape in outputs:
        values[n] = Value(n, tuple(shape))
    layer = Layer(
        op,
        name,
        tuple(n for n, _ in inputs),
        tuple(n for n, _ in outputs),
        attrs if attrs is not None else NoAttrs(),
        epilogue or Epilogue(),
    )
    graph = Graph("g", graph_inputs, [n for n, _ in outputs], [layer], values)
    return layer, graph


def epilogue_graph(
    op: Op,
    inputs: Sequence[tuple[str, np.ndarray | tuple[int, ...]]],
    feeds: Sequence[np.ndarray],
    ref: np.ndarray,
    attrs: Any = None,
    *,
    rng: np.random.Generator,
    residual: bool = False,
    act: str | None = None,
) -> tuple[Layer, Graph, list[np.ndarray], np.ndarray]:
    """One layer of `op` writing "y" with a fused epilogue, from its `inputs` (as
    one_layer_graph), `feeds` and the reference `ref` of the bare op: with `residual` a random
    activation "r" of the output's shape (drawn from `rng`) is added, then the ACTIVATIONS entry
    named `act` is applied. Returns (layer, graph, feeds, reference)."""
    inputs, feeds = list(inputs), list(feeds)
    if residual:
        r = rng.standard_normal(ref.shape).astype(np.float32)
        inputs.append(("r", ref.shape))
        feeds.append(r)
        ref = ref + r
    fused, fn = ACTIVATIONS[act] if act else (None, lambda v: v)
    layer, graph = one_layer_graph(op, inputs, [("y", ref.shape)], attrs, Epilogue(residual, fused))
    return layer, graph, feeds, fn(ref)


# ---- numpy references ----


def conv2d_ref(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> np.ndarray:
    """ONNX Conv in float64 numpy (im2col per group)."""
    N, C, H, W = x.shape
    F, Cg, KH, KW = w.shape
    pt, pl, pb, pr = pads
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt : pt + H, pl : pl + W] = x
    OH = (H + pt + pb - (KH - 1) * dilation[0] - 1) // stride[0] + 1
    OW = (W + pl + pr - (KW - 1) * dilation[1] - 1) // stride[1] + 1
    cols = np.empty((N, C, KH, KW, OH, OW))
    for ky in range(KH):
        for kx in range(KW):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            cols[:, :, ky, kx] = xp[
                :, :, y0 : y0 + stride[0] * (OH - 1) + 1 : stride[0],
                x0 : x0 + stride[1] * (OW - 1) + 1 : stride[1],
            ]  # fmt: skip
    Fg = F // groups
    out = np.empty((N, F, OH, OW))
    for g in range(groups):
        cg = cols[:, g * Cg : (g + 1) * Cg].reshape(N, Cg * KH * KW, OH * OW)
        wg = w[g * Fg : (g + 1) * Fg].reshape(Fg, -1).astype(np.float64)
        out[:, g * Fg : (g + 1) * Fg] = np.einsum("fk,nkp->nfp", wg, cg).reshape(N, Fg, OH, OW)
    if b is not None:
        out += b.reshape(1, F, 1, 1)
    return out
