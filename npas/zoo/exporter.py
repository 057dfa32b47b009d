"""Build a zoo model with deterministic weights and export it to ONNX (imports torch)."""

from __future__ import annotations

import os
import uuid
import warnings
from pathlib import Path

import onnx
import torch

from npas.zoo.registry import ModelSpec
from npas.zoo.weights import initialise


def build(spec: ModelSpec, input_size: tuple[int, int], seed: int) -> torch.nn.Module:
    """The eval-mode torch module with the zoo's deterministic weights."""
    return initialise(spec.build(input_size), input_size, seed)


def to_onnx(model: torch.nn.Module, input_size: tuple[int, int], path: Path, opset: int) -> Path:
    """Export `model` to `path` atomically (temp file in the same folder, then rename)."""
    # Batch 2, not 1, so that nothing in the trace can specialise on a unit batch.
    return trace_to_onnx(model, torch.zeros((2, 3, *input_size)), path, opset)


def trace_to_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    opset: int,
    *,
    full_check: bool = True,
) -> Path:
    """Trace eval-mode `model` on `example` into `path` (input "input", output "output", the
    batch dim symbolic), checked by the ONNX checker (`full_check`: with strict shape
    inference) and written atomically: a temp file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name, so concurrent exports of the same model (e.g. pytest-xdist) never collide.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is "legacy" since torch 2.9, but the dynamo one needs
            # onnxscript (not installed) and runs its own graph optimiser; we want the graph as
            # traced.
            warnings.simplefilter("ignore", DeprecationWarning)
            # Its advice to skip constant folding is for models in training mode; ours is not.
            warnings.filterwarnings("ignore", "It is recommended that constant folding")
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                # PRESERVE on an eval-mode model exports inference BN but skips the exporter's
                # Conv+BN fusion (which EVAL would run), so BN folding stays npas's job.
                training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=True,
            )
        onnx.checker.check_model(str(tmp), full_check=full_check)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
