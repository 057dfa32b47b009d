"""What the OpenCL tier shares: the ctypes harness (cl_harness.py: one kernel on the OpenCL
device here, PoCL in CI), the host tier's graph builders, references and case lists (imported,
not copied: the CPU edge shapes run on OpenCL too), and the checks."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HOST_TESTS = Path(__file__).resolve().parents[1] / "host"
if str(HOST_TESTS) not in sys.path:
    sys.path.insert(0, str(HOST_TESTS))

import cl_harness as CL  # noqa: E402
import kernel_harness as H  # noqa: E402

from npas.codegen.kernel import LayerKernel  # noqa: E402
from npas.codegen.lower import lower_layer  # noqa: E402
from npas.codegen.naming import parse_kernel_name  # noqa: E402
from npas.codegen.target import get_target  # noqa: E402
from npas.ir.graph import Graph, Layer  # noqa: E402

__all__ = ["CL", "FP16_RTOL", "H", "check", "lower", "run"]

# fp16 storage rounds every stored value to 11 significant bits: outputs are compared to the
# fp32 reference relative to their own magnitude.
FP16_RTOL = 2e-2


def lower(layer: Layer, graph: Graph) -> LayerKernel:
    """The OpenCL kernel of one layer, checked to be an OpenCL kernel."""
    kernel = lower_layer(layer, graph, get_target("opencl"))
    assert kernel is not None and kernel.cl is not None, f"{layer.name}: not an OpenCL kernel"
    assert parse_kernel_name(kernel.kernel)["isa"] == "opencl", kernel.kernel
    return kernel


def run(
    layer: Layer,
    graph: Graph,
    inputs: Sequence[np.ndarray],
    *,
    fp16: bool = False,
) -> list[np.ndarray]:
    """Lower `layer` for OpenCL and run it on `inputs` (LayerArgs::in order)."""
    kernel = lower(layer, graph)
    shapes = [graph.shape(n) for n in layer.outputs]
    return CL.run(kernel, inputs, shapes, fp16=fp16)


def check(got: np.ndarray, want: np.ndarray, *, fp16: bool = False, what: str = "") -> None:
    want = np.asarray(want, np.float64)
    if fp16:
        scale = max(float(np.abs(want).max()), 1e-3)
        np.testing.assert_allclose(got, want, rtol=FP16_RTOL, atol=FP16_RTOL * scale, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4, err_msg=what)
