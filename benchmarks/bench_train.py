"""Pruning-aware training on the digits task: accuracy and latency per scheme and method.

    .venv/bin/python benchmarks/bench_train.py [--epochs 8] [--dense-epochs 15] [--repeat 300]
        [--width 32] [--size 16] [--threads 1] [--results]

A DigitsResNet (npas/train/models.py) is trained dense on scikit-learn's digits (16x16), then,
from those weights and on the same split, pruned by each (scheme, method):

- pattern (4-entry, 8-pattern library) + connectivity at 6x on every 3x3 conv: RGL, one-shot
  magnitude + fine-tuning, ADMM;
- block-punched (8x4 blocks) at 5x on every conv but the first (3x3 and 1x1): RGL, one-shot;
- filter at 2x on the same convs: RGL, one-shot.

Every method gets the same epoch budget (RGL/ADMM: half regularised, half masked retraining;
one-shot: all masked fine-tuning). Each result is exported to ONNX, compiled by
npas.compile(target="host") (the cost model picks sparse or dense kernels per layer) and timed
against the dense model's compile and ONNX Runtime on the same ONNX, same process, one input,
runs interleaved, medians. Prints a markdown table; `--results` writes it into
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sparsity import SPARSE_TOKENS, _ort, interleaved

import npas
import npas.train as T
from npas.codegen.naming import parse_kernel_name

CONVS = "layer*", "expand.0"  # every conv but the stem (which globs leave dense anyway)
CASES = [
    ("pattern 6x (3x3)", {"*": {"scheme": "pattern", "rate": 6.0}}, ("rgl", "oneshot", "admm")),
    (
        "block-punched 5x",
        {g: {"scheme": "block-punched", "rate": 5.0} for g in CONVS},
        ("rgl", "oneshot"),
    ),
    ("filter 2x", {g: {"scheme": "filter", "rate": 2.0} for g in CONVS}, ("rgl", "oneshot")),
]


def pruned_rate(report: T.PruneReport) -> float:
    """Rate over the layers the config pruned (weights / kept)."""
    rows = [r for r in report.layers if r.scheme != "dense"]
    return sum(r.weights for r in rows) / max(sum(r.kept for r in rows), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--dense-epochs", type=int, default=15)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="npas-bench-train-"))
    split = T.digits(seed=args.seed, size=args.size)
    example = split.val[:1][0]

    t0 = time.time()
    torch.manual_seed(args.seed)
    dense, log = T.fit(
        T.DigitsResNet(args.width), split.train, split.val, epochs=args.dense_epochs, lr=0.05,
        seed=args.seed, progress=False,
    )  # fmt: skip
    dense_acc = log[-1].val_accuracy
    dense_state = {k: v.clone() for k, v in dense.state_dict().items()}
    dense_path = T.export_onnx(dense, work / "dense.onnx", example)
    dense_cm = npas.compile(str(dense_path), target="host")
    feeds = {"input": example.numpy()}
    print(f"dense: {dense_acc:.2%} after {args.dense_epochs} epochs ({time.time() - t0:.0f} s)",
          file=sys.stderr)  # fmt: skip

    rows = []
    for label, layers, methods in CASES:
        config = {"default": {"scheme": "dense"}, "layers": layers}
        for method in methods:
            t0 = time.time()
            model = T.DigitsResNet(args.width)
            model.load_state_dict(dense_state)
            model, report = T.prune(model, config, split.train, split.val, method=method,
                                    epochs=args.epochs, seed=args.seed, progress=False)  # fmt: skip
            path = T.export_onnx(model, work / f"{label.split()[0]}-{method}.onnx", example)
            cm = npas.compile(str(path), target="host")
            with torch.no_grad():
                ref = model(example).numpy()
            err = float(np.abs(cm.run(feeds)["output"] - ref).max())
            sparse = sum(
                1 for x in cm.layers
                if x["kernel"].startswith("npas_")
                and parse_kernel_name(x["kernel"])["scheme"] in SPARSE_TOKENS
            )  # fmt: skip
            cm.set_threads(args.threads)
            dense_cm.set_threads(args.threads)
            ort_dense = _ort(str(dense_path), args.threads)
            ms = interleaved(
                {
                    "pruned": lambda cm=cm: cm.run(feeds),
                    "dense": lambda: dense_cm.run(feeds),
                    "ort_dense": lambda o=ort_dense: o(feeds),
                },
                args.repeat,
                args.threads,
            )
            rows.append((label, method, report, pruned_rate(report), ms, sparse, err))
            print(f"{label} {method}: {report.accuracy_after:.2%} ({time.time() - t0:.0f} s)",
                  file=sys.stderr)  # fmt: skip

    lines = [
        f"DigitsResNet(width={args.width}) on digits {args.size}x{args.size} "
        f"({len(split.train)} train / {len(split.val)} test images), dense {args.dense_epochs} "
        f"epochs; pruning {args.epochs} epochs from the dense weights; host, "
        f"{args.threads} thread(s), batch 1, medians of {args.repeat} interleaved runs.",
        "",
        "| scheme | method | dense acc | pruned acc | change | rate (pruned layers) | "
        "rate (model) | sparse kernels | npas dense ms | npas pruned ms | dense/pruned | "
        "ORT dense ms | ORT/npas pruned | max abs err vs torch |",
        "|" + "---|" * 14,
    ]
    for label, method, rep, rate, ms, sparse, err in rows:
        change = (rep.accuracy_after - dense_acc) * 100
        lines.append(
            f"| {label} | {method} | {dense_acc:.2%} | {rep.accuracy_after:.2%} | "
            f"{change:+.2f} pt | {rate:.2f}x | {rep.rate:.2f}x | {sparse} | "
            f"{ms['dense']:.4f} | {ms['pruned']:.4f} | {ms['dense'] / ms['pruned']:.2f}x | "
            f"{ms['ort_dense']:.4f} | {ms['ort_dense'] / ms['pruned']:.2f}x | {err:.1e} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.results:
        from results import write_section

        write_section(
            "bench_train",
            ("python benchmarks/bench_train.py " + " ".join(sys.argv[1:])).strip(),
            table,
            note="accuracy on the held-out digits split; latency: npas and ONNX Runtime in the "
            "same process, runs interleaved, medians",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
