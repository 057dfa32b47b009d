"""What every OpenCL kernel family shares: rendering a template into a content-addressed
__kernel (a LayerKernel whose `cl` is set), work sizes, and the OpenCL C spelling of
activations and float literals.

Manifests and variant selection are the host ones (npas.codegen.host.common.Variant, select,
lower_with): an OpenCL variant lists "opencl" in its isas.

Every kernel has the parameter list of `_cl.j2`'s `signature` macro and reads and writes
through the prelude's LD/ST/LD4/ST4 macros (npas/codegen/opencl/prelude.cl), so one template
serves fp32 and fp16 storage. Activations stay in NCHW, exactly as the CPU targets and the
memory plan lay them out; kernels vectorise over 4 output channels (weights packed in blocks
of 4 filters, read with one LD4) and/or 4 consecutive outputs along W.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npas.codegen.host.common import Variant
from npas.codegen.kernel import ClLaunch, LayerKernel, content_hash
from npas.codegen.naming import kernel_name
from npas.codegen.templates import render
from npas.ir.attrs import Activation, Epilogue, UnaryAttrs
from npas.ir.graph import Layer
from npas.ir.ops import Op

ISA = "opencl"
PRELUDE = (Path(__file__).resolve().parent / "prelude.cl").read_text()
_FUNCTION_PLACEHOLDER = "NPAS_FUNCTION_PLACEHOLDER"
# Work-group size most layers start from: a multiple of every mobile GPU's SIMD width
# (Adreno 64/128 fibers per wave, Mali 4-16 lanes per engine) that every device supports.
DEFAULT_GROUP = 64


def clfloat(x: float) -> str:
    """An OpenCL C float literal that round-trips x (INFINITY/NAN are OpenCL C macros)."""
    x = float(x)
    if math.isnan(x):
        return "NAN"
    if math.isinf(x):
        return "INFINITY" if x > 0 else "(-INFINITY)"
    text = repr(x)
    if "e" not in text and "." not in text:
        text += ".0"
    return text + "f"


def round_up(n: int, m: int) -> int:
    return -(-int(n) // m) * m


def global_1d(n: int, group: int = DEFAULT_GROUP) -> tuple[tuple[int], tuple[int]]:
    """(global, local) sizes of a 1-D launch over n work-items; the kernel guards gid >= n."""
    n = max(int(n), 1)
    group = max(1, min(group, n))
    return (round_up(n, group),), (group,)


# ---- activations ----

# The OpenCL C expression of each unary op on `x` (float or floatN alike); `a`/`b` stand for
# the op's alpha/beta literals.
_UNARY_CL: dict[Op, str] = {
    Op.IDENTITY: "{x}",
    Op.RELU: "fmax({x}, 0.0f)",
    Op.CLIP: "fmin(fmax({x}, {a}), {b})",
    Op.LEAKY_RELU: "select({a} * {x}, {x}, {x} >= 0.0f)",
    Op.ELU: "select({a} * (exp({x}) - 1.0f), {x}, {x} > 0.0f)",
    Op.HARDSWISH: "({x} * clamp({x} * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f))",
    Op.HARDSIGMOID: "clamp({a} * {x} + {b}, 0.0f, 1.0f)",
    Op.SIGMOID: "(1.0f / (1.0f + exp(-{x})))",
    Op.TANH: "tanh({x})",
    Op.SILU: "({x} / (1.0f + exp(-{x})))",
    Op.EXP: "exp({x})",
    Op.LOG: "log({x})",
    Op.SQRT: "sqrt({x})",
    Op.NEG: "(-{x})",
    Op.ABS: "fabs({x})",
    Op.RECIPROCAL: "(1.0f / {x})",
}


def unary_cl(op: Op, alpha: float, beta: float, x: str) -> str:
    """OpenCL C applying unary `op` to the expression `x` (an identifier: it may appear
    twice). Works on float and float4 alike."""
    if op not in _UNARY_CL:
        raise NotImplementedError(f"no OpenCL spelling for unary op {op.value}")
    return _UNARY_CL[op].format(x=x, a=clfloat(alpha), b=clfloat(beta))


def act_cl(act: Activation | None, x: str) -> str:
    """OpenCL C of a fused activation on `x` (x itself when there is none)."""
    if act is None:
        return x
    return unary_cl(act.op, act.alpha, act.beta, x)


def layer_unary_cl(layer: Layer, x: str) -> str:
    attrs = layer.attrs if isinstance(layer.attrs, UnaryAttrs) else UnaryAttrs()
    return unary_cl(layer.op, attrs.alpha, attrs.beta, x)


# ---- rendering ----


def finish_cl(
    *,
    op_token: str,
    scheme: str,
    template: str,
    params: dict[str, Any],
    n_in: int,
    n_out: int,
    global_size: Sequence[int],
    local_size: Sequence[int] | None = None,
    epilogue: Epilogue | tuple[str, ...] | None = None,
    weights: Sequence[np.ndarray] = (),
    inputs: Sequence[str] = (),
    macs: int = 0,
    tile: tuple[int, int] | None = None,
    variant: dict[str, Any] | None = None,
) -> LayerKernel:
    """Render an OpenCL template (path relative to npas/codegen) into one __kernel.

    The template receives `function` (its __kernel name), `n_in`, `n_out`, `n_w` and `params`;
    it should `{% import "opencl/_cl.j2" as cl %}` and open with
    `{{ cl.signature(function, n_in, n_out, n_w) }} { {{ cl.bind(n_in, n_out, n_w) }} ...`.
    The function name is `<kernel name>_<hash of the text>`, so identical layers share one
    kernel in the model's program."""
    name = kernel_name(op_token, scheme, ISA, tile, epilogue)
    header: dict[str, Any] = {"kernel": name, "scheme": scheme, "isa": ISA}
    if tile:
        header["tile"] = f"{tile[0]}x{tile[1]}"
    header.update(variant or {})
    gs = tuple(int(g) for g in global_size)
    ls = None if local_size is None else tuple(int(v) for v in local_size)
    if not 1 <= len(gs) <= 3 or any(g <= 0 for g in gs):
        raise ValueError(f"{name}: global size {gs} must have 1 to 3 positive dimensions")
    if ls is not None and (len(ls) != len(gs) or any(g % v for g, v in zip(gs, ls, strict=True))):
        raise ValueError(f"{name}: global size {gs} is not a multiple of local size {ls}")
    text = render(
        template,
        header,
        function=_FUNCTION_PLACEHOLDER,
        n_in=n_in,
        n_out=n_out,
        n_w=len(weights),
        **params,
    )
    function = f"{name}_{content_hash(text)}"
    text = text.replace(_FUNCTION_PLACEHOLDER, function)
    # The emitter names ClLaunch.function as the layer's entry; sources stay empty (no C++).
    return LayerKernel(
        kernel=name,
        entry=function,
        sources={},
        weights=tuple(np.ascontiguousarray(w, dtype=np.float32) for w in weights),
        macs=int(macs),
        inputs=tuple(inputs),
        isa=ISA,
        cl=ClLaunch(function=function, source=text, global_size=gs, local_size=ls),
    )


def finish_variant(
    variant: Variant,
    *,
    op_token: str,
    template: str,
    params: dict[str, Any],
    inputs: Sequence[str],
    launch: tuple[Sequence[int], Sequence[int] | None],
    n_out: int = 1,
    epilogue: Epilogue | None = None,
    weights: Sequence[np.ndarray] = (),
    macs: int = 0,
    tile: tuple[int, int] | None = None,
    header: dict[str, Any] | None = None,
) -> LayerKernel:
    """finish_cl for a kernel of `variant`: its scheme, one buffer per name of `inputs`, the
    (global, local) sizes `launch`, the variant's tile unless `tile` names the one a layer
    really computes, and the variant's params (plus `header`) in the source's header."""
    return finish_cl(
        op_token=op_token,
        scheme=variant.scheme,
        template=template,
        params=params,
        n_in=len(inputs),
        n_out=n_out,
        global_size=launch[0],
        local_size=launch[1],
        epilogue=epilogue,
        weights=weights,
        inputs=inputs,
        macs=macs,
        tile=tile or variant.tile,
        variant=dict(variant.params, **(header or {})),
    )


def pack_filters4(w: np.ndarray) -> np.ndarray:
    """Filters [F, ...] packed in blocks of 4 as [ceil(F/4), ..., 4] (zero-padded), so one LD4
    reads the same weight of 4 consecutive filters."""
    w = np.asarray(w, np.float32)
    F = w.shape[0]
    F4 = round_up(F, 4)
    padded = np.zeros((F4, *w.shape[1:]), np.float32)
    padded[:F] = w
    blocks = padded.reshape(F4 // 4, 4, *w.shape[1:])
    return np.ascontiguousarray(np.moveaxis(blocks, 1, -1))


def pad4(v: np.ndarray) -> np.ndarray:
    """A 1-D vector zero-padded to a multiple of 4 (biases read with LD4)."""
    v = np.asarray(v, np.float32).reshape(-1)
    out = np.zeros(round_up(v.size, 4), np.float32)
    out[: v.size] = v
    return out
