"""What every host kernel family shares: the manifest entry type, variant selection, turning a
rendered template into a content-addressed LayerKernel, and the C++ spelling of activations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npas.codegen.kernel import LayerKernel, content_hash
from npas.codegen.naming import kernel_name
from npas.codegen.target import Isa
from npas.codegen.templates import cfloat, render
from npas.ir.attrs import Activation, Epilogue, UnaryAttrs
from npas.ir.graph import Graph, Layer
from npas.ir.ops import Op

# The C++ struct in npas/simd.h implementing each ISA's vector primitives.
ISA_STRUCT = {"scalar": "Scalar", "avx2": "Avx2", "avx512": "Avx512", "neon": "Neon"}
VECTOR_ISAS = ("avx2", "avx512", "neon")  # ISAs the vector templates have been validated on

_ENTRY_PLACEHOLDER = "NPAS_ENTRY_PLACEHOLDER"


@dataclass(frozen=True)
class Variant:
    """One manifest entry: a kernel algorithm (template + filler) with its tile parameters.

    `can_serve(layer, graph, isa)` says whether this variant computes the layer correctly and
    sensibly; `fill(layer, graph, isa, variant)` renders it. Reference variants run on any ISA.
    """

    scheme: str  # kernel-name scheme token: "dense" (vector kernels) | "ref"
    isas: tuple[str, ...]  # ISAs it is written for; ("*",) for the scalar reference
    fill: Callable[[Layer, Graph, Isa, Variant], LayerKernel]
    can_serve: Callable[[Layer, Graph, Isa], bool] = lambda layer, graph, isa: True
    mr: int = 0  # register tile rows (0: the name carries no tile)
    nr: int = 0  # register tile columns (floats)
    params: tuple[tuple[str, Any], ...] = field(default=())  # further tunables

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)

    @property
    def tile(self) -> tuple[int, int] | None:
        return (self.mr, self.nr) if self.nr else None

    def serves(self, layer: Layer, graph: Graph, isa: Isa) -> bool:
        if "*" not in self.isas and isa.name not in self.isas:
            return False
        return bool(self.can_serve(layer, graph, isa))


def select(manifest: Sequence[Variant], layer: Layer, graph: Graph, isa: Isa) -> Variant:
    """The first variant of the manifest, in order, that serves the layer."""
    for variant in manifest:
        if variant.serves(layer, graph, isa):
            return variant
    raise NotImplementedError(
        f"no kernel variant serves layer {layer.name!r} ({layer.op.value}) on {isa.name}"
    )


def lower_with(manifest: Sequence[Variant], layer: Layer, graph: Graph, isa: Isa) -> LayerKernel:
    variant = select(manifest, layer, graph, isa)
    return variant.fill(layer, graph, isa, variant)


def kernel_isa(variant: Variant, isa: Isa) -> str:
    """The ISA token of a variant's kernel: references are scalar code whatever the target."""
    return "scalar" if "*" in variant.isas else isa.name


def finish(
    *,
    op_token: str,
    variant: Variant,
    isa: Isa,
    template: str,
    params: dict[str, Any],
    epilogue: Epilogue | tuple[str, ...] | None = None,
    weights: Sequence[np.ndarray] = (),
    inputs: Sequence[str] = (),
    scratch_bytes_per_thread: int = 0,
    macs: int = 0,
    tile: tuple[int, int] | None = None,
) -> LayerKernel:
    """Render `template` into one content-addressed translation unit and wrap it.

    The entry symbol is `<kernel name>_<hash of the text>`, so identical layers (same shapes,
    attrs, variant) share one TU and the emitter can deduplicate by file name.
    """
    isa_token = kernel_isa(variant, isa)
    tile = tile or variant.tile
    name = kernel_name(op_token, variant.scheme, isa_token, tile, epilogue)
    header = {"kernel": name, "scheme": variant.scheme, "isa": isa_token}
    if tile:
        header["tile"] = f"{tile[0]}x{tile[1]}"
    header.update(dict(variant.params))
    text = render(
        template,
        header,
        entry=_ENTRY_PLACEHOLDER,
        isa_struct=ISA_STRUCT[isa_token],
        **params,
    )
    entry = f"{name}_{content_hash(text)}"
    text = text.replace(_ENTRY_PLACEHOLDER, entry)
    packed = tuple(np.ascontiguousarray(w, dtype=np.float32) for w in weights)
    return LayerKernel(
        kernel=name,
        entry=entry,
        sources={f"{entry}.cpp": text},
        weights=packed,
        scratch_bytes_per_thread=int(scratch_bytes_per_thread),
        macs=int(macs),
        inputs=tuple(inputs),
        isa=isa_token,
    )


# ---- layer queries ----


def activation_inputs(layer: Layer, graph: Graph) -> tuple[str, ...]:
    """The layer's non-constant inputs in order: what LayerArgs::in[] holds."""
    return tuple(n for n in layer.inputs if n and not graph.value(n).is_const)


def operand_ptrs(
    names: Sequence[str],
    graph: Graph,
    inputs: Sequence[str],
    const_ptr: str = "args->w[{}]",
    input_ptr: str = "args->in[{}]",
) -> tuple[list[str], list[np.ndarray]]:
    """Where a kernel reads each operand of `names`: a constant is the next weights buffer
    (returned flat, in order) and an activation its slot in `inputs` (LayerArgs::in[]), spelled
    by the `const_ptr` / `input_ptr` formats of the target's kernels."""
    ptrs: list[str] = []
    weights: list[np.ndarray] = []
    for name in names:
        value = graph.value(name)
        if value.is_const:
            ptrs.append(const_ptr.format(len(weights)))
            weights.append(np.asarray(value.data, dtype=np.float32).reshape(-1))
        else:
            ptrs.append(input_ptr.format(inputs.index(name)))
    return ptrs, weights


def const_or_none(graph: Graph, name: str | None) -> np.ndarray | None:
    if not name:
        return None
    return graph.const(name)


def prod(values: Sequence[int]) -> int:
    return int(np.prod(values, dtype=np.int64)) if len(values) else 1


# ---- activations in C++ ----

# Op -> (function name in npas::simd / npas::ref, which attrs it takes)
_FUNCS: dict[Op, tuple[str, tuple[str, ...]]] = {
    Op.IDENTITY: ("identity", ()),
    Op.RELU: ("relu", ()),
    Op.CLIP: ("clip", ("alpha", "beta")),
    Op.LEAKY_RELU: ("leaky_relu", ("alpha",)),
    Op.ELU: ("elu", ("alpha",)),
    Op.HARDSWISH: ("hardswish", ()),
    Op.HARDSIGMOID: ("hardsigmoid", ("alpha", "beta")),
    Op.SIGMOID: ("sigmoid", ()),
    Op.TANH: ("tanh", ()),
    Op.SILU: ("silu", ()),
    Op.EXP: ("exp", ()),
    Op.LOG: ("log", ()),
    Op.SQRT: ("sqrt", ()),
    Op.NEG: ("neg", ()),
    Op.ABS: ("abs", ()),
    Op.RECIPROCAL: ("reciprocal", ()),
}
# Primitives that live on the ISA struct itself rather than as generic math.
_ON_STRUCT = {"sqrt", "neg", "abs"}


def unary_expr(op: Op, alpha: float, beta: float, arg: str, vector: bool) -> str:
    """C++ expression applying unary `op` to `arg` (a V::vec when vector, else a float)."""
    if op not in _FUNCS:
        raise NotImplementedError(f"no C++ spelling for unary op {op.value}")
    fn, attrs = _FUNCS[op]
    values = {"alpha": alpha, "beta": beta}
    extra = "".join(f", {cfloat(values[a])}" for a in attrs)
    if not vector:
        return f"npas::ref::{fn}({arg}{extra})"
    if fn in _ON_STRUCT:
        return f"V::{fn}({arg})"
    return f"npas::simd::{fn}<V>({arg}{extra})"


def act_expr(act: Activation | None, arg: str, vector: bool) -> str:
    """C++ expression of a fused activation (identity when there is none)."""
    if act is None:
        return arg
    return unary_expr(act.op, act.alpha, act.beta, arg, vector)


def layer_unary_expr(layer: Layer, arg: str, vector: bool) -> str:
    attrs = layer.attrs if isinstance(layer.attrs, UnaryAttrs) else UnaryAttrs()
    return unary_expr(layer.op, attrs.alpha, attrs.beta, arg, vector)


def is_vector_isa(isa: Isa) -> bool:
    return isa.name in VECTOR_ISAS and isa.vector_floats > 1


# Elementwise-style kernels fork only above this many outputs: below, the fork-join costs
# more than the work.
PARALLEL_MIN_ELEMENTS = 1 << 15
