"""Micro-benchmark: npas host conv kernels vs the same single Conv in ONNX Runtime.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_kernels.py [--threads 1 2] [--rounds 8]
        [--filter SUBSTRING] [--isa avx2]

For representative ResNet-50, VGG-16 and MobileNetV2 layers it builds the npas kernel (through
lower_layer, the same path a compiled model takes) and a one-node ONNX model, times both in
this process with runs interleaved, and prints GFLOP/s (2 * MACs / median time) and the ratio
npas / ORT. Where the selector picked a Winograd kernel, the direct kernel it displaced (what
the manifest picks without the Winograd variants) is timed in the same rounds too: the
"direct" column. GFLOP/s always count the direct algorithm's 2 * MACs. Not a test: speed is
reported, never asserted. --results writes the table into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The kernel test harness renders and builds one layer without the emitter.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "host"))

import kernel_harness as H
from results import write_section

from npas.codegen.host import conv, winograd
from npas.codegen.host.common import lower_with
from npas.codegen.lower import effective_isa, lower_layer
from npas.codegen.naming import parse_kernel_name
from npas.codegen.target import get_target
from npas.ir.attrs import Activation, Conv2dAttrs, Epilogue
from npas.ir.ops import Op


@dataclass(frozen=True)
class ConvCase:
    name: str
    c: int
    hw: int
    f: int
    k: int
    stride: int = 1
    groups: int = 1
    relu: bool = False

    @property
    def pad(self) -> int:
        return self.k // 2

    @property
    def out_hw(self) -> int:
        return (self.hw + 2 * self.pad - self.k) // self.stride + 1

    @property
    def macs(self) -> int:
        return self.f * self.out_hw**2 * (self.c // self.groups) * self.k * self.k


CASES = [
    ConvCase("r50 1x1 256->64 @56", 256, 56, 64, 1),
    ConvCase("r50 3x3 64->64 @56", 64, 56, 64, 3),
    ConvCase("r50 1x1 64->256 @56", 64, 56, 256, 1),
    ConvCase("r50 3x3 128 s2 @56->28", 128, 56, 128, 3, 2),
    ConvCase("r50 3x3 128 @28", 128, 28, 128, 3),
    ConvCase("r50 1x1 512->128 @28", 512, 28, 128, 1),
    ConvCase("r50 3x3 256 @14", 256, 14, 256, 3),
    ConvCase("r50 1x1 1024->256 @14", 1024, 14, 256, 1),
    ConvCase("r50 3x3 512 @7", 512, 7, 512, 3),
    ConvCase("vgg16 3x3 64 @224", 64, 224, 64, 3),
    ConvCase("vgg16 3x3 64->128 @112", 64, 112, 128, 3),
    ConvCase("vgg16 3x3 128 @112", 128, 112, 128, 3),
    ConvCase("vgg16 3x3 256 @56", 256, 56, 256, 3),
    ConvCase("vgg16 3x3 512 @28", 512, 28, 512, 3),
    ConvCase("vgg16 3x3 512 @14", 512, 14, 512, 3),
    ConvCase("r50 1x1 512->2048 @7", 512, 7, 2048, 1),
    ConvCase("r50 7x7 s2 3->64 @224", 3, 224, 64, 7, 2),
    ConvCase("mbv2 1x1 24->144 @56", 24, 56, 144, 1),
    ConvCase("mbv2 dw3x3 144 @56", 144, 56, 144, 3, 1, 144),
    ConvCase("mbv2 dw3x3 144 s2 @56", 144, 56, 144, 3, 2, 144),
    ConvCase("mbv2 1x1 144->24 @56", 144, 56, 24, 1),
    ConvCase("mbv2 1x1 96->576 @14", 96, 14, 576, 1),
    ConvCase("mbv2 dw3x3 576 @14", 576, 14, 576, 3, 1, 576),
    ConvCase("mbv2 1x1 576->96 @14", 576, 14, 96, 1),
    ConvCase("mbv2 3x3 s2 3->32 @224", 3, 224, 32, 3, 2),
]


def _ort_session(case: ConvCase, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((case.f, case.c // case.groups, case.k, case.k)).astype(np.float32)
    b = rng.standard_normal(case.f).astype(np.float32)
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], kernel_shape=[case.k] * 2, strides=[case.stride] * 2,
        pads=[case.pad] * 4, group=case.groups,
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, case.c, case.hw, case.hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess, w, b


def _npas_runner(
    case: ConvCase, w: np.ndarray, b: np.ndarray, threads: int, direct: bool = False
) -> H.Runner:
    """The kernel a compiled model runs for this layer; with `direct`, the one the manifest
    picks when the Winograd variants are left out."""
    oh = case.out_hw
    layer, graph = H.one_layer_graph(
        Op.CONV2D,
        [("x", (1, case.c, case.hw, case.hw)), ("w", w), ("b", b)],
        [("y", (1, case.f, oh, oh))],
        Conv2dAttrs((case.k, case.k), (case.stride,) * 2, (case.pad,) * 4, (1, 1), case.groups),
        Epilogue(act=Activation(Op.RELU) if case.relu else None),
    )
    target = get_target("host")
    if direct:
        manifest = [v for v in conv.CONV2D_MANIFEST if v not in winograd.WINOGRAD_VARIANTS]
        kernel = lower_with(manifest, layer, graph, effective_isa(target))
    else:
        kernel = lower_layer(layer, graph, target)
    x = np.random.default_rng(1).standard_normal((1, case.c, case.hw, case.hw))
    return H.Runner(kernel, [x.astype(np.float32)], [(1, case.f, oh, oh)], threads)


def _is_winograd(kernel_name: str) -> bool:
    return parse_kernel_name(kernel_name)["family"].startswith("wino")


def bench(case: ConvCase, threads: int, rounds: int) -> tuple[str, float, float, float | None]:
    """(kernel name, npas seconds, ORT seconds, direct-kernel seconds or None): medians over
    `rounds` interleaved rounds of three bursts of back-to-back runs (~10 ms each)."""
    sess, w, b = _ort_session(case, threads)
    runner = _npas_runner(case, w, b, threads)
    direct = None
    if _is_winograd(runner.kernel.kernel):
        direct = _npas_runner(case, w, b, threads, direct=True)
    x = runner.ins[0].reshape(1, case.c, case.hw, case.hw)
    (y_ort,) = sess.run(None, {"x": x})
    for r in (runner, direct) if direct else (runner,):
        (y_npas,) = r()
        err = float(np.abs(y_ort - y_npas).max() / (np.abs(y_ort).max() + 1e-6))
        if err > 1e-4:
            raise AssertionError(f"{case.name}: {r.kernel.kernel} differs from ORT ({err:.2e})")
    # ORT through io_binding into a preallocated output (no per-run allocation or copy);
    # npas through the harness's C loop (no Python between calls, as inside a model).
    y = np.empty_like(y_ort)
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y", "cpu", 0, np.float32, y.shape, y.ctypes.data)
    once = max(runner.seconds(1), 1e-6)
    reps = max(1, min(200, int(0.01 / once)))

    def ort_burst() -> float:
        t0 = time.perf_counter()
        for _ in range(reps):
            sess.run_with_iobinding(binding)
        return (time.perf_counter() - t0) / reps

    fns = {"ort": ort_burst, "npas": lambda: runner.seconds(reps)}
    if direct is not None:
        fns["direct"] = lambda: direct.seconds(reps)
    times: dict[str, list[float]] = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            # Each side runs after a pause: both engines' pools spin after a run, and on 2
            # cores one side's spinning workers would otherwise steal the other's core.
            time.sleep(0.05)
            fn()  # wake the pool
            times[key].extend(fn() for _ in range(3))
    t_direct = float(np.median(times["direct"])) if direct is not None else None
    return (
        runner.kernel.kernel,
        float(np.median(times["npas"])),
        float(np.median(times["ort"])),
        t_direct,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--filter", default="")
    ap.add_argument("--isa", default="", help="force NPAS_ISA for the npas side")
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    if args.isa:
        os.environ["NPAS_ISA"] = args.isa
    cases = [c for c in CASES if args.filter in c.name]
    kernels = []
    for c in cases:
        w, b = _ort_session(c, 1)[1:]
        kernels.append(_npas_runner(c, w, b, 1).kernel)
        if _is_winograd(kernels[-1].kernel):
            kernels.append(_npas_runner(c, w, b, 1, direct=True).kernel)
    H.prebuild(kernels)
    print(
        f"{'layer':26} {'thr':>3} {'npas GF/s':>9} {'direct':>7} {'ORT GF/s':>9} {'ratio':>6}"
        "  kernel"
    )
    table = [
        "| layer | threads | npas GFLOP/s | direct GFLOP/s | ORT GFLOP/s | ORT time / npas time "
        "| kernel |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for threads in args.threads:
        for case in cases:
            kernel, t_npas, t_ort, t_direct = bench(case, threads, args.rounds)
            gf = 2 * case.macs / 1e9
            direct = f"{gf / t_direct:.1f}" if t_direct else "-"
            print(
                f"{case.name:26} {threads:>3} {gf / t_npas:9.1f} {direct:>7} {gf / t_ort:9.1f} "
                f"{t_ort / t_npas:6.2f}  {kernel}",
                flush=True,
            )
            table.append(
                f"| {case.name} | {threads} | {gf / t_npas:.1f} | {direct} | {gf / t_ort:.1f} "
                f"| {t_ort / t_npas:.2f} | `{kernel}` |"
            )
    if args.results:
        command = "python benchmarks/bench_kernels.py " + " ".join(sys.argv[1:])
        write_section("bench_kernels", command.strip(), "\n".join(table))


if __name__ == "__main__":
    main()
