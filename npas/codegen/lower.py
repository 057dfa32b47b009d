"""Layer lowering: one IR Layer -> one LayerKernel, through one explicit table Op -> lowering.

Each lowering walks its family's manifest (npas/codegen/<target dir>/<family>.py) and renders
the first variant that serves the layer, in manifest order; the scalar reference variant is
last in every manifest and serves everything. NPAS_ISA=scalar routes every layer to it.

View ops (ops.VIEWS: RESHAPE, IDENTITY) need no kernel: the emitter aliases their buffers, and
lower_layer returns None for them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from npas import knobs
from npas.codegen.host import conv, datamove, elementwise, pool, reduce
from npas.codegen.host.common import Variant, lower_with
from npas.codegen.kernel import LayerKernel
from npas.codegen.target import ISA_LADDERS, SCALAR, Isa, Target
from npas.ir.graph import Graph, Layer
from npas.ir.ops import VIEWS, Op

LoweringFn = Callable[[Layer, Graph, Isa], LayerKernel]


def _manifest(variants: Sequence[Variant]) -> LoweringFn:
    """The lowering of a family: the first variant of its manifest that serves the layer."""
    return functools.partial(lower_with, variants)


E, C, P, D, R = elementwise, conv, pool, datamove, reduce
# The one table: every op with a host kernel and its lowering. View ops are absent on purpose.
LOWERINGS: dict[Op, LoweringFn] = {
    # convolution-like
    Op.CONV2D: _manifest(C.CONV2D_MANIFEST),
    Op.CONV_TRANSPOSE2D: _manifest(C.CONV_TRANSPOSE_MANIFEST),
    Op.DENSE: _manifest(C.DENSE_MANIFEST),
    Op.MATMUL: _manifest(C.MATMUL_MANIFEST),
    # pooling
    Op.MAXPOOL: _manifest(P.POOL_MANIFEST),
    Op.AVGPOOL: _manifest(P.POOL_MANIFEST),
    Op.GLOBAL_AVGPOOL: _manifest(P.GLOBAL_POOL_MANIFEST),
    Op.GLOBAL_MAXPOOL: _manifest(P.GLOBAL_POOL_MANIFEST),
    # elementwise unary
    Op.RELU: _manifest(E.UNARY_MANIFEST),
    Op.CLIP: _manifest(E.UNARY_MANIFEST),
    Op.LEAKY_RELU: _manifest(E.UNARY_MANIFEST),
    Op.ELU: _manifest(E.UNARY_MANIFEST),
    Op.HARDSWISH: _manifest(E.UNARY_MANIFEST),
    Op.HARDSIGMOID: _manifest(E.UNARY_MANIFEST),
    Op.SIGMOID: _manifest(E.UNARY_MANIFEST),
    Op.TANH: _manifest(E.UNARY_MANIFEST),
    Op.SILU: _manifest(E.UNARY_MANIFEST),
    Op.EXP: _manifest(E.UNARY_MANIFEST),
    Op.LOG: _manifest(E.UNARY_MANIFEST),
    Op.SQRT: _manifest(E.UNARY_MANIFEST),
    Op.NEG: _manifest(E.UNARY_MANIFEST),
    Op.ABS: _manifest(E.UNARY_MANIFEST),
    Op.RECIPROCAL: _manifest(E.UNARY_MANIFEST),
    # elementwise binary
    Op.ADD: _manifest(E.BINARY_MANIFEST),
    Op.SUB: _manifest(E.BINARY_MANIFEST),
    Op.MUL: _manifest(E.BINARY_MANIFEST),
    Op.DIV: _manifest(E.BINARY_MANIFEST),
    Op.MAX: _manifest(E.BINARY_MANIFEST),
    Op.MIN: _manifest(E.BINARY_MANIFEST),
    Op.POW: _manifest(E.BINARY_MANIFEST),
    Op.PRELU: _manifest(E.BINARY_MANIFEST),
    Op.CHANNEL_AFFINE: _manifest(E.AFFINE_MANIFEST),
    # data movement
    Op.CONCAT: _manifest(D.CONCAT_MANIFEST),
    Op.SPLIT: _manifest(D.SPLIT_MANIFEST),
    Op.SLICE: _manifest(D.SLICE_MANIFEST),
    Op.TRANSPOSE: _manifest(D.TRANSPOSE_MANIFEST),
    Op.PAD: _manifest(D.PAD_MANIFEST),
    Op.RESIZE: _manifest(D.RESIZE_MANIFEST),
    # reductions and normalisation
    Op.SOFTMAX: _manifest(R.SOFTMAX_MANIFEST),
    Op.REDUCE_MEAN: _manifest(R.REDUCE_MANIFEST),
    Op.REDUCE_MAX: _manifest(R.REDUCE_MANIFEST),
    Op.REDUCE_SUM: _manifest(R.REDUCE_MANIFEST),
}


def effective_isa(target: Target) -> Isa:
    """The target's ISA, lowered by NPAS_ISA (read now, not when the Target was made) to any
    rung of the target architecture's ladder below it (scalar | avx2 | avx512 on x86-64,
    scalar | neon on aarch64); a rung above the target's ISA leaves it as it is."""
    forced = knobs.ISA.get().strip().lower()
    if not forced:
        return target.isa
    ladder = ISA_LADDERS.get(target.arch, (SCALAR,))
    names = [isa.name for isa in ladder]
    if forced not in names:
        raise ValueError(
            f"NPAS_ISA={forced!r}: expected one of {', '.join(names)} for target {target.name!r}"
        )
    if forced == SCALAR.name:
        return SCALAR
    if target.isa in ladder and names.index(forced) < ladder.index(target.isa):
        return ladder[names.index(forced)]
    return target.isa


def manifest_for(op: Op) -> Sequence[Variant]:
    """The variants that can run `op` on the host, in selection order."""
    if op not in LOWERINGS:
        raise NotImplementedError(f"no host kernel lowering for op {op.value!r}")
    return LOWERINGS[op].args[0]  # type: ignore[attr-defined, no-any-return]


def lower_layer(layer: Layer, graph: Graph, target: Target) -> LayerKernel | None:
    """Lower one layer for `target`. Returns None for view ops (the emitter aliases them);
    raises NotImplementedError naming the op when no kernel exists."""
    if layer.op in VIEWS:
        return None
    if target.template_dir != "host":
        raise NotImplementedError(f"no {target.template_dir} kernels for op {layer.op.value!r}")
    if layer.op not in LOWERINGS:
        raise NotImplementedError(f"no host kernel lowering for op {layer.op.value!r}")
    return LOWERINGS[layer.op](layer, graph, effective_isa(target))
