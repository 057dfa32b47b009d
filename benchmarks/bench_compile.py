"""Compile time: from scratch (empty cache) and unchanged recompile, per zoo model.

    .venv/bin/python benchmarks/bench_compile.py [--models resnet50,mobilenet_v2] [--results]

Each model is compiled in a fresh NPAS_CACHE_DIR (every kernel translation unit built), then
compiled again unchanged into another output directory (whole-model cache hit).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,mobilenet_v2,resnet18")
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()

    from npas import zoo

    paths = {name: zoo.get(name) for name in args.models.split(",")}  # export outside timing
    table = [
        "| model | layers | kernel TUs built | from scratch s | unchanged recompile s |",
        "|---|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in paths.items():
            os.environ["NPAS_CACHE_DIR"] = str(Path(tmp) / f"cache-{name}")
            import npas

            t0 = time.perf_counter()
            cm = npas.compile(str(path), target="host", out=str(Path(tmp) / f"{name}-a"))
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            npas.compile(str(path), target="host", out=str(Path(tmp) / f"{name}-b"))
            warm = time.perf_counter() - t0
            tus = len(list((Path(tmp) / f"{name}-a" / "src").glob("*.cpp"))) - 1  # less model.cpp
            print(f"{name:<16} {len(cm.layers):>4} layers {tus:>3} TUs  "
                  f"cold {cold:6.1f} s  cached {warm:5.2f} s", flush=True)  # fmt: skip
            table.append(f"| {name} | {len(cm.layers)} | {tus} | {cold:.1f} | {warm:.2f} |")
    if args.results:
        command = "python benchmarks/bench_compile.py " + " ".join(sys.argv[1:])
        write_section("bench_compile", command.strip(), "\n".join(table), "2 cores, wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
