"""Layer lowering: one IR Layer -> one LayerKernel, through one explicit table Op -> lowering.

Each lowering walks its family's manifest (npas/codegen/<target dir>/<family>.py) and renders
the first variant that serves the layer, in manifest order; the scalar reference variant is
last in every manifest and serves everything. NPAS_ISA=scalar routes every layer to it.

View ops (ops.VIEWS: RESHAPE, IDENTITY) need no kernel: the emitter aliases their buffers, and
lower_layer returns None for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from npas import knobs
from npas.codegen.host import conv, datamove, elementwise, pool, reduce
from npas.codegen.host.common import Variant, lower_with
from npas.codegen.kernel import LayerKernel
from npas.codegen.target import AVX2, AVX512, SCALAR, Isa, Target
from npas.ir.graph import Graph, Layer
from npas.ir.ops import VIEWS, Op

# The one table: every op with a host kernel, and the manifest its variants come from.
HOST_MANIFESTS: dict[Op, Sequence[Variant]] = {
    # convolution-like
    Op.CONV2D: conv.CONV2D_MANIFEST,
    Op.CONV_TRANSPOSE2D: conv.CONV_TRANSPOSE_MANIFEST,
    Op.DENSE: conv.DENSE_MANIFEST,
    Op.MATMUL: conv.MATMUL_MANIFEST,
    # pooling
    Op.MAXPOOL: pool.POOL_MANIFEST,
    Op.AVGPOOL: pool.POOL_MANIFEST,
    Op.GLOBAL_AVGPOOL: pool.GLOBAL_POOL_MANIFEST,
    Op.GLOBAL_MAXPOOL: pool.GLOBAL_POOL_MANIFEST,
    # elementwise unary
    **{
        op: elementwise.UNARY_MANIFEST
        for op in (
            Op.RELU, Op.CLIP, Op.LEAKY_RELU, Op.ELU, Op.HARDSWISH, Op.HARDSIGMOID, Op.SIGMOID,
            Op.TANH, Op.SILU, Op.EXP, Op.LOG, Op.SQRT, Op.NEG, Op.ABS, Op.RECIPROCAL,
        )
    },  # fmt: skip
    # elementwise binary
    **{
        op: elementwise.BINARY_MANIFEST
        for op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.POW, Op.PRELU)
    },
    Op.CHANNEL_AFFINE: elementwise.AFFINE_MANIFEST,
    # data movement
    Op.CONCAT: datamove.CONCAT_MANIFEST,
    Op.SPLIT: datamove.SPLIT_MANIFEST,
    Op.SLICE: datamove.SLICE_MANIFEST,
    Op.TRANSPOSE: datamove.TRANSPOSE_MANIFEST,
    Op.PAD: datamove.PAD_MANIFEST,
    Op.RESIZE: datamove.RESIZE_MANIFEST,
    # reductions and normalisation
    Op.SOFTMAX: reduce.SOFTMAX_MANIFEST,
    Op.REDUCE_MEAN: reduce.REDUCE_MANIFEST,
    Op.REDUCE_MAX: reduce.REDUCE_MANIFEST,
    Op.REDUCE_SUM: reduce.REDUCE_MANIFEST,
}

LoweringFn = Callable[[Layer, Graph, Isa], LayerKernel]


def effective_isa(target: Target) -> Isa:
    """The target's ISA, lowered by NPAS_ISA (read now, not when the Target was made)."""
    forced = knobs.ISA.get().strip().lower()
    if not forced:
        return target.isa
    order = {SCALAR.name: 0, AVX2.name: 1, AVX512.name: 2}
    if forced not in order:
        raise ValueError(f"NPAS_ISA={forced!r}: expected one of scalar, avx2, avx512")
    if forced == "scalar":
        return SCALAR
    if target.isa.name in order and order[forced] < order[target.isa.name]:
        return {AVX2.name: AVX2, AVX512.name: AVX512}[forced]
    return target.isa


def manifest_for(op: Op) -> Sequence[Variant]:
    if op not in HOST_MANIFESTS:
        raise NotImplementedError(f"no host kernel lowering for op {op.value!r}")
    return HOST_MANIFESTS[op]


def lower_layer(layer: Layer, graph: Graph, target: Target) -> LayerKernel | None:
    """Lower one layer for `target`. Returns None for view ops (the emitter aliases them);
    raises NotImplementedError naming the op when no kernel exists."""
    if layer.op in VIEWS:
        return None
    if target.template_dir != "host":
        raise NotImplementedError(f"no {target.template_dir} kernels for op {layer.op.value!r}")
    return lower_with(manifest_for(layer.op), layer, graph, effective_isa(target))
