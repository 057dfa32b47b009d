"""Loaded models and load(). `ModelBase` is what every loaded model shares wherever it runs
(the artifact's signature and metadata, input checking, save); `CompiledModel` runs in this
process through the native module; npas.runtime.devices.model.DeviceModel runs on a device.

Input policy: every input must be a float32 array of exactly the compiled shape. Nothing is
cast implicitly (a float64 array is an error that says how to convert it), because a silent
cast hides a copy on every call and hides a wrong dtype upstream. Non-contiguous float32 arrays
are copied to contiguous memory, which changes no value.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from npas.errors import ModelError, ShapeError, ToolchainError

FORMAT_VERSION = 1
LIBRARY, WEIGHTS, METADATA = "libnpas_model.so", "weights.bin", "model.json"


class TensorSpec(NamedTuple):
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass
class BenchmarkResult:
    """Timings of `repeat` runs measured in C++ (steady_clock around each run)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: list[float]
    per_layer: list[dict[str, Any]]  # name, op, kernel, scheme, macs, median_ms
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class InstructionCountResult:
    """What an emulated device reports instead of time: executed instructions of one inference,
    whole and per layer (each row: name, op, kernel, scheme, macs, instructions_per_inference,
    instructions_per_mac; the last is None for layers without MACs)."""

    instructions_per_inference: int
    instructions_per_mac: float | None
    per_layer: list[dict[str, Any]]
    threads: int = 1  # counts are taken on one thread: interleaved threads are not exact
    deterministic: bool = True  # the counted runs agreed exactly
    note: str = ""  # why not, when they did not
    cpu: str | None = None  # the emulated CPU model, None for the emulator's default

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _native():
    try:
        from npas import _runtime
    except ImportError as e:
        raise ToolchainError(
            "the npas native runtime (npas._runtime) is not built: run "
            "`pip install --no-build-isolation -e .` in the npas checkout, or scripts/setup.sh "
            f"({e})"
        ) from e
    return _runtime


def _dlopen_path(lib: Path) -> Path:
    """A path for dlopen that is unique to the library's content. The dynamic loader returns an
    already loaded library when asked for the same path again, even if the file was replaced
    since (a recompile into the same directory): naming by content makes a changed library a
    new path and an unchanged one the same."""
    from npas.codegen.build import cache_root

    digest = hashlib.sha256(lib.read_bytes()).hexdigest()[:24]
    dest = cache_root() / "loaded" / f"libnpas_model-{digest}.so"
    if dest.is_file():
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A copy, not a hard link: rewriting the artifact's file in place (cp over it) must not
        # change the pages of a library that is mapped in this process.
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copy2(lib, tmp)
        os.replace(tmp, dest)
        return dest
    except OSError:
        return lib  # read-only cache: loading by the real path is still right in most cases


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


class ModelBase:
    """A loaded model, wherever it runs: signature, metadata, input checking, `save`.
    Subclasses provide `run`, `benchmark`, `threads` and `set_threads`."""

    def __init__(self, path: Path, meta: dict[str, Any], device: str) -> None:
        self.path = path
        self.metadata = meta
        self.device = device
        self.target: str = meta["target"]
        self.isa: str = meta["isa"]
        self.inputs = [TensorSpec(t["name"], tuple(t["shape"])) for t in meta["inputs"]]
        self.outputs = [TensorSpec(t["name"], tuple(t["shape"])) for t in meta["outputs"]]
        self.layers: list[dict[str, Any]] = meta["layers"]
        self.macs: int = int(meta["macs"])
        self.peak_activation_bytes: int = int(meta.get("peak_activation_bytes", 0))
        self.source_model: str | None = meta.get("source_model")
        self.compile_info: Any = None  # npas.codegen.build.BuildInfo when made by npas.compile

    # ---- signature ----
    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [t.shape for t in self.outputs]

    @property
    def threads(self) -> int:
        raise NotImplementedError

    def set_threads(self, threads: int) -> None:
        raise NotImplementedError

    # ---- running ----
    def _arrays(self, feeds: Any) -> list[np.ndarray]:
        if not isinstance(feeds, dict):
            if len(self.inputs) != 1:
                raise ShapeError(
                    f"the model has {len(self.inputs)} inputs ({', '.join(self.input_names)}): "
                    "pass a dict name -> array"
                )
            feeds = {self.inputs[0].name: feeds}
        unknown = [k for k in feeds if k not in self.input_names]
        missing = [n for n in self.input_names if n not in feeds]
        if unknown or missing:
            expected = ", ".join(f"{t.name!r} {_shape_str(t.shape)}" for t in self.inputs)
            raise ShapeError(
                f"inputs do not match the model: unknown {unknown}, missing {missing}; "
                f"the model takes {expected}"
            )
        arrays = []
        for spec in self.inputs:
            x = feeds[spec.name]
            arr = x if isinstance(x, np.ndarray) else np.asarray(x)
            if arr.dtype != np.float32:
                raise ShapeError(
                    f"input {spec.name!r}: expected float32 {_shape_str(spec.shape)}, got "
                    f"{arr.dtype} {_shape_str(arr.shape)}; npas does not cast implicitly, pass "
                    "x.astype(np.float32)"
                )
            if tuple(arr.shape) != spec.shape:
                raise ShapeError(
                    f"input {spec.name!r}: expected shape {_shape_str(spec.shape)} float32, got "
                    f"{_shape_str(tuple(arr.shape))} float32; the model was compiled for that "
                    "shape (recompile with input_shapes= for another)"
                )
            arrays.append(np.ascontiguousarray(arr))
        return arrays

    def run(self, feeds: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """One inference: {input name: float32 array} (or the array of a one-input model) ->
        {output name: array}."""
        raise NotImplementedError

    def benchmark(
        self,
        repeat: int = 50,
        warmup: int = 5,
        threads: int | None = None,
        feeds: dict[str, np.ndarray] | None = None,
    ) -> Any:
        raise NotImplementedError

    def __call__(self, *arrays: np.ndarray, **named: np.ndarray) -> Any:
        """Positional inputs in model order (or by name); one output -> that array, several ->
        a tuple in model order."""
        if len(arrays) > len(self.inputs):
            raise ShapeError(f"the model takes {len(self.inputs)} inputs, got {len(arrays)}")
        feeds = dict(zip(self.input_names, arrays, strict=False))
        feeds.update(named)
        result = self.run(feeds)
        values = tuple(result[n] for n in self.output_names)
        return values[0] if len(values) == 1 else values

    def random_inputs(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {t.name: rng.standard_normal(t.shape, dtype=np.float32) for t in self.inputs}

    def profile(
        self, feeds: dict[str, np.ndarray] | None = None, repeat: int = 10
    ) -> list[dict[str, Any]]:
        """Per-layer rows over `repeat` runs: every layer, views included (median times, or
        instruction counts on an emulated device)."""
        return list(self.benchmark(repeat=repeat, warmup=1, feeds=feeds).per_layer)

    # ---- files ----
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Copy the artifact directory to `path` (atomically: a temp sibling, then rename)."""
        from npas.codegen.build import copy_artifact

        dest = Path(path).resolve()
        if dest == self.path.resolve():
            return dest
        return copy_artifact(self.path, dest)

    def __repr__(self) -> str:
        sig = ", ".join(f"{t.name}{_shape_str(t.shape)}" for t in self.inputs)
        where = "" if self.device == "host" else f" device={self.device}"
        return (
            f"<{type(self).__name__} {self.path} target={self.target} isa={self.isa}{where} "
            f"inputs=[{sig}] layers={len(self.layers)} threads={self.threads}>"
        )


class CompiledModel(ModelBase):
    """A compiled model loaded into this process: `run`, `benchmark`, `profile`, `save`."""

    def __init__(self, path: Path, meta: dict[str, Any], native: Any, device: str) -> None:
        super().__init__(path, meta, device)
        self._native = native
        self.peak_activation_bytes = int(native.peak_activation_bytes)
        self._check_signature()

    @property
    def device_info(self) -> dict[str, str]:
        """Where the layers run: {"backend": "cpu", "isa": ...}, or for OpenCL builds
        {"backend": "opencl", "platform", "device", "storage" (fp32|fp16), "program"
        (built|cached: whether this load compiled the kernels or took the binary cache),
        "build_ms", "cache" (the binary's file)}."""
        text = str(self._native.device_info)
        backend, _, rest = text.partition(": ")
        if backend != "opencl":
            return {"backend": backend, "isa": rest}
        info = {"backend": backend}
        for item in rest.split("; "):
            key, _, value = item.partition("=")
            info[key] = value
        return info

    def _check_signature(self) -> None:
        native = (
            [(n, tuple(s)) for n, s in self._native.inputs],
            [(n, tuple(s)) for n, s in self._native.outputs],
        )
        meta = [(t.name, t.shape) for t in self.inputs], [(t.name, t.shape) for t in self.outputs]
        if native != meta:
            raise ModelError(
                f"{self.path}: {METADATA} does not describe {LIBRARY} (signature differs); the "
                "directory mixes files of two compiles, recompile it"
            )

    @property
    def threads(self) -> int:
        return int(self._native.threads)

    def set_threads(self, threads: int) -> None:
        """Worker threads for the following runs (the caller's thread included)."""
        self._native.set_threads(max(1, int(threads)))

    def run(self, feeds: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """One inference: {input name: float32 array} (or the array of a one-input model) ->
        {output name: array}."""
        outs = self._native.run(self._arrays(feeds))
        return dict(zip(self.output_names, outs, strict=True))

    def benchmark(
        self,
        repeat: int = 50,
        warmup: int = 5,
        threads: int | None = None,
        feeds: dict[str, np.ndarray] | None = None,
    ) -> BenchmarkResult:
        """Time `repeat` runs after `warmup` (random inputs unless `feeds`), with per-layer times.
        `threads` applies to this benchmark only."""
        arrays = self._arrays(feeds if feeds is not None else self.random_inputs())
        old_threads = self.threads
        if threads is not None:
            self.set_threads(threads)
        self._native.set_profiling(True)
        try:
            runs, per_layer = self._native.benchmark(arrays, int(repeat), int(warmup))
            used = self.threads
        finally:
            self._native.set_profiling(False)
            if threads is not None:
                self.set_threads(old_threads)
        runs_arr = np.asarray(runs, dtype=np.float64)
        layers = []
        for info, times in zip(self.layers, per_layer, strict=True):
            row = {k: info[k] for k in ("name", "op", "kernel", "scheme", "macs")}
            row["median_ms"] = float(np.median(times))
            layers.append(row)
        return BenchmarkResult(
            median_ms=float(np.median(runs_arr)),
            p10_ms=float(np.percentile(runs_arr, 10)),
            p90_ms=float(np.percentile(runs_arr, 90)),
            runs=[float(r) for r in runs],
            per_layer=layers,
            threads=used,
        )

    def profile(
        self, feeds: dict[str, np.ndarray] | None = None, repeat: int = 10
    ) -> list[dict[str, Any]]:
        """Per-layer median times (ms) over `repeat` runs: every layer, views included."""
        return self.benchmark(repeat=repeat, warmup=1, feeds=feeds).per_layer


def default_device(target: str) -> str:
    """The device that runs a build of `target` on this machine."""
    return {"arm64": "qemu", "arm64-android": "adb", "opencl-android": "adb"}.get(target, "host")


def read_artifact(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """(resolved directory, model.json) of a compiled output directory, format-checked."""
    root = Path(path).resolve()
    try:
        meta = json.loads((root / METADATA).read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{root}: not a compiled npas directory (no {METADATA}); compile a model first"
        ) from None
    except ValueError as e:
        raise ModelError(f"{root / METADATA}: unreadable ({e}); recompile the model") from e
    if meta.get("format") != FORMAT_VERSION:
        raise ModelError(
            f"{root}: artifact format {meta.get('format')!r}, this npas reads {FORMAT_VERSION}; "
            "recompile the model with this npas"
        )
    return root, meta


def require_files(root: Path, names: tuple[str, ...]) -> None:
    for name in names:
        if not (root / name).is_file():
            raise ModelError(f"{root}: {name} is missing; recompile the model")


def load(
    path: str | os.PathLike[str],
    device: str | None = None,
    threads: int = 1,
    *,
    connect: bool = True,
) -> ModelBase:
    """Load a compiled output directory (from npas.compile or `npasc compile`) to run on
    `device`: "host" (this process), "qemu[:CPU]", "ssh:[USER@]HOST[:PORT]" or "adb[:SERIAL]".
    None picks the device that runs the build: host for host builds, qemu for arm64, adb for
    arm64-android and opencl-android, host for opencl (the kernels run on this machine's OpenCL
    device, NPAS_OPENCL_DEVICE picks one). connect=False contacts a remote device only at the
    first run."""
    from npas.runtime.devices.device import parse_device

    spec = parse_device(device) if device is not None else None  # syntax errors first
    root, meta = read_artifact(path)
    if spec is None:
        spec = parse_device(default_device(str(meta.get("target"))))
    if spec.kind != "host":
        from npas.runtime.devices.model import DeviceModel

        return DeviceModel.open(root, meta, spec, threads=threads, connect=connect)
    if meta.get("target") not in ("host", "opencl"):
        raise ToolchainError(
            f"{root} was compiled for target {meta.get('target')!r}, which cannot run on the "
            f"host device (in this process); run it with device="
            f"{default_device(str(meta.get('target')))!r} or on a device of its architecture "
            "(ssh:HOST, adb)"
        )
    require_files(root, (LIBRARY, WEIGHTS))
    runtime = _native()
    try:
        native = runtime.create(
            str(_dlopen_path(root / LIBRARY)), str(root / WEIGHTS), max(1, int(threads)), False
        )
    except runtime.NativeError as e:
        raise ModelError(f"cannot load the compiled model in {root}: {e}") from None
    return CompiledModel(root, meta, native, "host")


__all__ = [
    "BenchmarkResult",
    "CompiledModel",
    "InstructionCountResult",
    "ModelBase",
    "TensorSpec",
    "load",
]
