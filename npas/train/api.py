"""`npas.train.prune` and `npas.train.fit`: pruning-aware training of a PyTorch module or an
ONNX model, and `export_onnx`, the way back to a plain ONNX file whose zeros the compiler
detects as the trained schemes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from npas.errors import NpasError
from npas.passes.prune import rate_of
from npas.zoo.exporter import trace_to_onnx

from .algorithms import METHODS, make_method
from .config import PruneSpec, TrainLayer, as_spec, assign_rules, trace_layers
from .data import loader
from .masks import Masks
from .onnx_torch import OnnxModule, write_onnx
from .trainer import EpochLog, Schedule, Trainer, accuracy, pick_device


@dataclass
class LayerReport:
    name: str
    scheme: str
    rate_asked: float
    rate: float  # reached: weights / kept weights
    weights: int
    kept: int
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PruneReport:
    """What `prune` did: accuracies before and after, per-layer rates reached, per-epoch log."""

    method: str
    accuracy_before: float
    accuracy_after: float
    layers: list[LayerReport]
    history: list[EpochLog]
    weights: int = 0  # all conv/linear weights of the model
    kept: int = 0

    @property
    def rate(self) -> float:
        return self.weights / self.kept if self.kept else float("inf")

    def summary(self) -> str:
        width = min(max([len(x.name) for x in self.layers] + [5]), 48)
        lines = [f"{'layer':<{width}} {'scheme':<14} {'asked':>7} {'reached':>8}"]
        for x in self.layers:
            asked = f"{x.rate_asked:.2f}x" if x.scheme != "dense" else "-"
            lines.append(f"{x.name[-width:]:<{width}} {x.scheme:<14} {asked:>7} {x.rate:>7.2f}x")
        lines.append(
            f"{self.method}: accuracy {self.accuracy_before:.2%} -> {self.accuracy_after:.2%}; "
            f"conv/linear weights {self.weights} -> {self.kept} kept ({self.rate:.2f}x)"
        )
        return "\n".join(lines)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    import random

    random.seed(seed)


def _as_module(model: Any) -> nn.Module:
    if isinstance(model, nn.Module):
        return model
    if isinstance(model, str | os.PathLike | bytes | onnx.ModelProto):
        return OnnxModule(model)
    raise NpasError(
        f"model of type {type(model).__name__}: pass a torch.nn.Module or an ONNX model "
        "(path, bytes or onnx.ModelProto)"
    )


def _prepare(
    model: Any,
    train: Dataset | DataLoader,
    val: Dataset | DataLoader,
    batch_size: int,
    seed: int,
    device: str | torch.device | None,
) -> tuple[nn.Module, DataLoader, DataLoader, torch.device]:
    """Seed everything, then the module on its device and the (shuffled) training and
    validation loaders: what every run starts from, in the order its determinism needs."""
    _seed_all(seed)
    dev = pick_device(device)
    module = _as_module(model).to(dev)
    return module, loader(train, batch_size, True, seed), loader(val, 256, False, seed), dev


def _example(data: DataLoader) -> torch.Tensor:
    for x, _ in data:
        return x[:1]
    raise NpasError("the training data is empty")


def _report(method: str, layers: list[TrainLayer], masks: Masks | None) -> tuple:
    rows, total, kept = [], 0, 0
    for lay in layers:
        n = int(lay.weight.numel())
        sp = masks.sparsity.get(lay.name) if masks is not None else None
        if sp is None or sp.mask is None or sp.scheme == "dense":
            k = n
            rows.append(LayerReport(lay.name, "dense", 1.0, 1.0, n, n))
        else:
            k = int(np.count_nonzero(sp.mask))
            params = {key: v for key, v in sp.params}
            rows.append(LayerReport(lay.name, sp.scheme, lay.rule.rate, rate_of(sp.mask), n, k,
                                    params))  # fmt: skip
        total, kept = total + n, kept + k
    return rows, total, kept


def fit(
    model: nn.Module,
    train: Dataset | DataLoader,
    val: Dataset | DataLoader,
    epochs: int = 20,
    *,
    lr: float = 0.05,
    batch_size: int = 64,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, list[EpochLog]]:
    """Dense training (SGD with Nesterov momentum, cosine learning rate); returns the module and
    the per-epoch log. Deterministic for a given seed (on the same device and thread count)."""
    model, tl, vl, dev = _prepare(model, train, val, batch_size, seed, device)
    fp = {"kind": "fit", "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
          "weight_decay": weight_decay}  # fmt: skip
    trainer = Trainer(
        model, tl, vl, Schedule(epochs, 0, lr, weight_decay=weight_decay), dev,
        checkpoint=checkpoint, fingerprint=fp, progress=progress,
    )  # fmt: skip
    if resume:
        trainer.resume()
    state = trainer.run()
    model.eval()
    return model, state.history


def prune(
    model: Any,
    config: Any,
    train: Dataset | DataLoader,
    val: Dataset | DataLoader,
    method: str = "rgl",
    epochs: int = 10,
    *,
    finetune_epochs: int | None = None,
    lr: float = 0.01,
    batch_size: int = 64,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: str | torch.device | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    **options: float,
) -> tuple[nn.Module, PruneReport]:
    """Prune `model` (a torch module, or an ONNX model which is converted to an `OnnxModule`)
    to the per-layer `config` (a PruneSpec, a JSON path, or a dict, see config.py) by `method`:

    - "oneshot": magnitude projection, then `epochs` of masked fine-tuning;
    - "rgl": reweighted group lasso for `epochs - finetune_epochs` epochs, then projection and
      masked retraining (options: lam, eps);
    - "admm": ADMM for `epochs - finetune_epochs` epochs, then projection and masked
      retraining (options: rho, rho_growth, rho_max).

    `finetune_epochs` defaults to half the epochs. `train`/`val` are datasets or DataLoaders of
    (image, label). With `checkpoint`, the state is saved after every epoch; `resume=True`
    continues from it, finishing with the same result as an uninterrupted run. Returns the
    pruned module (masks applied, eval mode) and a PruneReport."""
    if method not in METHODS:
        raise NpasError(f"unknown pruning method {method!r}; known: {', '.join(METHODS)}")
    if epochs < 0:
        raise NpasError(f"epochs={epochs}: expected 0 or more")
    spec = as_spec(config)
    ft = epochs // 2 if finetune_epochs is None else finetune_epochs
    if not 0 <= ft <= epochs:
        raise NpasError(f"finetune_epochs={ft} must be between 0 and epochs={epochs}")
    reg = 0 if method == "oneshot" else epochs - ft
    module, tl, vl, dev = _prepare(model, train, val, batch_size, seed, device)
    example = _example(tl).to(dev)
    layers = trace_layers(module, example)
    assign_rules(module, layers, spec, example)
    if not any(lay.pruned for lay in layers):
        raise NpasError(
            "the prune config prunes no layer of this model; the layers are: "
            + ", ".join(lay.name for lay in layers[:8])
        )
    masks = Masks(layers)
    algo = make_method(method, layers, **options)
    fp = {
        "kind": "prune", "method": method, "config": spec.to_json(), "epochs": epochs,
        "reg_epochs": reg, "lr": lr, "batch_size": batch_size, "seed": seed,
        "weight_decay": weight_decay, "options": dict(algo.options),
        "layers": [lay.name for lay in layers],
    }  # fmt: skip
    trainer = Trainer(
        module, tl, vl, Schedule(epochs, reg, lr, weight_decay=weight_decay), dev, algo, masks,
        checkpoint=checkpoint, fingerprint=fp, progress=progress, stop_after=stop_after,
    )  # fmt: skip
    resumed = resume and trainer.resume()
    if not resumed:
        trainer.state.extra["accuracy_before"] = accuracy(module, vl, dev)
    state = trainer.run()
    module.eval()
    done = state.epoch >= epochs
    after = state.history[-1].val_accuracy if state.history and done else accuracy(module, vl, dev)
    rows, total, kept = _report(method, layers, masks)
    report = PruneReport(
        method, state.extra["accuracy_before"], after, rows, state.history, total, kept
    )
    return module, report


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    example: torch.Tensor | None = None,
    opset: int = 17,
) -> Path:
    """Write `model` as a plain ONNX file (atomically). An `OnnxModule` goes back into its own
    graph (node names kept); any other module is exported by torch.onnx.export from `example`
    (input "input", output "output", dynamic batch), batch norms kept for npas to fold."""
    out = Path(path)
    if isinstance(model, OnnxModule):
        return write_onnx(model, out)
    if example is None:
        raise NpasError("export_onnx of a PyTorch module needs an example input tensor")
    was = model.training
    model.eval()
    example = example.detach().to(next(model.parameters()).device)
    if example.shape[0] == 1:  # batch 2, so that nothing in the trace specialises on batch 1
        example = torch.cat([example, example])
    if out.is_dir():
        raise NpasError(f"{out} is a directory; give the ONNX file's name")
    try:
        return trace_to_onnx(model, example, out, opset, full_check=False)
    finally:
        model.train(was)


__all__ = ["LayerReport", "PruneReport", "PruneSpec", "export_onnx", "fit", "prune"]
