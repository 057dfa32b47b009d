"""Epilogue fusion into CONV2D/DENSE: a following residual ADD, then a following activation."""

from __future__ import annotations

from npas.ir import Activation, Epilogue, Graph, Layer, Op, UnaryAttrs
from npas.ir.ops import ACTIVATIONS

from .rewrite import Fusion, apply_fusions

# Layers whose kernels apply an epilogue (bias, residual, activation) in their output loop.
EPILOGUE_HOSTS = frozenset({Op.CONV2D, Op.DENSE})


def _fuse_residual(g: Graph, p: Layer, c: Layer, pos: int) -> Layer | None:
    if not p.epilogue.empty:  # the add must come before any activation of p
        return None
    other = c.inputs[1 - pos]
    out = c.outputs[0]
    same = g.shape(p.outputs[0]) == g.shape(out) == g.shape(other)
    if not same or g.values[other].is_const or c.epilogue.residual:
        return None  # a broadcast or constant operand is not a residual stream
    return p.with_(
        inputs=(*p.inputs[:3], other),
        outputs=c.outputs,
        epilogue=Epilogue(residual=True, act=c.epilogue.act),
    )


RESIDUAL_FUSIONS = [
    Fusion("conv+add", EPILOGUE_HOSTS, frozenset({Op.ADD}), _fuse_residual, positions=(0, 1)),
]


def fuse_residual_add(graph: Graph) -> Graph:
    """ADD(conv(x), r) with r of the output's shape -> conv with r as 4th input and
    epilogue.residual, placed where the ADD was (so r is already computed)."""
    return apply_fusions(graph, RESIDUAL_FUSIONS)


def _fuse_act(g: Graph, p: Layer, c: Layer, pos: int) -> Layer | None:
    if p.epilogue.act is not None:
        return None
    a = c.attrs if isinstance(c.attrs, UnaryAttrs) else UnaryAttrs()
    act = Activation(c.op, a.alpha, a.beta)
    return p.with_(outputs=c.outputs, epilogue=Epilogue(p.epilogue.residual, act))


ACTIVATION_FUSIONS = [
    Fusion("conv+act", EPILOGUE_HOSTS, ACTIVATIONS, _fuse_act),
]


def fuse_activation(graph: Graph) -> Graph:
    """An activation (relu, clip, leaky relu, hard-swish, hard-sigmoid, sigmoid, silu, tanh)
    that is the only reader of a conv/dense output becomes that layer's epilogue."""
    return apply_fusions(graph, ACTIVATION_FUSIONS)
