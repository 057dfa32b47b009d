"""DeviceModel: a compiled model that runs on a device (qemu, ssh, adb) through npas_bench.

Every call goes through the artifact's static `npas_bench`, as an app on the device would go
through the C ABI: run() pushes the inputs as raw float32 files into a fresh scratch
directory, runs `npas_bench --inputs D --outputs D --repeat 1 --warmup 0 --json` and pulls the
outputs back. benchmark() times on the device (ssh, adb) or, under emulation (qemu), counts
executed instructions instead, because emulated time means nothing.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from npas.errors import ModelError, ToolchainError
from npas.runtime.compiled import (
    WEIGHTS,
    BenchmarkResult,
    InstructionCountResult,
    ModelBase,
    require_files,
)
from npas.runtime.devices.device import (
    Device,
    DeviceSpec,
    normalise_machine,
    open_device,
    target_machine,
)

BENCH = "npas_bench"
_ARCH_WORDS = {"aarch64": "arm64 (aarch64)", "x86_64": "x86-64"}


def _arch(machine: str) -> str:
    return _ARCH_WORDS.get(machine, machine)


def check_target_fits(root: Path, target: str, device: Device) -> None:
    """A build runs only on a device of its architecture; say which device would run it."""
    want = target_machine(target)
    if normalise_machine(device.machine) == want:
        return
    if want == "aarch64":
        advice = "run it with device='qemu' here, or on an arm64 board or phone (ssh:, adb)"
    else:
        advice = "run it with device='host', or compile for the device's architecture"
        if device.machine == "aarch64":
            advice += " (target='arm64', `npasc compile --target arm64`)"
    raise ToolchainError(
        f"{root} was compiled for target {target!r} ({_arch(want)} code), but device "
        f"{device.name!r} is {_arch(device.machine)}; {advice}"
    )


class DeviceModel(ModelBase):
    """A compiled model on a device: the same surface as CompiledModel (run, __call__,
    benchmark, profile, save, signature and metadata), executed by npas_bench there."""

    def __init__(
        self, path: Path, meta: dict[str, Any], device: Device | DeviceSpec, threads: int = 1
    ) -> None:
        if isinstance(device, DeviceSpec):
            self._spec: DeviceSpec | None = device
            self._dev: Device | None = None
            name = device.text
        else:
            self._spec, self._dev, name = None, device, device.name
        super().__init__(path, meta, name)
        self._threads = max(1, int(threads))
        self.last_report: dict[str, Any] | None = None  # npas_bench's JSON of the last run()
        self._remote_dir: str | None = None

    @property
    def dev(self) -> Device:
        """The device, contacted on first use when the model was opened with connect=False."""
        if self._dev is None:
            assert self._spec is not None
            device = open_device(self._spec)
            check_target_fits(self.path, str(self.metadata.get("target")), device)
            self._dev = device
        return self._dev

    @classmethod
    def open(
        cls,
        root: Path,
        meta: dict[str, Any],
        spec: DeviceSpec,
        threads: int = 1,
        connect: bool = True,
    ) -> DeviceModel:
        """connect=False defers contacting the device to the first run (a compile for a phone
        must not need the phone)."""
        require_files(root, (BENCH, WEIGHTS))
        if not connect:
            return cls(root, meta, spec, threads)
        device = open_device(spec)
        check_target_fits(root, str(meta.get("target")), device)
        return cls(root, meta, device, threads)

    # ---- threads ----
    @property
    def threads(self) -> int:
        return self._threads

    def set_threads(self, threads: int) -> None:
        """Worker threads for the following runs (the caller's thread included)."""
        self._threads = max(1, int(threads))

    # ---- running ----
    def _remote(self) -> str:
        """The device directory holding npas_bench and weights.bin (pushed on first use)."""
        if self._remote_dir is None:
            self._remote_dir = self.dev.install([self.path / BENCH, self.path / WEIGHTS])
        return self._remote_dir

    def _bench(self, args: list[str], threads: int) -> dict[str, Any]:
        remote = self._remote()
        argv = [f"{remote}/{BENCH}", f"{remote}/{WEIGHTS}", *args, "--threads", str(threads)]
        result = self.dev.run_program([*argv, "--json"])
        if result.rc != 0:
            raise ToolchainError(
                f"npas_bench failed on device {self.dev.name!r} (exit status {result.rc}) for "
                f"{self.path}:\n{(result.stderr.strip() or '(no output)')[-4000:]}"
            )
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("{")), None)
        try:
            report: dict[str, Any] = json.loads(line or "")
        except ValueError:
            raise ToolchainError(
                f"npas_bench on device {self.dev.name!r} printed no JSON report:\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            ) from None
        if len(report.get("layers", [])) != len(self.layers):
            raise ModelError(
                f"{self.path}: npas_bench reports {len(report.get('layers', []))} layers, "
                f"model.json {len(self.layers)}; the directory mixes files of two compiles, "
                "recompile it"
            )
        return report

    @staticmethod
    def _write_inputs(arrays: list[np.ndarray], where: Path) -> list[Path]:
        files = []
        for i, arr in enumerate(arrays):
            f = where / f"input_{i}.bin"
            f.write_bytes(arr.astype("<f4", copy=False).tobytes())
            files.append(f)
        return files

    def _read_output(self, i: int, f: Path) -> np.ndarray:
        spec = self.outputs[i]
        data = np.fromfile(f, dtype="<f4")
        if data.size != int(np.prod(spec.shape, dtype=np.int64)):
            raise ToolchainError(
                f"device {self.dev.name!r} returned {data.size} values for output "
                f"{spec.name!r}, expected shape {spec.shape}"
            )
        return data.astype(np.float32, copy=False).reshape(spec.shape)

    def _run_with_files(
        self, arrays: list[np.ndarray], args: list[str], threads: int, pull: bool
    ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        with tempfile.TemporaryDirectory(prefix="npas-io-") as tmp:
            local = Path(tmp)
            inputs = self._write_inputs(arrays, local)
            self._remote()  # installed first: a failed install leaves no scratch directory
            with self.dev.scratch() as scratch:
                self.dev.transport.push(inputs, scratch)
                extra = ["--outputs", scratch] if pull else []
                report = self._bench(["--inputs", scratch, *extra, *args], threads)
                outputs = {}
                for i, spec in enumerate(self.outputs if pull else []):
                    f = local / f"output_{i}.bin"
                    self.dev.transport.pull(f"{scratch}/output_{i}.bin", f)
                    outputs[spec.name] = self._read_output(i, f)
        return report, outputs

    def run(self, feeds: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
        """One inference on the device: {input name: float32 array} (or the array of a
        one-input model) -> {output name: array}."""
        arrays = self._arrays(feeds)
        report, outputs = self._run_with_files(
            arrays, ["--repeat", "1", "--warmup", "0"], self._threads, pull=True
        )
        self.last_report = report
        return outputs

    def benchmark(
        self,
        repeat: int = 50,
        warmup: int = 5,
        threads: int | None = None,
        feeds: dict[str, np.ndarray] | None = None,
    ) -> BenchmarkResult | InstructionCountResult:
        """On a real device: time `repeat` runs after `warmup` there (npas_bench's random
        inputs unless `feeds`) -> BenchmarkResult. Under emulation (qemu): the executed
        instructions of one single-threaded inference (random inputs unless `feeds`; counts
        are exact, so repeat, warmup and threads do not apply) -> InstructionCountResult."""
        if not self.dev.timed:
            return self._count(feeds)
        used = max(1, int(threads)) if threads is not None else self._threads
        args = ["--repeat", str(max(1, int(repeat))), "--warmup", str(max(0, int(warmup)))]
        if feeds is None:
            report = self._bench(args, used)
        else:
            report, _ = self._run_with_files(self._arrays(feeds), args, used, pull=False)
        per_layer = []
        for info, row in zip(self.layers, report["layers"], strict=True):
            out = {k: info[k] for k in ("name", "op", "kernel", "scheme", "macs")}
            out["median_ms"] = float(row["median_ms"])
            per_layer.append(out)
        return BenchmarkResult(
            median_ms=float(report["median_ms"]),
            p10_ms=float(report["p10_ms"]),
            p90_ms=float(report["p90_ms"]),
            runs=[float(r) for r in report["runs"]],
            per_layer=per_layer,
            threads=int(report.get("threads", used)),
        )

    def _count(self, feeds: dict[str, np.ndarray] | None) -> InstructionCountResult:
        arrays = self._arrays(feeds if feeds is not None else self.random_inputs())
        from npas.runtime.devices.insn_count import count_instructions

        inputs = dict(zip(self.input_names, arrays, strict=True))
        counted = count_instructions(self.path, inputs, cpu=self.dev.cpu)
        if len(counted.per_layer) != len(self.layers):
            raise ToolchainError(
                f"the instruction counter reported {len(counted.per_layer)} layers for "
                f"{self.path}, which has {len(self.layers)}"
            )
        per_layer = []
        for info, n in zip(self.layers, counted.per_layer, strict=True):
            row = {k: info[k] for k in ("name", "op", "kernel", "scheme", "macs")}
            row["instructions_per_inference"] = int(n)
            row["instructions_per_mac"] = n / info["macs"] if info["macs"] else None
            per_layer.append(row)
        return InstructionCountResult(
            instructions_per_inference=int(counted.per_inference),
            instructions_per_mac=counted.per_inference / self.macs if self.macs else None,
            per_layer=per_layer,
            deterministic=bool(counted.deterministic),
            note=str(counted.note),
            cpu=self.dev.cpu,
        )


__all__ = ["DeviceModel", "check_target_fits"]
