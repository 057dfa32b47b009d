"""The training side of `npasc prune`:

    npasc prune MODEL.onnx --config layers.json --method rgl --task digits --epochs 10 -o OUT.onnx
    npasc prune MODEL.onnx --scheme pattern --rate 6 --method admm --data DIR -o OUT.onnx

`--config` or `--method` switch `npasc prune` from one-shot ONNX pruning to training: the
model is converted to torch (OnnxModule), pruned by the method on the data, and its trained
weights are written back into the same ONNX graph. `--scheme/--rate/--layers/--param` without
`--config` give the configuration of a single rule. A checkpoint is written after every epoch
(default OUT.onnx.ckpt); `--resume` continues from it.

`add_train_arguments(parser)` adds the options to the `prune` sub-parser;
`run_prune_training(args)` runs them. `python -m npas.train.cli MODEL.onnx ...` is the same
command on its own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from npas.errors import NpasError

METHOD_CHOICES = ("oneshot", "rgl", "admm")
TASK_CHOICES = ("digits",)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options of `npasc prune` (they need --scheme/--rate not to be required)."""
    g = parser.add_argument_group("pruning-aware training (--config or --method)")
    g.add_argument(
        "--config",
        metavar="layers.json",
        help="per-layer schemes and rates (the --prune-config format)",
    )
    g.add_argument(
        "--method",
        choices=METHOD_CHOICES,
        help="train: oneshot (+ masked fine-tuning), rgl (reweighted group lasso) or "
        "admm; default rgl when --config is given",
    )
    g.add_argument("--task", choices=TASK_CHOICES, help="bundled data set: digits (scikit-learn)")
    g.add_argument(
        "--data",
        metavar="DIR",
        help="image folder: DIR/<class>/*.png|jpg|npy (or DIR/train, DIR/val)",
    )
    g.add_argument(
        "--image-size",
        type=int,
        metavar="S",
        help="resize images to SxS (default: the model's input size)",
    )
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument(
        "--finetune-epochs",
        type=int,
        metavar="N",
        help="masked retraining epochs at the end (default: half of --epochs)",
    )
    g.add_argument("--lr", type=float, default=0.01)
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    g.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="method option: lam, eps (rgl); rho, rho_growth, rho_max (admm)",
    )
    g.add_argument("--checkpoint", metavar="FILE", help="default: OUT.onnx.ckpt")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")  # fmt: skip


def wants_training(args: argparse.Namespace) -> bool:
    """Whether `npasc prune` arguments ask for training rather than one-shot pruning: a
    configuration, a method or training data."""
    return any(getattr(args, k, None) for k in ("config", "method", "task", "data"))


def _config_of(args: argparse.Namespace) -> Any:
    if args.config:
        if getattr(args, "scheme", None) or getattr(args, "rate", None) is not None:
            raise NpasError("--config replaces --scheme/--rate; give one or the other")
        return Path(args.config)
    if not getattr(args, "scheme", None) or getattr(args, "rate", None) is None:
        raise NpasError(
            "training needs a configuration: --config layers.json, or --scheme S --rate R "
            "(with --layers GLOB to choose layers)"
        )
    from npas.cli import parse_param_arg

    params = dict(parse_param_arg(p) for p in getattr(args, "param", []) or [])
    key = getattr(args, "layers", None) or "*"
    return {"default": {"scheme": "dense"},
            "layers": {key: {"scheme": args.scheme, "rate": args.rate, **params}}}  # fmt: skip


def _options(args: argparse.Namespace) -> dict[str, float]:
    out = {}
    for text in args.option:
        key, sep, value = text.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise NpasError(f"--option {text!r}: expected KEY=NUMBER such as lam=0.002")
    return out


def _model_input(proto: Any) -> tuple[int | None, ...]:
    """The declared [C, H, W] of the model's first graph input (None where symbolic)."""
    inits = {t.name for t in proto.graph.initializer}
    for i in proto.graph.input:
        if i.name in inits:
            continue
        dims = i.type.tensor_type.shape.dim
        return tuple(d.dim_value if d.dim_value > 0 else None for d in dims)[1:]
    raise NpasError("the model has no input")


class _Channels:
    """A dataset of grey images repeated over the model's channels."""

    def __init__(self, data: Any, channels: int) -> None:
        self.data, self.channels = data, channels

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Any:
        x, y = self.data[i]
        return x.expand(self.channels, *x.shape[1:]), y


def run_prune_training(args: argparse.Namespace) -> int:
    """`npasc prune MODEL.onnx --config|--method ...`: train, write OUT.onnx, print the report."""
    from .api import export_onnx, prune
    from .data import digits, image_folder
    from .onnx_torch import OnnxModule

    model_path = Path(args.model)
    if not model_path.is_file():
        raise NpasError(f"{model_path}: no such ONNX file")
    out = Path(args.output)
    config = _config_of(args)
    method = args.method or "rgl"
    if bool(args.task) == bool(args.data):
        raise NpasError("training needs data: give exactly one of --task digits or --data DIR")
    module = OnnxModule(model_path)
    want = _model_input(module.proto)
    size = args.image_size
    if size is None and len(want) == 3 and want[1] is not None and want[1] == want[2]:
        size = want[1]
    split = digits(args.seed, size or 16) if args.task else image_folder(args.data, args.seed, size)
    train: Any = split.train
    val: Any = split.val
    c = split.input_shape[0]
    if len(want) != 3 or (want[0] is not None and want[0] != c):
        if len(want) == 3 and c == 1 and want[0] is not None:
            train, val = _Channels(train, want[0]), _Channels(val, want[0])
        else:
            raise NpasError(
                f"{model_path}: the model takes input [N, {', '.join(map(str, want))}] but the "
                f"data gives [N, {', '.join(map(str, split.input_shape))}]; choose matching "
                "data or --image-size"
            )
    ckpt = Path(args.checkpoint) if args.checkpoint else out.with_name(out.name + ".ckpt")
    pruned, report = prune(
        module, config, train, val, method=method, epochs=args.epochs,
        finetune_epochs=args.finetune_epochs, lr=args.lr, batch_size=args.batch_size,
        seed=args.seed, device=args.device, checkpoint=ckpt, resume=args.resume,
        progress=not args.no_progress, **cast(dict[str, Any], _options(args)),
    )  # fmt: skip
    export_onnx(pruned, out)
    print(report.summary())
    print(f"wrote {out} (checkpoint {ckpt})")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m npas.train.cli", description="pruning-aware training of an ONNX model"
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("-o", "--output", required=True, metavar="PRUNED.onnx")
    p.add_argument("--scheme", choices=("pattern", "block-punched", "block", "filter",
                                        "unstructured"))  # fmt: skip
    p.add_argument("--rate", type=float)
    p.add_argument("--layers", metavar="GLOB")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    add_train_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run_prune_training(args)
    except NpasError as e:
        print(f"npasc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
