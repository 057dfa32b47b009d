"""Executed aarch64 instructions of a compiled arm64 model, per inference and per layer.

Emulated time means nothing, so code for arm64 is judged here by what it executes: the model's
static `npas_bench` runs under qemu-aarch64 with npas' own TCG plugin
(runtime/qemu_plugin/npas_insn_count.c), which counts every executed guest instruction and
attributes it to the inference and layer the executor's marker no-ops delimit. The counts are
exact and deterministic: two runs on the same inputs give the same numbers, and this module
says so when they do not instead of averaging the difference away.

The plugin is built with the host C compiler on first use and cached under NPAS_CACHE_DIR by
the hash of its sources and the compiler.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from npas.errors import ModelError, NpasError, ShapeError, ToolchainError
from npas.runtime.devices.qemu import qemu_command

PLUGIN_SOURCES = ("npas_insn_count.c", "qemu_plugin_api.h")
CFLAGS = ("-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-Wall")
CC_INSTALL_HINT = "install a C compiler with `apt-get install gcc` (or run scripts/setup.sh)"
BENCH, WEIGHTS, METADATA = "npas_bench", "weights.bin", "model.json"
EM_AARCH64 = 183  # ELF e_machine


@dataclass
class LayerCount:
    name: str
    op: str
    kernel: str
    macs: int
    instructions: int
    instructions_per_mac: float | None  # None for layers without MACs (views, pooling, ...)


@dataclass
class InstructionCount:
    """Executed aarch64 instructions of one inference (warm-up runs excluded).

    per_inference: the whole inference (executor prologue + every layer); per_layer: aligned
    with model.json's layers, views included; runs: per_inference of every measured run.
    deterministic: every measured run gave the same total and per-layer counts; when False,
    per_inference / per_layer are the lower medians and `note` says how far the runs differ.
    outputs: the model's outputs of the last run, for checking the counted code is right.
    """

    per_inference: int
    per_layer: list[int]
    runs: list[int]
    deterministic: bool
    macs: int
    instructions_per_mac: float | None
    prologue: int  # executor work between the start of a run and its first layer
    layers: list[LayerCount] = field(default_factory=list)
    outputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("outputs")
        return d


# --------------------------------------------------------------------------------------------
# The plugin
# --------------------------------------------------------------------------------------------


def plugin_source_dir() -> Path:
    from npas.codegen.build import runtime_root

    src = runtime_root() / "qemu_plugin"
    if not all((src / f).is_file() for f in PLUGIN_SOURCES):
        raise ToolchainError(
            f"npas cannot find the instruction-counting plugin's sources in {src}; reinstall npas"
        )
    return src


def _c_compiler() -> str:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        found = shutil.which(name) if name else None
        if found:
            return found
    raise ToolchainError(
        "counting arm64 instructions needs a C compiler for the host (cc) to build npas' QEMU "
        f"plugin, and none is on PATH; {CC_INSTALL_HINT}"
    )


def _compiler_id(cc: str) -> str:
    real = os.path.realpath(cc)
    return _compiler_version(real, os.stat(real).st_mtime_ns)


@functools.cache
def _compiler_version(cc: str, mtime_ns: int) -> str:
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"the C compiler {cc} does not run: {e}; {CC_INSTALL_HINT}") from e
    return cc + "\n" + (out.stdout.splitlines() or ["?"])[0]


def plugin_path() -> Path:
    """The built plugin (.so), compiled on first use. Concurrent callers each build to a
    private temp file and rename it into place, so none sees half a library."""
    from npas.codegen.build import cache_root

    src = plugin_source_dir()
    cc = _c_compiler()
    h = hashlib.sha256()
    for name in PLUGIN_SOURCES:
        h.update(name.encode() + b"\0" + (src / name).read_bytes() + b"\0")
    h.update(_compiler_id(cc).encode() + b"\0" + " ".join(CFLAGS).encode())
    dest = cache_root() / "qemu_plugin" / f"npas_insn_count-{h.hexdigest()[:24]}.so"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:12]}")
    cmd = [cc, *CFLAGS, "-o", str(tmp), str(src / "npas_insn_count.c")]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise ToolchainError(
                f"building the instruction-counting plugin failed ({' '.join(cmd)}):\n"
                f"{(r.stderr or r.stdout).strip()[-4000:]}"
            )
        os.replace(tmp, dest)
    except OSError as e:
        raise ToolchainError(f"cannot build the instruction-counting plugin: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _plugin_arg(value: str) -> str:
    # QEMU's option parser splits -plugin at commas; a doubled comma is a literal one.
    return value.replace(",", ",,")


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def _elf_machine(path: Path) -> int | None:
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[5] != 1:  # little-endian only
        return None
    return int.from_bytes(head[18:20], "little")


def _load_artifact(root: Path) -> dict[str, Any]:
    try:
        meta: dict[str, Any] = json.loads((root / METADATA).read_text())
    except FileNotFoundError:
        raise ModelError(
            f"{root}: not a compiled npas directory (no {METADATA}); compile a model first"
        ) from None
    except ValueError as e:
        raise ModelError(f"{root / METADATA}: unreadable ({e}); recompile the model") from e
    for name in (BENCH, WEIGHTS):
        if not (root / name).is_file():
            raise ModelError(f"{root}: {name} is missing; recompile the model")
    if _elf_machine(root / BENCH) != EM_AARCH64:
        raise ToolchainError(
            f"{root / BENCH} is not an aarch64 Linux executable (the directory was compiled "
            f"for target {meta.get('target')!r}); instructions are counted for target arm64: "
            "compile with target='arm64'"
        )
    return meta


def _write_inputs(meta: dict[str, Any], inputs: Mapping[str, Any], where: Path) -> None:
    specs = meta["inputs"]
    names = [s["name"] for s in specs]
    unknown = [k for k in inputs if k not in names]
    missing = [n for n in names if n not in inputs]
    if unknown or missing:
        takes = ", ".join(f"{s['name']!r} {tuple(s['shape'])}" for s in specs)
        raise ShapeError(
            f"inputs do not match the model: unknown {unknown}, missing {missing}; the model "
            f"takes {takes}"
        )
    for i, spec in enumerate(specs):
        arr = np.asarray(inputs[spec["name"]])
        if arr.dtype != np.float32 or tuple(arr.shape) != tuple(spec["shape"]):
            raise ShapeError(
                f"input {spec['name']!r}: expected float32 {tuple(spec['shape'])}, got "
                f"{arr.dtype} {tuple(arr.shape)}"
            )
        # npas_bench reads raw little-endian float32.
        np.ascontiguousarray(arr, dtype="<f4").tofile(where / f"input_{i}.bin")


def _read_outputs(meta: dict[str, Any], where: Path) -> dict[str, np.ndarray]:
    out = {}
    for i, spec in enumerate(meta["outputs"]):
        data = np.fromfile(where / f"output_{i}.bin", dtype="<f4")
        out[spec["name"]] = data.astype(np.float32).reshape(spec["shape"])
    return out


@dataclass
class CountedRun:
    """What the plugin reported for one process: one dict per completed inference
    ({"inference", "total", "prologue", "layers"}) and its summary line ({"mode", "vcpus",
    "executed", "inferences", "incomplete", "stray_markers"})."""

    inferences: list[dict[str, Any]]
    summary: dict[str, Any]
    stdout: str
    stderr: str


def _parse(report: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    try:
        lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise ToolchainError(
            f"the instruction-counting plugin left no readable report: {e}"
        ) from None
    summary = next((x for x in lines if x.get("summary")), None)
    if summary is None:
        raise ToolchainError(f"{report}: the plugin's report has no summary line")
    return [x for x in lines if "inference" in x], summary


def run_counted(
    argv: list[str],
    *,
    per_instruction: bool = False,
    cpu: str | None = None,
    timeout: float | None = None,
) -> CountedRun:
    """Run the aarch64 Linux program `argv` under qemu-aarch64 with the counting plugin.

    per_instruction: count with one inline add per instruction instead of per block: slower,
    and an independent check of the per-block arithmetic (both must agree exactly)."""
    plugin = plugin_path()
    with tempfile.TemporaryDirectory(prefix="npas-insn-") as tmp:
        report = Path(tmp) / "counts.jsonl"
        args = [str(plugin), f"out={report}", f"mode={'insn' if per_instruction else 'tb'}"]
        cmd = qemu_command(cpu, plugin=[_plugin_arg(a) for a in args]) + list(argv)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ToolchainError(
                f"{argv[0]} under qemu-aarch64 did not finish in {timeout:.0f} s"
            ) from None
        if r.returncode != 0:
            raise ToolchainError(
                f"{argv[0]} failed under qemu-aarch64 (exit status {r.returncode}):\n"
                f"{(r.stderr or r.stdout).strip()[-4000:]}"
            )
        inferences, summary = _parse(report)
    return CountedRun(inferences, summary, r.stdout, r.stderr)


def _lower_median(values: list[int]) -> int:
    return sorted(values)[(len(values) - 1) // 2]


def count_instructions(
    artifact_dir: str | os.PathLike[str],
    inputs: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    warmup: int = 1,
    repeat: int = 2,
    cpu: str | None = None,
    per_instruction: bool = False,
    timeout: float | None = None,
) -> InstructionCount:
    """Run an arm64-compiled model under qemu-aarch64 and count executed instructions.

    inputs: a dict name -> float32 array, a directory holding npas_bench's input_<i>.bin, or
    None for npas_bench's own reproducible random inputs. `warmup` runs are executed and
    dropped; the `repeat` measured runs must agree exactly. One thread: counts of a
    multi-threaded run would depend on the interleaving. cpu: a qemu -cpu model.
    """
    root = Path(artifact_dir).resolve()
    meta = _load_artifact(root)
    if repeat < 1 or warmup < 0:
        raise NpasError(
            f"count_instructions: repeat must be >= 1, warmup >= 0 ({repeat=}, {warmup=})"
        )
    with tempfile.TemporaryDirectory(prefix="npas-insn-io-") as tmp_name:
        tmp = Path(tmp_name)
        out_dir = tmp / "outputs"
        out_dir.mkdir()
        argv = [str(root / BENCH), str(root / WEIGHTS), "--markers", "--threads", "1"]
        argv += ["--warmup", str(warmup), "--repeat", str(repeat), "--outputs", str(out_dir)]
        if isinstance(inputs, Mapping):
            in_dir = tmp / "inputs"
            in_dir.mkdir()
            _write_inputs(meta, inputs, in_dir)
            argv += ["--inputs", str(in_dir)]
        elif inputs is not None:
            if not Path(inputs).is_dir():
                raise ShapeError(f"inputs: {inputs} is not a directory of input_<i>.bin files")
            argv += ["--inputs", str(Path(inputs).resolve())]
        run = run_counted(argv, per_instruction=per_instruction, cpu=cpu, timeout=timeout)
        outputs = _read_outputs(meta, out_dir)
    return _result(meta, run.inferences, run.summary, warmup, repeat, outputs)


def _result(
    meta: dict[str, Any],
    inferences: list[dict[str, Any]],
    summary: dict[str, Any],
    warmup: int,
    repeat: int,
    outputs: dict[str, np.ndarray],
) -> InstructionCount:
    problems = []
    if summary.get("incomplete") or summary.get("stray_markers"):
        problems.append(
            f"{summary.get('incomplete')} incomplete inference(s) and "
            f"{summary.get('stray_markers')} marker(s) outside an inference"
        )
    if len(inferences) != warmup + repeat:
        problems.append(f"{len(inferences)} inferences seen, {warmup + repeat} run")
    if problems:
        raise ToolchainError(
            "the instruction-counting plugin saw runs the executable did not make ("
            + "; ".join(problems)
            + "): npas_bench and the executor's markers disagree; recompile the model with this "
            "npas"
        )
    measured = inferences[warmup:]
    layers = meta["layers"]
    for inf in measured:
        if len(inf["layers"]) != len(layers):
            raise ModelError(
                f"the executable ran {len(inf['layers'])} layers but model.json lists "
                f"{len(layers)}: the directory mixes files of two compiles; recompile it"
            )
    runs = [int(inf["total"]) for inf in measured]
    per_layer_runs = [[int(inf["layers"][k]) for inf in measured] for k in range(len(layers))]
    prologues = [int(inf["prologue"]) for inf in measured]
    notes = []
    deterministic = all(inf["layers"] == measured[0]["layers"] for inf in measured) and all(
        p == prologues[0] for p in prologues
    )
    if not deterministic:
        spread = [k for k, v in enumerate(per_layer_runs) if len(set(v)) > 1]
        notes.append(
            f"the {repeat} measured runs differ (totals {runs}; layers {spread[:10]} vary); "
            "reporting lower medians"
        )
    if int(summary.get("vcpus", 1)) > 1:
        deterministic = False
        notes.append(
            f"the guest ran {summary['vcpus']} threads: counts of concurrent threads are not exact"
        )
    per_inference = _lower_median(runs)
    per_layer = [_lower_median(v) for v in per_layer_runs]
    macs = int(meta.get("macs", 0))
    rows = []
    for info, n in zip(layers, per_layer, strict=True):
        layer_macs = int(info.get("macs", 0))
        rows.append(
            LayerCount(
                name=info["name"],
                op=info["op"],
                kernel=info["kernel"],
                macs=layer_macs,
                instructions=n,
                instructions_per_mac=n / layer_macs if layer_macs else None,
            )
        )
    return InstructionCount(
        per_inference=per_inference,
        per_layer=per_layer,
        runs=runs,
        deterministic=deterministic,
        macs=macs,
        instructions_per_mac=per_inference / macs if macs else None,
        prologue=_lower_median(prologues),
        layers=rows,
        outputs=outputs,
        note="; ".join(notes),
    )


__all__ = [
    "CountedRun",
    "InstructionCount",
    "LayerCount",
    "count_instructions",
    "plugin_path",
    "run_counted",
]
