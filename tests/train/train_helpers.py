"""Shared pieces of the training tests: the digits data, a narrow DigitsResNet trained dense
for a few epochs (cached per process), configurations, and a way to read an ONNX model's
conv/dense weights by torch module name."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

import npas.train as T

WIDTH = 8  # channels of the narrow test network: every scheme fits, an epoch takes ~0.2 s
EPOCHS = 6
SEED = 0
# The residual network's 3x3 convs (pattern), the 1x1 shortcut and expand convs (block /
# block-punched), the classifier; the stem conv stays dense.
CONV3X3 = [f"layer{i}.body.{j}.0" for i in (1, 2, 3) for j in (0, 1)]
CONV1X1 = ["layer2.shortcut.0", "expand.0"]


def threads() -> None:
    # pytest-xdist runs two workers on two cores: one thread each keeps them from fighting
    torch.set_num_threads(int(os.environ.get("NPAS_TEST_TORCH_THREADS", "1")))


@functools.cache
def data() -> T.Split:
    return T.digits(seed=SEED)


@functools.cache
def _dense_state() -> dict[str, torch.Tensor]:
    threads()
    torch.manual_seed(SEED)
    model = T.DigitsResNet(width=WIDTH)
    s = data()
    model, _ = T.fit(model, s.train, s.val, epochs=EPOCHS, lr=0.1, progress=False)
    return copy.deepcopy(model.state_dict())


def dense_model() -> T.DigitsResNet:
    """A fresh copy of the dense-trained narrow network (eval mode)."""
    model = T.DigitsResNet(width=WIDTH)
    model.load_state_dict(_dense_state())
    return model.eval()


def example() -> torch.Tensor:
    return data().val[:2][0]


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Initializers by name (a torch export names conv/linear weights `<module>.weight`)."""
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def node_of_weight(path: Path) -> dict[str, str]:
    """Torch module name -> ONNX node name, through the weight initializer's name."""
    out = {}
    for n in onnx.load(str(path)).graph.node:
        if n.op_type in ("Conv", "Gemm") and n.input[1].endswith(".weight"):
            out[n.input[1][: -len(".weight")]] = n.name
    return out


def run_ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def train_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`npasc prune ARGS` (its training side), as a user runs it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "npas.cli", "prune", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )
