"""`npasc`: the npas command line. Exit 0 on success, 2 on bad input with a one-paragraph
message (what, where, what to do); a traceback means an npas bug."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npas.errors import NpasError

SUBCOMMANDS = ("compile", "run", "bench", "inspect", "prune", "zoo")
RTOL, ATOL = 1e-3, 1e-4  # the correctness contract in fp32
# fp16 storage (opencl --fp16): whole models within this fraction of their output range
# (tests/opencl/test_opencl_models.py measures the zoo against it).
FP16_RANGE_TOL = 5e-2
BENCH_BLOCK = 5  # runs per engine before switching, when threads > 1
BENCH_SWITCH_PAUSE_S = 0.05  # longer than the engines' worker spin-wait
PRUNE_SCHEMES = ("pattern", "block-punched", "block", "filter", "unstructured")
TARGETS = ("host", "arm64", "arm64-android", "opencl", "opencl-android")
DEVICE_HELP = (
    "host | qemu[:CPU] | ssh:[USER@]HOST[:PORT] | adb[:SERIAL] (default: where the build runs "
    "on this machine: host, or qemu for arm64)"
)


class UsageError(NpasError):
    """A command-line argument is malformed."""


# ---------------------------------------------------------------- argument helpers
def parse_shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    """`NAME=1x3x224x224` -> ("NAME", (1, 3, 224, 224))."""
    name, sep, dims = text.rpartition("=")
    if not sep or not name or not re.fullmatch(r"\d+(x\d+)*", dims):
        raise UsageError(
            f"--input-shape {text!r}: expected NAME=DIMxDIM... such as input=1x3x224x224"
        )
    return name, tuple(int(d) for d in dims.split("x"))


def parse_input_arg(text: str) -> tuple[str, np.ndarray]:
    """`NAME=file.npy` -> (NAME, array)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise UsageError(f"--input {text!r}: expected NAME=FILE.npy")
    try:
        return name, np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"--input {name}: file {path!r} does not exist") from None
    except (ValueError, OSError) as e:
        raise UsageError(f"--input {name}: {path!r} is not a readable .npy file ({e})") from None


def safe_filename(name: str) -> str:
    """An output name made filesystem-safe (ONNX names may hold '/', ':' and worse)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".")
    return safe or "output"


def _is_compiled_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.json").is_file()


def _require_model_file(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"{path}: no such file; pass an ONNX model or a compiled npas directory")


# ---------------------------------------------------------------- commands
def cmd_compile(args: argparse.Namespace) -> int:
    import npas

    model = Path(args.model)
    _require_model_file(model)
    out = Path(args.output) if args.output else Path(f"{model.stem}.npas")
    shapes = dict(parse_shape_arg(s) for s in args.input_shape)
    prune_config = None
    if args.prune_config:
        try:
            prune_config = json.loads(Path(args.prune_config).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UsageError(
                f"--prune-config {args.prune_config}: cannot read JSON ({e})"
            ) from None
    cm = npas.compile(
        str(model),
        target=args.target,
        out=str(out),
        input_shapes=shapes or None,
        threads=args.threads,
        prune_config=prune_config,
        fp16=args.fp16,
        tune=args.tune,
    )
    print(
        f"compiled {model} for {args.target} ({cm.isa}) -> {out}: {len(cm.layers)} layers, "
        f"{cm.macs / 1e6:.1f} M MACs, peak activations {cm.peak_activation_bytes / 2**20:.2f} MiB"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import npas

    out = Path(args.compiled)
    if not _is_compiled_dir(out):
        raise UsageError(f"{out}: not a compiled npas directory (run `npasc compile` first)")
    cm = npas.load(str(out), device=args.device, threads=args.threads)
    feeds = dict(parse_input_arg(s) for s in args.input)
    results = cm.run(feeds)
    dest = Path(args.output_dir)
    dest.mkdir(parents=True, exist_ok=True)
    for name, arr in results.items():
        path = dest / f"{safe_filename(name)}.npy"
        np.save(path, arr)
        print(f"{name}: {list(arr.shape)} -> {path}")
    return 0


def _time_onnxruntime(model_path: str, feeds: dict[str, np.ndarray], threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    for inp in sess.get_inputs():
        want = feeds[inp.name].shape if inp.name in feeds else None
        fixed = [d for d in inp.shape]
        if want is not None and (
            len(fixed) != len(want)
            or any(isinstance(d, int) and d != w for d, w in zip(fixed, want, strict=False))
        ):
            raise UsageError(
                f"--compare onnxruntime: {model_path} takes input {inp.name!r} of shape "
                f"{fixed}, but the compiled model was built for {list(want)} (--input-shape); "
                "ONNX Runtime cannot run the ONNX model at that shape: compare a model "
                "exported at it instead"
            )
    return lambda: sess.run(None, feeds)


def _summary(times_ms: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(times_ms, dtype=np.float64)
    return {
        "median_ms": float(np.median(arr)),
        "p10_ms": float(np.percentile(arr, 10)),
        "p90_ms": float(np.percentile(arr, 90)),
        "runs": len(arr),
    }


def bench(
    cm: Any,
    *,
    repeat: int,
    warmup: int,
    threads: int,
    compare_model: str | None,
) -> dict[str, Any]:
    """Time npas (and ONNX Runtime on the same ONNX, same threads, runs interleaved)."""
    import time

    rng = np.random.default_rng(0)
    feeds = {
        name: rng.standard_normal(shape, dtype=np.float32)
        for name, shape in zip(cm.input_names, cm.input_shapes, strict=True)
    }
    cm.set_threads(threads)
    run_npas = lambda: cm.run(feeds)  # noqa: E731
    runners = {"npas": run_npas}
    if compare_model:
        runners["onnxruntime"] = _time_onnxruntime(compare_model, feeds, threads)
    for fn in runners.values():
        for _ in range(warmup):
            fn()
    # Interleaved in short blocks, so drift on this shared machine hits both engines alike.
    # Blocks rather than single runs, with a pause at each switch: both engines' workers spin
    # for a while after a run, and with threads > 1 that spinning would steal the cores of
    # the engine that runs next.
    times: dict[str, list[float]] = {k: [] for k in runners}
    block = 1 if threads == 1 or len(runners) == 1 else BENCH_BLOCK
    while len(times["npas"]) < repeat:
        for key, fn in runners.items():
            if block > 1:
                time.sleep(BENCH_SWITCH_PAUSE_S)
                fn()  # one untimed run to wake the engine's workers
            for _ in range(min(block, repeat - len(times[key]))):
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
    report: dict[str, Any] = {k: _summary(v) for k, v in times.items()}
    if compare_model:
        report["speedup_vs_onnxruntime"] = (
            report["onnxruntime"]["median_ms"] / report["npas"]["median_ms"]
        )
        report["check"] = check_outputs(
            run_npas(), runners["onnxruntime"](), cm.output_names,
            fp16=bool(cm.metadata.get("fp16_storage")),
        )  # fmt: skip
    prof = cm.benchmark(repeat=max(5, repeat // 5), warmup=1, threads=threads)
    report["layers"] = [
        {k: layer[k] for k in ("name", "op", "kernel", "scheme", "median_ms")}
        for layer in prof.per_layer
    ]
    return report


def check_outputs(
    ours: dict[str, np.ndarray],
    theirs: Sequence[np.ndarray],
    names: Sequence[str],
    fp16: bool = False,
) -> dict[str, Any]:
    """Compare npas outputs with ONNX Runtime's under the correctness contract (fp16 storage:
    within FP16_RANGE_TOL of each output's range)."""
    worst = 0.0
    ok = True
    rtol, atol = RTOL, ATOL
    for name, ref in zip(names, theirs, strict=True):
        got = ours[name]
        worst = max(worst, float(np.max(np.abs(got - ref))) if got.size else 0.0)
        if fp16:
            rtol = 0.0
            atol = max(atol, FP16_RANGE_TOL * float(np.abs(ref).max()) if ref.size else 0.0)
        ok = ok and got.shape == ref.shape and bool(np.allclose(got, ref, rtol=rtol, atol=atol))
    return {"matches": ok, "max_abs_diff": worst, "rtol": rtol, "atol": atol}


def bench_device(
    cm: Any,
    *,
    repeat: int,
    warmup: int,
    threads: int,
    compare_model: str | None,
) -> dict[str, Any]:
    """Benchmark on a device (qemu, ssh, adb): times measured there by npas_bench or, under
    emulation, executed instructions instead. ONNX Runtime runs on this host, so a speed
    ratio would compare two machines: with a model to compare, only the outputs are checked."""
    res = cm.benchmark(repeat=repeat, warmup=warmup, threads=threads)
    report: dict[str, Any] = {"threads": res.threads}
    if hasattr(res, "instructions_per_inference"):
        keys: tuple[str, ...] = ("instructions_per_inference", "instructions_per_mac")
        report["npas"] = {k: getattr(res, k) for k in keys}
    else:
        keys = ("median_ms",)
        report["npas"] = _summary(res.runs)
    report["layers"] = [
        {k: layer[k] for k in ("name", "op", "kernel", "scheme", *keys)} for layer in res.per_layer
    ]
    if compare_model:
        import onnxruntime as ort

        feeds = cm.random_inputs()
        sess = ort.InferenceSession(compare_model, providers=["CPUExecutionProvider"])
        report["check"] = check_outputs(
            cm.run(feeds), sess.run(None, feeds), cm.output_names,
            fp16=bool(cm.metadata.get("fp16_storage")),
        )  # fmt: skip
        report["compare_note"] = (
            f"onnxruntime runs on this host and npas on {cm.device}: outputs compared, no "
            "speed-up (a ratio across two machines means nothing)"
        )
    return report


def cmd_bench(args: argparse.Namespace) -> int:
    import npas

    target = Path(args.model)
    _require_model_file(target)
    if _is_compiled_dir(target):
        cm = npas.load(str(target), device=args.device, threads=args.threads)
        source = cm.source_model
    else:
        cm = npas.compile(str(target), target=args.target, threads=args.threads)
        source = str(target)
        if args.device is not None and args.device != cm.device:
            cm = npas.load(cm.path, device=args.device, threads=args.threads)
    compare = None
    if args.compare:
        if args.compare != "onnxruntime":
            raise UsageError(f"--compare {args.compare!r}: only 'onnxruntime' is supported")
        if not source or not Path(source).is_file():
            raise UsageError(
                f"--compare onnxruntime needs the source ONNX model, which {target} no longer "
                "finds; run `npasc bench MODEL.onnx --compare onnxruntime` instead"
            )
        compare = source
    run = bench if cm.device == "host" else bench_device
    res = run(cm, repeat=args.repeat, warmup=args.warmup, threads=args.threads,
              compare_model=compare)  # fmt: skip
    report = {
        "model": str(source or target),
        "target": cm.target,
        "device": cm.device,
        "threads": args.threads,
        "isa": cm.isa,
        "macs": int(cm.macs),
        **res,
    }
    info = getattr(cm, "device_info", None)
    if info and info.get("backend") == "opencl":
        report["opencl"] = {k: info.get(k, "") for k in ("platform", "device", "storage")}
    print(format_bench(report, per_layer=args.per_layer))
    if args.json:
        _write_atomic(Path(args.json), json.dumps(report, indent=2) + "\n")
    if "check" in report and not report["check"]["matches"]:
        print("npasc: npas and onnxruntime outputs DIFFER beyond the tolerance", file=sys.stderr)
        return 1
    return 0


def format_bench(report: dict[str, Any], per_layer: bool = False) -> str:
    device = report.get("device", "host")
    counted = "instructions_per_inference" in report["npas"]
    lines = [
        f"{report['model']}  target={report['target']} ({report['isa']})  "
        + ("" if device == "host" else f"device={device}  ")
        + f"threads={report['threads']}  {report['macs'] / 1e9:.2f} GMACs"
    ]
    if "opencl" in report:
        o = report["opencl"]
        lines.append(f"OpenCL: {o['platform']} / {o['device']} ({o['storage']} storage)")
    if counted:  # emulated: instructions, never time
        r = report["npas"]
        per_mac = r["instructions_per_mac"]
        lines.append(f"{'engine':<12} {'instructions/inference':>22} {'per MAC':>9}")
        lines.append(
            f"{'npas':<12} {r['instructions_per_inference']:>22,} "
            f"{'-' if per_mac is None else f'{per_mac:.3f}':>9}"
        )
    else:
        lines.append(f"{'engine':<12} {'median ms':>10} {'p10 ms':>9} {'p90 ms':>9} {'runs':>5}")
    for engine in ("npas", "onnxruntime"):
        if engine in report and not counted:
            r = report[engine]
            lines.append(
                f"{engine:<12} {r['median_ms']:>10.3f} {r['p10_ms']:>9.3f} {r['p90_ms']:>9.3f} "
                f"{r['runs']:>5}"
            )
    if "speedup_vs_onnxruntime" in report:
        lines.append(
            f"speed-up vs onnxruntime (ort median / npas median): "
            f"{report['speedup_vs_onnxruntime']:.2f}x"
        )
    if "check" in report:
        c = report["check"]
        verdict = "match" if c["matches"] else "MISMATCH"
        lines.append(
            f"outputs vs onnxruntime: {verdict} (max |diff| {c['max_abs_diff']:.2e}, "
            f"rtol {c['rtol']}, atol {c['atol']})"
        )
    if "compare_note" in report:
        lines.append(report["compare_note"])
    if per_layer and counted:
        lines.append(f"{'layer':<40} {'op':<16} {'kernel':<48} {'instructions':>14} {'/MAC':>8}")
        for layer in report["layers"]:
            per_mac = layer["instructions_per_mac"]
            lines.append(
                f"{layer['name'][:40]:<40} {layer['op']:<16} {layer['kernel'][:48]:<48} "
                f"{layer['instructions_per_inference']:>14,} "
                f"{'-' if per_mac is None else f'{per_mac:.3f}':>8}"
            )
    elif per_layer:
        lines.append(f"{'layer':<40} {'op':<16} {'kernel':<48} {'ms':>8}")
        for layer in report["layers"]:
            lines.append(
                f"{layer['name'][:40]:<40} {layer['op']:<16} {layer['kernel'][:48]:<48} "
                f"{layer['median_ms']:>8.3f}"
            )
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.model)
    _require_model_file(path)
    if _is_compiled_dir(path):
        meta = json.loads((path / "model.json").read_text())
        print(f"{path}: target {meta.get('target')} isa {meta.get('isa')}, "
              f"{meta.get('macs', 0) / 1e6:.1f} M MACs, "
              f"peak activations {meta.get('peak_activation_bytes', 0)} bytes")  # fmt: skip
        if args.sparsity:
            print(format_sparsity(meta))
            return 0
        for layer in meta.get("layers", []):
            print(f"  {layer['name']:<40} {layer['op']:<16} {layer['kernel']}")
        if args.ir and (path / "ir.txt").is_file():
            print((path / "ir.txt").read_text())
        return 0
    from npas.frontend import load_onnx
    from npas.passes.pipeline import run_pipeline

    shapes = dict(parse_shape_arg(s) for s in args.input_shape)
    graph = load_onnx(str(path), input_shapes=shapes or None)
    if args.sparsity:
        from npas.passes.pipeline import DEFAULT_PIPELINE, shrink_filters

        # the weights' own structure: before removed filters leave the graph
        passes = [p for p in DEFAULT_PIPELINE if p is not shrink_filters]
        print(format_sparsity(run_pipeline(graph, passes)))
        return 0
    if args.ir:
        from npas.ir.printer import format_graph

        print(format_graph(run_pipeline(graph)))
        return 0
    print(f"{path}: opset {graph.opset}, {len(graph.layers)} layers before passes")
    for name in graph.inputs:
        print(f"  input  {name}: {list(graph.shape(name))}")
    for name in graph.outputs:
        print(f"  output {name}: {list(graph.shape(name))}")
    for layer in graph.layers:
        print(f"  {layer.name:<40} {layer.op.value}")
    return 0


def format_sparsity(source: Any) -> str:
    """Per conv/dense layer: weights, zeros, pruning scheme, rate and the scheme's statistics
    (pattern histogram, block occupancy), then the total. `source` is a Graph after the
    pipeline, or a compiled model's metadata (what compile recorded)."""
    from npas.passes.prune.annotate import sparsity_report

    if isinstance(source, dict):
        report = source.get("sparsity")
        if report is None:  # compiled before npas recorded sparsity: the schemes only
            rows = [
                f"{x['name'][-48:]:<48} {x['op']:<16} {x.get('scheme', 'dense')}"
                for x in source.get("layers", [])
                if x["op"] in ("conv2d", "dense")
            ]
            return "\n".join([f"{'layer':<48} {'op':<16} scheme", *rows])
    else:
        report = sparsity_report(source)
    lines = [
        f"{'layer':<48} {'op':<8} {'weights':>10} {'zeros':>7} {'scheme':<14} {'rate':>7}  detail"
    ]
    schemes: dict[str, int] = {}
    for name, row in report["layers"].items():
        n = row["weights"]
        schemes[row["scheme"]] = schemes.get(row["scheme"], 0) + 1
        lines.append(
            f"{name[-48:]:<48} {row['op']:<8} {n:>10} {row['zeros'] / max(n, 1):>7.1%} "
            f"{row['scheme']:<14} {row['rate']:>6.2f}x  {_sparsity_detail(row)}".rstrip()
        )
    t = report["total"]
    if t["weights"]:
        mix = ", ".join(f"{k} {v}" for k, v in sorted(schemes.items()))
        lines.append(
            f"{'total':<48} {'':<8} {t['weights']:>10} {t['zeros'] / t['weights']:>7.1%} "
            f"{'':<14} {t['rate']:>6.2f}x  layers: {mix}"
        )
    return "\n".join(lines)


def _sparsity_detail(row: dict[str, Any]) -> str:
    """The scheme-specific part of a sparsity row."""
    scheme = row["scheme"]
    if scheme == "pattern":
        hist = row["pattern_histogram"]
        kept = max(row["kernels_kept"], 1)
        shown = " ".join(
            f"{''.join(map(str, h['pattern']))}:{h['kernels'] / kept:.0%}" for h in hist[:8]
        )
        more = f" +{len(hist) - 8}" if len(hist) > 8 else ""
        return (
            f"{row['entries']}-entry x{len(hist)}, kernels kept "
            f"{row['kernels_kept'] / max(row['kernels'], 1):.0%}; patterns {shown}{more}"
        )
    if scheme == "block-punched" and row["positions"] == 1:  # 1x1: whole blocks go
        kept = row["blocks"] - row["empty_blocks"]
        return f"{row['bf']}x{row['bc']} blocks, kept {kept}/{row['blocks']}"
    if scheme == "block-punched":
        return (
            f"{row['bf']}x{row['bc']} blocks, occupancy {row['occupancy']:.0%} of "
            f"{row['positions']} positions, empty {row['empty_blocks']}/{row['blocks']}; "
            f"blocks by kept positions {row['occupancy_histogram']}"
        )
    if scheme == "block":
        lo, mean, hi = row["kept_columns"]
        return (
            f"{row['bf']}-row blocks, occupancy {row['occupancy']:.0%} of {row['columns']} "
            f"columns (kept per block {lo}..{hi}, mean {mean:.1f})"
        )
    if scheme == "filter":
        return f"filters kept {row['filters_kept']}/{row['filters']}"
    return ""


def cmd_prune(args: argparse.Namespace) -> int:
    import npas
    from npas.train.cli import run_prune_training, wants_training

    if wants_training(args):  # --config or --method: pruning-aware training (npas/train/)
        return run_prune_training(args)
    if args.scheme is None or args.rate is None:
        raise UsageError(
            "npasc prune needs --scheme and --rate (one-shot magnitude pruning), or --config / "
            "--method with --task or --data (pruning-aware training)"
        )
    model = Path(args.model)
    _require_model_file(model)
    if model.is_dir():
        raise UsageError(f"{model}: npasc prune takes an ONNX model, not a directory")
    shapes = dict(parse_shape_arg(s) for s in args.input_shape)
    params = dict(parse_param_arg(p) for p in args.param)
    res = npas.prune_onnx(
        str(model),
        scheme=args.scheme,
        rate=args.rate,
        layers=args.layers,
        out=args.output,
        input_shapes=shapes or None,
        **params,
    )
    print(res.summary())
    print(f"wrote {res.out}")
    return 0


def parse_param_arg(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with a JSON value (`entries=5`, `library=[[1,3,4,5],[3,4,5,7]]`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise UsageError(f"--param {text!r}: expected KEY=VALUE such as entries=5 or bf=4")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def cmd_zoo(args: argparse.Namespace) -> int:
    from npas import zoo

    if args.zoo_cmd == "list":
        for name in zoo.list_models():
            print(f"{name:<20} {zoo.describe(name)}")
        return 0
    path = zoo.export(
        args.name, Path(args.output), opset=args.opset, seed=args.seed, input_size=args.input_size
    )
    print(f"exported {args.name} -> {path}")
    return 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="npasc", description="npas: compile, run and benchmark pruned CNNs from ONNX."
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("compile", help="compile an ONNX model into a native library")
    c.add_argument("model")
    c.add_argument("--target", choices=TARGETS, default="host")
    c.add_argument("-o", "--output", help="output directory (default: MODEL.npas)")
    c.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3x224x224")
    c.add_argument("--threads", type=int, default=1)
    c.add_argument("--tune", action="store_true")
    c.add_argument("--prune-config", metavar="layers.json")
    c.add_argument("--fp16", action="store_true")
    c.set_defaults(fn=cmd_compile)

    r = sub.add_parser("run", help="run a compiled model on .npy inputs")
    r.add_argument("compiled")
    r.add_argument("--input", action="append", default=[], metavar="NAME=x.npy")
    r.add_argument("--output-dir", default=".")
    r.add_argument("--device", help=DEVICE_HELP)
    r.add_argument("--threads", type=int, default=1)
    r.set_defaults(fn=cmd_run)

    b = sub.add_parser("bench", help="benchmark a compiled model (or compile an ONNX first)")
    b.add_argument("model", metavar="OUT|MODEL.onnx")
    b.add_argument("--target", choices=TARGETS, default="host")
    b.add_argument("--device", help=DEVICE_HELP)
    b.add_argument("--repeat", type=int, default=50)
    b.add_argument("--warmup", type=int, default=5)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--compare", metavar="onnxruntime")
    b.add_argument("--per-layer", action="store_true")
    b.add_argument("--json", metavar="FILE")
    b.set_defaults(fn=cmd_bench)

    i = sub.add_parser("inspect", help="show a model's layers, IR or compiled kernels")
    i.add_argument("model", metavar="MODEL.onnx|OUT")
    i.add_argument("--ir", action="store_true")
    i.add_argument("--sparsity", action="store_true")
    i.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3x224x224")
    i.set_defaults(fn=cmd_inspect)

    pr = sub.add_parser(
        "prune", help="prune an ONNX model into ONNX: one-shot magnitude, or trained (--method)"
    )
    pr.add_argument("model", metavar="MODEL.onnx")
    pr.add_argument("--scheme", choices=PRUNE_SCHEMES)
    pr.add_argument("--rate", type=float, help="keep ~1/RATE of the weights")
    pr.add_argument("--layers", metavar="GLOB", help="ONNX node names or a glob (default: all)")
    pr.add_argument("-o", "--output", required=True, metavar="PRUNED.onnx")
    pr.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="scheme parameter: entries, library_size, library (pattern); bf, bc (blocks)",
    )  # fmt: skip
    pr.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3x224x224")
    from npas.train.cli import add_train_arguments

    add_train_arguments(pr)
    pr.set_defaults(fn=cmd_prune)

    z = sub.add_parser("zoo", help="bundled model definitions exported to ONNX")
    zsub = z.add_subparsers(dest="zoo_cmd", required=True)
    zsub.add_parser("list")
    ze = zsub.add_parser("export")
    ze.add_argument("name")
    ze.add_argument("-o", "--output", required=True)
    ze.add_argument("--opset", type=int, default=17)
    ze.add_argument("--seed", type=int, default=0)
    ze.add_argument("--input-size", type=int, help="square input side (default: the model's)")
    z.set_defaults(fn=cmd_zoo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `npasc MODEL.onnx ...` is `npasc compile MODEL.onnx ...`.
    if argv and argv[0] not in SUBCOMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "compile")
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except NpasError as e:
        print(f"npasc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("npasc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `npasc inspect ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
