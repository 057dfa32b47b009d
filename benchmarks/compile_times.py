"""Per-TU compile times of a whole model's host kernels (not a test).

    PYTHONPATH=. .venv/bin/python benchmarks/compile_times.py resnet50 [--jobs 2]

Exports the zoo model (or takes an .onnx path), runs the frontend and the pass pipeline, lowers
every layer with lower_layer, and compiles each distinct translation unit from scratch with the
Target's flags, `--jobs` at a time; prints the kernels used and every TU's compile time.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# The kernel test harness renders and builds one layer without the emitter.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "host"))

import kernel_harness as H

from npas.codegen.lower import lower_layer
from npas.codegen.target import get_target
from npas.frontend.loader import load_onnx
from npas.passes.pipeline import run_pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="zoo model name or .onnx path")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    path = Path(args.model)
    if path.suffix != ".onnx":
        import npas.zoo as zoo

        path = Path(tempfile.gettempdir()) / f"{args.model}.onnx"
        if not path.exists():
            zoo.export(args.model, path)
    graph = run_pipeline(load_onnx(str(path)))
    target = get_target("host")
    kernels, uses = {}, collections.Counter()
    for layer in graph.layers:
        kernel = lower_layer(layer, graph, target)
        if kernel is not None:
            uses[kernel.kernel] += 1
            kernels[kernel.entry] = kernel
    print(f"{len(graph.layers)} layers, {len(kernels)} distinct translation units")
    for name, count in sorted(uses.items()):
        print(f"  {count:3d} x {name}")
    flags = H.flags(target)
    work = Path(tempfile.mkdtemp())

    def compile_one(kernel):
        ((name, text),) = kernel.sources.items()
        src = work / name
        src.write_text(text)
        t0 = time.perf_counter()
        subprocess.run(
            ["g++", *flags, "-c", str(src), "-o", str(src.with_suffix(".o"))], check=True
        )
        return kernel.kernel, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as ex:
        times = sorted(ex.map(compile_one, kernels.values()), key=lambda r: -r[1])
    wall = time.perf_counter() - t0
    print(
        f"from scratch, {args.jobs} jobs: {wall:.1f} s wall, {sum(t for _, t in times):.1f} s total"
    )
    for name, seconds in times:
        print(f"  {seconds:5.2f} s  {name}")


if __name__ == "__main__":
    main()
