"""Pruned models on this host: latency vs pruning rate per scheme, against npas on the dense
model and ONNX Runtime on the dense model, 1 and 2 threads, same process, runs interleaved,
medians. Plus the conv-layer view (the 3x3 or 1x1 layers' own times from the per-layer
profile) and, with --calibrate, the per-layer measurements behind the sparse cost model.

    .venv/bin/python benchmarks/bench_sparsity.py [--models resnet50,mobilenet_v2,vgg16]
        [--threads 1,2] [--repeat 20] [--sweep pattern:1.5,2,5,10 ...] [--results]
    .venv/bin/python benchmarks/bench_sparsity.py --calibrate

Sections (each a table; --results writes them into benchmarks/RESULTS.md):
- sweep: every (model, scheme, rate) pruned one-shot by npas.prune_onnx, compiled as a user
  gets it (the cost model decides per layer), timed against npas dense and ORT dense; the
  "sparse layers" column counts the conv/dense layers that run a sparse kernel.
- layers: pattern at 6x on every 3x3 conv (sparse kernels forced on all of them), and
  block-punched at 5x on every 1x1 conv: the summed time of those layers against npas'
  dense direct/GEMM kernels (no Winograd) and npas' best dense kernels (Winograd where chosen).
- resnet50: 3x3 convs pattern 6x + 1x1 convs block-punched 5x, end to end against ORT dense.
- arm64 (--sections arm64): the layer view and the ResNet-50 mix in executed aarch64
  instructions (target arm64 under qemu with npas' counting plugin), at 128x128.

VGG-16 runs at 128x128 (5.1 GMACs; 224x224 is 15.5 GMACs, too slow for a sweep on the two
shared cores of the machine this was written on); the other models at 224x224.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "host"))

from results import write_section

import npas
from npas import zoo
from npas.codegen.naming import parse_kernel_name
from npas.passes.prune import PruneError

MODELS = ("resnet50", "mobilenet_v2", "vgg16")
INPUT_SIZE = {"vgg16": 128}
SWEEP = {
    "pattern": (1.5, 2.0, 5.0, 10.0),
    "block-punched": (1.5, 2.0, 5.0, 10.0),
    "block": (5.0,),
    "unstructured": (1.5, 5.0),
}
SPARSE_TOKENS = {"pattern", "blockpunched", "block", "unstructured"}
WORK = Path(os.environ.get("NPAS_BENCH_DIR", "/tmp/npas-bench-sparsity"))


# ---- timing ----


def _ort(path: str, threads: int) -> Callable[[dict], object]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return lambda feeds: sess.run(None, feeds)


def interleaved(fns: dict[str, Callable[[], object]], repeat: int, threads: int) -> dict:
    """Median ms per runner over `repeat` runs, interleaved in short blocks with a pause at
    each switch (both engines' workers spin after a run; on 2 cores they would steal the next
    engine's cores), as npasc bench does."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    block = 1 if threads == 1 else 3
    while min(len(v) for v in times.values()) < repeat:
        for key, fn in fns.items():
            if block > 1:
                time.sleep(0.05)
                fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
    return {k: float(np.median(v)) for k, v in times.items()}


def _vs_dense(cm, dense, dense_path: Path, feeds: dict, threads: int, repeat: int) -> dict:
    """Median ms of the pruned model, npas on the dense one and ORT on the dense one."""
    cm.set_threads(threads)
    dense.set_threads(threads)
    ort_run = _ort(str(dense_path), threads)
    runners = {
        "npas": lambda: cm.run(feeds),
        "dense": lambda: dense.run(feeds),
        "ort": lambda: ort_run(feeds),
    }
    return interleaved(runners, repeat, threads)


# ---- models ----


def _dense_model(name: str, size: int | None = None) -> Path:
    return zoo.get(name, input_size=size or INPUT_SIZE.get(name))


def _pruned(name: str, scheme: str, rate: float, size: int | None = None) -> Path | None:
    """The model pruned one-shot (cached under WORK); None when the scheme fits none of its
    layers (pattern on MobileNetV2, whose only plain 3x3 conv is the first)."""
    out = WORK / f"{name}-{scheme}-{rate:g}{f'-{size}' if size else ''}.onnx"
    if out.exists():
        return out
    WORK.mkdir(parents=True, exist_ok=True)
    try:
        npas.prune_onnx(str(_dense_model(name, size)), scheme=scheme, rate=rate, out=out)
    except PruneError as e:
        print(f"{name} {scheme}: {e}", file=sys.stderr)
        return None
    return out


def _conv_kernel_sizes(path: Path) -> dict[str, tuple[int, int]]:
    """ONNX Conv node name -> kernel size (names as npas names layers)."""
    from npas.frontend.loader import _node_names

    g = onnx.load(str(path), load_external_data=False).graph
    out = {}
    for name, node in zip(_node_names(g), g.node, strict=True):
        if node.op_type == "Conv":
            ks = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), [])
            out[name] = tuple(ks) if ks else (0, 0)
    return out


def _mixed_resnet50(size: int | None = None) -> Path:
    """ResNet-50 with its 3x3 convs pattern-pruned at 6x and its 1x1 convs block-punched at 5x."""
    out = WORK / f"resnet50-pattern6-bp5{f'-{size}' if size else ''}.onnx"
    if out.exists():
        return out
    base = _pruned("resnet50", "pattern", 6.0, size)
    assert base is not None
    model = onnx.load(str(base))
    for name, ks in _conv_kernel_sizes(base).items():
        if ks == (1, 1):
            model = npas.prune_onnx(model, scheme="block-punched", rate=5.0, layers=name).model
    onnx.save(model, str(out))
    return out


def _compile(path: Path, mode: str = "auto", direct: bool = False, target: str = "host"):
    """Compiled with NPAS_SPARSE=mode; `direct`: dense convs on the direct/GEMM kernels only
    (no Winograd), the baseline of the layer view."""
    os.environ["NPAS_SPARSE"] = mode
    lower = _lower_direct if direct else None
    return npas.compile(str(path), target=target, lower=lower)


def _lower_direct(layer, graph, target):
    from npas.codegen.host import conv, sparse_conv, winograd
    from npas.codegen.host.common import lower_with
    from npas.codegen.lower import effective_isa, lower_layer
    from npas.ir.ops import Op

    if layer.op is not Op.CONV2D:
        return lower_layer(layer, graph, target)
    skip = set(winograd.WINOGRAD_VARIANTS) | set(sparse_conv.SPARSE_VARIANTS)
    manifest = [v for v in conv.CONV2D_MANIFEST if v not in skip]
    return lower_with(manifest, layer, graph, effective_isa(target))


def _sparse_layers(cm) -> int:
    return sum(
        1
        for r in cm.layers
        if r["op"] in ("conv2d", "dense")
        and parse_kernel_name(r["kernel"])["scheme"] in SPARSE_TOKENS
    )


def _check(cm, path: Path, feeds: dict) -> str:
    got = cm.run(feeds)[cm.output_names[0]]
    ref = _ort(str(path), 1)(feeds)[0]
    return (
        "yes" if np.allclose(got, ref, rtol=1e-3, atol=1e-4 * max(1, np.abs(ref).max())) else "NO"
    )


# ---- sections ----


def sweep(models, sweep_spec, threads_list, repeat) -> str:
    rows = [
        "| model | scheme | rate | threads | sparse layers | npas ms | npas dense ms | ORT dense "
        "ms | npas dense / npas | ORT dense / npas | matches ORT |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in models:
        dense_path = _dense_model(name)
        dense = _compile(dense_path)
        feeds = dense.random_inputs()
        for scheme, rates in sweep_spec.items():
            for rate in rates:
                path = _pruned(name, scheme, rate)
                if path is None:
                    continue
                cm = _compile(path)
                ok = _check(cm, path, feeds)
                for threads in threads_list:
                    t = _vs_dense(cm, dense, dense_path, feeds, threads, repeat)
                    line = (
                        f"| {name} | {scheme} | {rate:g} | {threads} | {_sparse_layers(cm)} | "
                        f"{t['npas']:.2f} | {t['dense']:.2f} | {t['ort']:.2f} | "
                        f"{t['dense'] / t['npas']:.2f} | {t['ort'] / t['npas']:.2f} | {ok} |"
                    )
                    print(line, flush=True)
                    rows.append(line)
    return "\n".join(rows)


def _layer_times(cm, names: set[str], threads: int, repeat: int) -> tuple[float, list[str]]:
    prof = cm.benchmark(repeat=repeat, warmup=2, threads=threads)
    rows = [r for r in prof.per_layer if r["name"] in names]
    return sum(r["median_ms"] for r in rows), sorted({r["kernel"] for r in rows})


def layer_view(threads_list, repeat) -> str:
    rows = [
        "| model | layers | pruning | threads | sparse ms | dense direct ms | best dense ms "
        "| direct / sparse | best dense / sparse | sparse kernels |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("resnet50", "vgg16", "mobilenet_v2"):
        dense_path = _dense_model(name)
        sizes = _conv_kernel_sizes(dense_path)
        for ks, scheme, rate in (((3, 3), "pattern", 6.0), ((1, 1), "block-punched", 5.0)):
            names = {n for n, k in sizes.items() if k == ks}
            path = _pruned(name, scheme, rate)
            if path is None:
                continue
            cms = {
                "sparse": _compile(path, "sparse"),
                "direct": _compile(dense_path, direct=True),
                "best": _compile(dense_path),
            }
            names &= {
                r["name"]
                for r in cms["sparse"].layers
                if r["op"] == "conv2d" and parse_kernel_name(r["kernel"])["scheme"] in SPARSE_TOKENS
            }
            if not names:
                continue
            for threads in threads_list:
                t, kernels = {}, {}
                for _ in range(3):  # interleaved rounds of profiles; medians
                    for key, cm in cms.items():
                        ms, ks_ = _layer_times(cm, names, threads, repeat)
                        t.setdefault(key, []).append(ms)
                        kernels[key] = ks_
                med = {k: float(np.median(v)) for k, v in t.items()}
                line = (
                    f"| {name} | {len(names)} {ks[0]}x{ks[1]} convs | {scheme} {rate:g}x | "
                    f"{threads} | {med['sparse']:.2f} | {med['direct']:.2f} | "
                    f"{med['best']:.2f} | {med['direct'] / med['sparse']:.2f} | "
                    f"{med['best'] / med['sparse']:.2f} | {len(kernels['sparse'])} |"
                )
                print(line, flush=True)
                rows.append(line)
    return "\n".join(rows)


def resnet50_mixed(threads_list, repeat) -> str:
    rows = [
        "| model | NPAS_SPARSE | threads | sparse layers | npas ms | npas dense ms | ORT dense "
        "ms | npas dense / npas | ORT dense / npas | matches ORT |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    dense_path = _dense_model("resnet50")
    path = _mixed_resnet50()
    dense = _compile(dense_path)
    feeds = dense.random_inputs()
    for mode in ("auto", "sparse"):
        cm = _compile(path, mode)
        ok = _check(cm, path, feeds)
        for threads in threads_list:
            t = _vs_dense(cm, dense, dense_path, feeds, threads, repeat)
            line = (
                f"| resnet50 3x3 pattern 6x + 1x1 block-punched 5x | {mode} | {threads} | "
                f"{_sparse_layers(cm)} | {t['npas']:.2f} | {t['dense']:.2f} | {t['ort']:.2f} | "
                f"{t['dense'] / t['npas']:.2f} | {t['ort'] / t['npas']:.2f} | {ok} |"
            )
            print(line, flush=True)
            rows.append(line)
    return "\n".join(rows)


ARM64_SIZE = 128  # qemu runs ~50x slower than native: a third of the 224x224 pixels


def arm64_instructions() -> str:
    """The layer view and ResNet-50 end to end in executed aarch64 instructions (target arm64,
    one thread, one inference under qemu with npas' counting plugin), at ARM64_SIZE."""
    from npas.runtime.devices.insn_count import count_instructions

    def counted(cm, feeds):
        r = count_instructions(cm.path, feeds, warmup=0, repeat=1)
        return r, {row.name: row.instructions for row in r.layers}

    rows = [
        f"| model ({ARM64_SIZE}x{ARM64_SIZE}) | layers | pruning | sparse G instr | dense direct "
        "G instr | best dense G instr | direct / sparse | best dense / sparse |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("resnet50", "vgg16", "mobilenet_v2"):
        dense_path = _dense_model(name, ARM64_SIZE)
        sizes = _conv_kernel_sizes(dense_path)
        feeds = None
        dense_counts: dict[str, dict[str, int]] = {}
        for ks, scheme, rate in (((3, 3), "pattern", 6.0), ((1, 1), "block-punched", 5.0)):
            path = _pruned(name, scheme, rate, ARM64_SIZE)
            if path is None:
                continue
            sparse = _compile(path, "sparse", target="arm64")
            names = {
                r["name"]
                for r in sparse.layers
                if r["op"] == "conv2d" and parse_kernel_name(r["kernel"])["scheme"] in SPARSE_TOKENS
            } & {n for n, k in sizes.items() if k == ks}
            if not names:
                continue
            feeds = feeds or sparse.random_inputs()
            for key, direct in (("direct", True), ("best", False)):
                if key not in dense_counts:
                    cm = _compile(dense_path, direct=direct, target="arm64")
                    dense_counts[key] = counted(cm, feeds)[1]
            sp = counted(sparse, feeds)[1]
            tot = {
                "sparse": sum(sp[n] for n in names),
                "direct": sum(dense_counts["direct"][n] for n in names),
                "best": sum(dense_counts["best"][n] for n in names),
            }
            line = (
                f"| {name} | {len(names)} {ks[0]}x{ks[1]} convs | {scheme} {rate:g}x | "
                f"{tot['sparse'] / 1e9:.3f} | {tot['direct'] / 1e9:.3f} | {tot['best'] / 1e9:.3f} "
                f"| {tot['direct'] / tot['sparse']:.2f} | {tot['best'] / tot['sparse']:.2f} |"
            )
            print(line, flush=True)
            rows.append(line)
    # ResNet-50 end to end: 3x3 pattern 6x + 1x1 block-punched 5x against the dense model.
    dense_path = _dense_model("resnet50", ARM64_SIZE)
    mixed = _mixed_resnet50(ARM64_SIZE)
    dense = _compile(dense_path, target="arm64")
    feeds = dense.random_inputs()
    d = counted(dense, feeds)[0].per_inference
    rows.append("")
    rows.append("| model | NPAS_SPARSE | G instructions | dense G instructions | dense / pruned |")
    rows.append("|---|---|---:|---:|---:|")
    for mode in ("auto", "sparse"):
        p = counted(_compile(mixed, mode, target="arm64"), feeds)[0].per_inference
        line = (
            f"| resnet50 3x3 pattern 6x + 1x1 block-punched 5x ({ARM64_SIZE}x{ARM64_SIZE}) | "
            f"{mode} | {p / 1e9:.3f} | {d / 1e9:.3f} | {d / p:.2f} |"
        )
        print(line, flush=True)
        rows.append(line)
    return "\n".join(rows)


# ---- calibration of the cost model ----


def calibrate(rounds: int) -> str:
    """Per layer and scheme: the sparse kernel's measured time (one thread, thread CPU time:
    the machine is shared) against the dense kernel's and the cost model's."""
    import kernel_harness as H

    from npas.codegen.host import sparse_conv as sc
    from npas.codegen.host.conv import conv_geom
    from npas.codegen.lower import lower_layer
    from npas.codegen.target import get_target
    from npas.ir.attrs import Activation, Conv2dAttrs, Epilogue
    from npas.ir.ops import Op
    from npas.passes.prune import project

    layers = [
        (64, 56, 64, 3, 1),
        (128, 28, 128, 3, 1),
        (256, 14, 256, 3, 1),
        (512, 7, 512, 3, 1),
        (128, 56, 128, 3, 2),
        (256, 56, 64, 1, 1),
        (64, 56, 256, 1, 1),
        (512, 28, 128, 1, 1),
        (1024, 14, 256, 1, 1),
        (512, 7, 2048, 1, 1),
    ]
    plan = [
        ("pattern", 2.25),
        ("pattern", 6.0),
        ("block-punched", 1.5),
        ("block-punched", 5.0),
        ("unstructured", 1.5),
        ("unstructured", 5.0),
    ]
    target = get_target("host")
    rows = [
        "| layer (C, HW, F, k, s) | scheme | rate | sparse ms | model ms | dense ms | dense "
        "model ms | chosen | measured dense / sparse |",
        "|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for c, hw, f, k, s in layers:
        rng = np.random.default_rng(0)
        w0 = rng.standard_normal((f, c, k, k)).astype(np.float32)
        x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
        oh = (hw + 2 * (k // 2) - k) // s + 1
        for scheme, rate in plan:
            if scheme == "pattern" and k != 3:
                continue
            sp = project(w0, scheme, rate)
            w = np.where(sp.mask, w0, 0).astype(np.float32)
            layer, graph = H.one_layer_graph(
                Op.CONV2D,
                [("x", x.shape), ("w", w), ("b", np.zeros(f, np.float32))],
                [("y", (1, f, oh, oh))],
                Conv2dAttrs((k, k), (s, s), (k // 2,) * 4, (1, 1), 1),
                Epilogue(act=Activation(Op.RELU)),
            )
            layer = layer.with_(sparsity=sp)
            graph.layers = [layer]
            kernels = {}
            for mode in ("sparse", "dense", "auto"):
                os.environ["NPAS_SPARSE"] = mode
                kernels[mode] = lower_layer(layer, graph, target)
            H.prebuild(kernels.values())
            runners = {m: H.Runner(kernels[m], [x], [(1, f, oh, oh)]) for m in ("sparse", "dense")}
            once = max(r.seconds(1) for r in runners.values())
            reps = max(1, min(100, int(0.02 / once)))
            t: dict[str, list[float]] = {m: [] for m in runners}
            for _ in range(rounds):
                for m, r in runners.items():
                    c0 = time.thread_time()
                    r.seconds(reps)
                    t[m].append((time.thread_time() - c0) / reps * 1e3)
            med = {m: float(np.median(v)) for m, v in t.items()}
            g = conv_geom(layer, graph)
            model_s = sc.sparse_conv_seconds(g, sp, target.isa) * 1e3
            model_d = sc.dense_conv_seconds(g, target.isa) * 1e3
            chosen = parse_kernel_name(kernels["auto"].kernel)["scheme"]
            line = (
                f"| {c}, {hw}, {f}, {k}, {s} | {scheme} | {rate:g} | {med['sparse']:.3f} | "
                f"{model_s:.3f} | {med['dense']:.3f} | {model_d:.3f} | {chosen} | "
                f"{med['dense'] / med['sparse']:.2f} |"
            )
            print(line, flush=True)
            rows.append(line)
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument(
        "--sweep",
        nargs="*",
        default=None,
        help="scheme:rate,rate... (default: every scheme at its rates)",
    )
    ap.add_argument("--sections", default="sweep,layers,resnet50", help="also: arm64")
    ap.add_argument("--calibrate", action="store_true", help="the cost model's layer table only")
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    command = ("python benchmarks/bench_sparsity.py " + " ".join(sys.argv[1:])).strip()
    if args.calibrate:
        table = calibrate(rounds=5)
        if args.results:
            write_section(
                "bench_sparsity_calibration",
                command,
                table,
                note="one thread, thread CPU time, medians of 5 interleaved rounds",
            )
        return 0
    spec = SWEEP
    if args.sweep:
        spec = {
            s.split(":")[0]: tuple(float(r) for r in s.split(":")[1].split(",")) for s in args.sweep
        }
    sections = args.sections.split(",")
    note = (
        "npas (the cost model choosing kernels per layer) vs npas and ONNX Runtime on the dense "
        "model, same process, runs interleaved, medians; VGG-16 at 128x128"
    )
    if "resnet50" in sections:
        table = resnet50_mixed(threads, args.repeat)
        if args.results:
            write_section("bench_sparsity_resnet50", command, table, note=note)
    if "layers" in sections:
        table = layer_view(threads, max(5, args.repeat // 2))
        if args.results:
            write_section(
                "bench_sparsity_layers",
                command,
                table,
                note="per-layer profile medians of 3 interleaved rounds; sparse "
                "kernels forced (NPAS_SPARSE=sparse) on every pruned layer",
            )
    if "sweep" in sections:
        table = sweep(args.models.split(","), spec, threads, args.repeat)
        if args.results:
            write_section("bench_sparsity", command, table, note=note)
    if "arm64" in sections:
        table = arm64_instructions()
        if args.results:
            write_section(
                "bench_sparsity_arm64",
                command,
                table,
                note="executed aarch64 instructions under qemu-aarch64 (npas' counting plugin), "
                "one thread, one inference; sparse kernels forced on the pruned layers in the "
                "layer view",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
