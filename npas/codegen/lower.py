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
from typing import Any

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


def _table(
    conv: Any, pool: Any, elementwise: Any, datamove: Any, reduce: Any
) -> dict[Op, LoweringFn]:
    """The one table Op -> lowering of a kernel family set (npas/codegen/host/ or opencl/:
    both name their manifests alike). View ops are absent on purpose."""
    E, C, P, D, R = elementwise, conv, pool, datamove, reduce
    table: dict[Op, LoweringFn] = {
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
    for op in UNARY_OPS:
        table[op] = _manifest(E.UNARY_MANIFEST)
    for op in BINARY_OPS:
        table[op] = _manifest(E.BINARY_MANIFEST)
    return table


# Elementwise ops with a kernel (fused activations are a subset of the unary ones).
UNARY_OPS = (
    Op.RELU, Op.CLIP, Op.LEAKY_RELU, Op.ELU, Op.HARDSWISH, Op.HARDSIGMOID, Op.SIGMOID, Op.TANH,
    Op.SILU, Op.EXP, Op.LOG, Op.SQRT, Op.NEG, Op.ABS, Op.RECIPROCAL,
)  # fmt: skip
BINARY_OPS = (Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.POW, Op.PRELU)

LOWERINGS: dict[Op, LoweringFn] = _table(conv, pool, elementwise, datamove, reduce)


@functools.cache
def cl_lowerings() -> dict[Op, LoweringFn]:
    """The OpenCL kernels (npas/codegen/opencl/): the same families and manifest names,
    imported when an OpenCL target is first lowered."""
    from npas.codegen import opencl as cl

    return _table(cl.conv, cl.pool, cl.elementwise, cl.datamove, cl.reduce)


def _lowerings(template_dir: str) -> dict[Op, LoweringFn] | None:
    if template_dir == "host":
        return LOWERINGS
    if template_dir == "opencl":
        return cl_lowerings()
    return None


def effective_isa(target: Target) -> Isa:
    """The target's ISA, lowered by NPAS_ISA (read now, not when the Target was made) to any
    rung of the target architecture's ladder below it (scalar | avx2 | avx512 on x86-64,
    scalar | neon on aarch64); a rung above the target's ISA leaves it as it is."""
    forced = knobs.ISA.get().strip().lower()
    if not forced or target.isa.name == "opencl":  # NPAS_ISA concerns CPU kernels only
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
    table = _lowerings(target.template_dir)
    if table is None:
        raise NotImplementedError(f"no {target.template_dir} kernels for op {layer.op.value!r}")
    if layer.op not in table:
        raise NotImplementedError(
            f"no {target.template_dir} kernel lowering for op {layer.op.value!r}"
        )
    return table[layer.op](layer, graph, effective_isa(target))
