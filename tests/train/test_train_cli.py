"""The training side of `npasc prune` (`python -m npas.train.cli`, which npasc prune runs for
--config/--method): an ONNX model in, a pruned ONNX model out whose zeros npas detects as the
configured schemes; --resume finishes an interrupted run with the same bytes; user errors exit
2 with a message and no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import dense_model, example, onnx_weights, run_ort, train_cli

import npas.train as T
from npas.frontend import load_onnx
from npas.passes.prune import annotate_sparsity, sparsity_report


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return T.export_onnx(dense_model(), tmp_path_factory.mktemp("m") / "digits.onnx", example())


def test_cli_trains_and_writes_detected_schemes(model: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "layers.json"
    cfg.write_text(json.dumps({
        "default": {"scheme": "dense"},
        "layers": {"/layer*/Conv": {"scheme": "pattern", "rate": 6.0},
                   "/expand/expand.0/Conv": {"scheme": "block", "rate": 2.0}},
    }))  # fmt: skip
    out = tmp_path / "pruned.onnx"
    r = train_cli(str(model), "--config", str(cfg), "--method", "rgl", "--task", "digits",
                  "--epochs", "2", "-o", str(out), "--no-progress")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "rgl: accuracy" in r.stdout and "pattern" in r.stdout
    rows = sparsity_report(annotate_sparsity(load_onnx(str(out))))["layers"]
    pattern = [n for n, row in rows.items() if row["scheme"] == "pattern"]
    assert len(pattern) == 6 and all(rows[n]["rate"] == pytest.approx(6.0) for n in pattern)
    assert rows["/expand/expand.0/Conv"]["scheme"] == "block"
    assert rows["/stem/stem.0/Conv"]["scheme"] == "dense"
    # same graph, trained weights: ONNX Runtime runs it, the names are the original ones
    x = example().numpy()
    assert run_ort(out, x).shape == (2, 10)
    assert set(onnx_weights(out)) >= set(onnx_weights(model)) - {"layer2.shortcut.1.bias"}


def test_cli_killed_run_resumes_to_the_same_model(model: Path, tmp_path: Path) -> None:
    args = [str(model), "--method", "admm", "--scheme", "block-punched", "--rate", "3",
            "--layers", "/layer3/*", "--task", "digits", "--epochs", "6",
            "--no-progress"]  # fmt: skip
    full = tmp_path / "full.onnx"
    r = train_cli(*args, "-o", str(full))
    assert r.returncode == 0, r.stderr
    # the same run, killed (SIGKILL) as soon as its first checkpoint is on disk
    cut = tmp_path / "cut.onnx"
    ckpt = tmp_path / "cut.ckpt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "npas.train.cli", *args, "-o", str(cut), "--checkpoint", str(ckpt)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert not cut.exists(), "the run finished before it could be killed"
    done = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= done < 6
    r = train_cli(*args, "-o", str(cut), "--checkpoint", str(ckpt), "--resume")
    assert r.returncode == 0, r.stderr
    a, b = onnx_weights(full), onnx_weights(cut)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("extra,needle", [
    (["--task", "digits"], "needs a configuration"),
    (["--method", "rgl", "--scheme", "pattern", "--rate", "6"], "needs data"),
    (["--method", "rgl", "--scheme", "pattern", "--rate", "6", "--data", "/nonexistent"],
     "no such directory"),
    (["--config", "/nonexistent.json", "--task", "digits"], "cannot read"),
    (["--method", "rgl", "--scheme", "pattern", "--rate", "6", "--layers", "nope*",
      "--task", "digits"], "matches no conv/dense layer"),
    (["--method", "rgl", "--scheme", "pattern", "--rate", "6", "--task", "digits",
      "--option", "lam"], "KEY=NUMBER"),
])  # fmt: skip
def test_cli_user_errors(model: Path, tmp_path: Path, extra: list[str], needle: str) -> None:
    r = train_cli(str(model), *extra, "--epochs", "1", "-o", str(tmp_path / "o.onnx"))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.onnx").exists()
