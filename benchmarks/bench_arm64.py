"""arm64 code quality without a phone: executed aarch64 instructions per inference of zoo models.

    .venv/bin/python benchmarks/bench_arm64.py [--models resnet18,vgg16] [--per-layer] [--results]

Each model (224x224) is compiled for target arm64 and run once, on one thread, under
qemu-aarch64 with npas' instruction-counting plugin (npas.runtime.devices.insn_count). Emulated
time means nothing, so the table reports instructions per inference and per MAC (direct
convolution MACs, as model.json counts them) against a target per model. The outputs of the
counted run are compared with ONNX Runtime, so a wrong fast kernel cannot look good.
`--per-layer` lists each model's layers with the most instructions; `--results` writes the table
into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

import npas
from npas import zoo
from npas.runtime.devices.insn_count import InstructionCount, count_instructions

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import publish

# Instructions per MAC each model should reach on arm64 (one thread).
TARGETS = {
    "resnet18": 0.14,
    "resnet50": 0.20,
    "mobilenet_v2": 0.34,
    "mobilenet_v3_large": 0.36,
    "vgg16": 0.09,
}
SECTION = "bench_arm64"
RTOL, ATOL = 1e-3, 1e-4  # the correctness contract (DESIGN.md)


def reference(onnx_path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


def check(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> tuple[bool, float]:
    """(all outputs within rtol/atol of ONNX Runtime, largest absolute difference)."""
    ok, worst = True, 0.0
    for name, ref in want.items():
        out = got[name]
        worst = max(worst, float(np.max(np.abs(out - ref))))
        ok = ok and bool(np.allclose(out, ref, rtol=RTOL, atol=ATOL))
    return ok, worst


def kernel_isas(r: InstructionCount) -> str:
    """How many compute layers run NEON and scalar kernels (views excluded), e.g. 'neon 52'."""
    isas = Counter(row.kernel.rsplit("__", 1)[-1] for row in r.layers if "__" in row.kernel)
    return ", ".join(f"{isa} {n}" for isa, n in sorted(isas.items()))


def per_layer_table(name: str, r: InstructionCount, top: int) -> str:
    rows = sorted(r.layers, key=lambda row: row.instructions, reverse=True)[:top]
    lines = [
        f"{name}: top {len(rows)} of {len(r.layers)} layers by instructions",
        "| layer | op | kernel | MMACs | M instructions | share | instr/MAC |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        ipm = f"{row.instructions_per_mac:.3f}" if row.instructions_per_mac is not None else "-"
        lines.append(
            f"| {row.name} | {row.op} | {row.kernel} | {row.macs / 1e6:.1f} | "
            f"{row.instructions / 1e6:.2f} | {100 * row.instructions / r.per_inference:.1f}% "
            f"| {ipm} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(TARGETS))
    ap.add_argument("--per-layer", action="store_true", help="list the top layers per model")
    ap.add_argument("--top", type=int, default=10, help="layers listed with --per-layer")
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()

    rows = []
    details = []
    for name in args.models.split(","):
        onnx_path = zoo.get(name)
        t0 = time.perf_counter()
        cm = npas.compile(str(onnx_path), target="arm64")
        compile_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)
        feeds = {t.name: rng.standard_normal(t.shape, dtype=np.float32) for t in cm.inputs}
        t0 = time.perf_counter()
        r = count_instructions(cm.path, feeds, warmup=0, repeat=1)
        qemu_s = time.perf_counter() - t0
        ok, worst = check(r.outputs, reference(onnx_path, feeds))
        ipm = r.instructions_per_mac or float("nan")
        target = TARGETS.get(name)
        rows.append((name, r, ipm, target, ok, worst, qemu_s))
        print(
            f"{name:<20} {r.macs / 1e9:6.2f} GMACs  {r.per_inference / 1e9:7.3f} G instructions  "
            f"{ipm:.3f} instr/MAC (target {target})  matches ORT: {ok} (max |diff| {worst:.1e})"
            f"  kernels: {kernel_isas(r)}  compile {compile_s:.0f} s, qemu {qemu_s:.0f} s",
            flush=True,
        )
        if r.note:
            print(f"  note: {r.note}", flush=True)
        if args.per_layer:
            details.append(per_layer_table(name, r, args.top))
            print(details[-1], flush=True)

    table = [
        "| model | GMACs | G instructions | instr/MAC | target | meets target | matches ORT "
        "| kernels (layers) | qemu s |",
        "|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for name, r, ipm, target, ok, worst, qemu_s in rows:
        meets = "-" if target is None else ("yes" if ipm <= target else "no")
        table.append(
            f"| {name} | {r.macs / 1e9:.2f} | {r.per_inference / 1e9:.3f} | {ipm:.3f} | "
            f"{'-' if target is None else f'<= {target}'} | {meets} | "
            f"{'yes' if ok else f'NO ({worst:.1e})'} | {kernel_isas(r)} | {qemu_s:.0f} |"
        )
    publish(
        SECTION,
        __file__,
        "\n".join(table),
        details,
        write=args.results,
        note="executed aarch64 instructions counted under qemu-aarch64 by npas' TCG plugin, "
        "one thread, one inference; outputs checked against onnxruntime "
        f"(rtol {RTOL}, atol {ATOL}); qemu s is emulation wall time, not a speed",
    )
    return 0 if all(row[4] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
