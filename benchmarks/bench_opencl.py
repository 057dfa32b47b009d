"""The opencl target on whatever OpenCL device this machine has: zoo models, per-layer times.

    .venv/bin/python benchmarks/bench_opencl.py [--models resnet18,mobilenet_v2] [--size 224]
        [--fp16] [--repeat 20] [--per-layer] [--top 8] [--results]
        [--pruned resnet50@pattern:6,resnet50@block-punched:5]

Each model is compiled for target opencl (fp32 storage, or half with --fp16), its outputs are
checked against ONNX Runtime, then npas and ONNX Runtime (CPU, all cores) are timed in the same
process, interleaved. Per-layer times come from each kernel's OpenCL profiling event.

On PoCL (a CPU OpenCL driver, the only device CI has) these numbers are a regression signal for
the generated kernels and host code, never a claim about phone GPUs: PoCL compiles the kernels
for this CPU with work-groups turned into loops, which rewards different code than Adreno or
Mali do. The compile column includes building the C++ project; load_ms is the OpenCL program
build (first load) and the binary-cache load (second). `--pruned MODEL@SCHEME:RATE` adds rows
for the model pruned one-shot (npas.prune_onnx), kernels chosen per layer (NPAS_SPARSE=auto),
with the dense model's npas time beside it and ONNX Runtime on the pruned ONNX.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import npas
from npas import zoo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import publish

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "vgg16", "squeezenet")
SECTION = "bench_opencl"
RTOL, ATOL = 1e-3, 1e-4
FP16_RTOL = 5e-2  # of the output range, whole models (tests/opencl/test_opencl_models.py)


def _ort_session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--size", type=int, default=224, help="input height and width")
    ap.add_argument("--fp16", action="store_true", help="half storage")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--per-layer", action="store_true")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    ap.add_argument("--pruned", default="", help="MODEL@SCHEME:RATE,... pruned rows")
    args = ap.parse_args()
    threads = os.cpu_count() or 1

    rows, details = [], []
    device = "?"
    dense_ms: dict[str, float] = {}
    work = Path(os.environ.get("NPAS_BENCH_DIR", "/tmp/npas-bench-opencl"))
    entries = [m for m in args.models.split(",") if m] + [p for p in args.pruned.split(",") if p]
    for name in entries:
        path = zoo.get(name.split("@")[0], input_size=args.size)
        if "@" in name:
            scheme, rate = name.split("@")[1].split(":")
            work.mkdir(parents=True, exist_ok=True)
            pruned = work / f"{name.replace('@', '-').replace(':', '-')}-{args.size}.onnx"
            npas.prune_onnx(str(path), scheme=scheme, rate=float(rate), out=pruned)
            path = pruned
        t0 = time.perf_counter()
        cm = npas.compile(str(path), target="opencl", fp16=args.fp16)
        compile_s = time.perf_counter() - t0
        cache = Path(cm.device_info["cache"])
        cache.unlink(missing_ok=True)
        first = npas.load(cm.path)
        cm = npas.load(cm.path)
        info = cm.device_info
        device = f"{info['platform']} / {info['device']}"
        load_ms = (float(first.device_info["build_ms"]), float(info["build_ms"]))
        rng = np.random.default_rng(0)
        feeds = {t.name: rng.standard_normal(t.shape, dtype=np.float32) for t in cm.inputs}
        sess = _ort_session(path, threads)
        want = sess.run(None, feeds)
        got = cm.run(feeds)
        worst, ok = 0.0, True
        for out_name, ref in zip(cm.output_names, want, strict=True):
            diff = float(np.max(np.abs(got[out_name] - ref)))
            worst = max(worst, diff)
            if args.fp16:
                ok = ok and diff <= FP16_RTOL * float(np.abs(ref).max())
            else:
                ok = ok and bool(np.allclose(got[out_name], ref, rtol=RTOL, atol=ATOL))
        # Interleaved: one npas run, one ONNX Runtime run, so drift hits both alike.
        t_npas, t_ort = [], []
        for _ in range(2):
            cm.run(feeds)
            sess.run(None, feeds)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            cm.run(feeds)
            t_npas.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            sess.run(None, feeds)
            t_ort.append((time.perf_counter() - t0) * 1e3)
        npas_ms, ort_ms = float(np.median(t_npas)), float(np.median(t_ort))
        if "@" not in name:
            dense_ms[name] = npas_ms
        prof = cm.profile(feeds, repeat=3)
        kernel_ms = sum(r["median_ms"] for r in prof)
        rows.append((name, cm.macs, npas_ms, kernel_ms, ort_ms, ok, worst, compile_s, load_ms))
        print(
            f"{name:<20} npas {npas_ms:9.2f} ms (kernels {kernel_ms:8.2f})  onnxruntime "
            f"{ort_ms:8.2f} ms  matches: {ok} ({worst:.1e})  compile {compile_s:.0f} s  "
            f"program build {load_ms[0]:.0f} ms, cached {load_ms[1]:.0f} ms",
            flush=True,
        )
        if args.per_layer:
            top = sorted(prof, key=lambda r: r["median_ms"], reverse=True)[: args.top]
            lines = [
                f"{name}: top {len(top)} of {len(prof)} layers by OpenCL event time",
                "| layer | op | kernel | MMACs | ms | GFLOP/s |",
                "|---|---|---|---:|---:|---:|",
            ]
            for r in top:
                gf = 2 * r["macs"] / (r["median_ms"] * 1e6) if r["median_ms"] > 0 else 0.0
                lines.append(
                    f"| {r['name']} | {r['op']} | {r['kernel']} | {r['macs'] / 1e6:.1f} | "
                    f"{r['median_ms']:.3f} | {gf:.1f} |"
                )
            details.append("\n".join(lines))
            print(details[-1], flush=True)

    storage = "fp16" if args.fp16 else "fp32"
    table = [
        f"OpenCL device: {device}; storage {storage}; input {args.size}x{args.size}; "
        f"onnxruntime CPU with {threads} threads",
        "",
        "| model | GMACs | npas ms | kernel ms (events) | npas dense / npas | onnxruntime ms "
        "| ort/npas | matches ORT | program build ms | cached load ms |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, macs, npas_ms, kernel_ms, ort_ms, ok, worst, _, load_ms in rows:
        base = dense_ms.get(name.split("@")[0])
        vs_dense = f"{base / npas_ms:.2f}" if "@" in name and base else "-"
        table.append(
            f"| {name} | {macs / 1e9:.2f} | {npas_ms:.2f} | {kernel_ms:.2f} | {vs_dense} | "
            f"{ort_ms:.2f} | {ort_ms / npas_ms:.2f} | {'yes' if ok else 'NO'} ({worst:.1e}) | "
            f"{load_ms[0]:.0f} | {load_ms[1]:.1f} |"
        )
    publish(
        SECTION,
        __file__,
        "\n".join(table),
        details,
        write=args.results,
        note="PoCL runs OpenCL on this machine's CPU: a regression signal for the kernels "
        "and host code, not a phone GPU number; medians of interleaved runs",
    )
    return 0 if all(row[5] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
