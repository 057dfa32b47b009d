"""npas vs ONNX Runtime on this host: zoo models, 1 and 2 threads, same process, interleaved.

    .venv/bin/python benchmarks/bench_host.py [--models resnet18,resnet50] [--repeat 30]

Prints a markdown table (medians, ratio = ORT median / npas median) and, with --results,
replaces this benchmark's section in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import npas
from npas import zoo
from npas.cli import bench

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import publish

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "mobilenet_v3_large", "vgg16")
SECTION = "bench_host"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()

    rows = []
    for name in args.models.split(","):
        onnx_path = zoo.get(name)
        t0 = time.perf_counter()
        cm = npas.compile(str(onnx_path), target="host")
        compile_s = time.perf_counter() - t0
        for threads in (int(t) for t in args.threads.split(",")):
            r = bench(cm, repeat=args.repeat, warmup=3, threads=threads,
                      compare_model=str(onnx_path))  # fmt: skip
            rows.append((name, threads, cm.isa, cm.macs, r, compile_s))
            print(f"{name:<20} t={threads} npas {r['npas']['median_ms']:8.2f} ms  "
                  f"ort {r['onnxruntime']['median_ms']:8.2f} ms  "
                  f"ratio {r['speedup_vs_onnxruntime']:.2f}  match={r['check']['matches']}",
                  flush=True)  # fmt: skip

    table = [
        "| model | threads | isa | GMACs | npas median ms | ORT median ms | ORT/npas "
        "| matches ORT |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for name, threads, isa, macs, r, _ in rows:
        table.append(
            f"| {name} | {threads} | {isa} | {macs / 1e9:.2f} | {r['npas']['median_ms']:.2f} | "
            f"{r['onnxruntime']['median_ms']:.2f} | {r['speedup_vs_onnxruntime']:.2f} | "
            f"{'yes' if r['check']['matches'] else 'NO'} |"
        )
    publish(SECTION, __file__, "\n".join(table), write=args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
