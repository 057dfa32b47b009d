"""The contract between kernel lowerings and the graph executor emitter.

A lowering turns one IR Layer into a LayerKernel: C++ sources (content-addressed, one
translation unit per distinct kernel), the extern "C" entry to call, the constants it wants
packed into weights.bin (in the order it reads them from LayerArgs::w), and its scratch need.
The emitter never looks inside a kernel; a kernel never sees another layer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClLaunch:
    """An OpenCL layer: one __kernel of the model's program and how it is enqueued.

    The kernel's parameters are fixed by npas/codegen/opencl/_cl.j2: for every input, output
    and weight blob in LayerArgs order, a buffer and an element offset into it. `global_size`
    is a multiple of `local_size` (when given); kernels guard their own tails."""

    function: str  # __kernel name, unique per source text
    source: str  # OpenCL C defining `function` (the shared prelude is not included)
    global_size: tuple[int, ...]  # 1 to 3 dimensions
    local_size: tuple[int, ...] | None = None  # None: the OpenCL driver chooses


@dataclass(frozen=True)
class LayerKernel:
    kernel: str  # parseable kernel name, e.g. npas_f32_conv3x3_relu_dense_6x16__avx2
    entry: str  # extern "C" symbol, unique per source text
    sources: dict[str, str]  # file name -> text; names are content hashes
    weights: tuple[np.ndarray, ...] = field(default=(), compare=False)  # packed, float32
    scratch_bytes_per_thread: int = 0
    macs: int = 0  # multiply-accumulates of the layer (for instructions/MAC, GFLOP/s)
    inputs: tuple[str, ...] = ()  # activation Value names the kernel reads (LayerArgs::in)
    isa: str = "scalar"  # scalar | avx2 | avx512 | neon | opencl
    cl: ClLaunch | None = None  # OpenCL layers: the device kernel (sources is then empty)


def content_hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]
