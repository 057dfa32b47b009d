"""Unary and binary elementwise ops, activations, Clip, PRelu and the variadic Sum/Max/Min/Mean.

Converters emit IR layers for float activations; the `fold_*` functions evaluate the same ops at
load time when every input is a constant, with ONNX's dtype rules (int64 shape arithmetic too).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from npas.ir import NoAttrs, Op, UnaryAttrs

from .context import Context, Converter, Folder, Node

F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)


# ---- unary ----


def _simple(op: Op, arity: int, **params: float) -> Converter:
    """Converter for an op that maps its first `arity` inputs to one IR layer; `params` are the
    UnaryAttrs fields it reads from the ONNX attributes of the same name, with their defaults."""

    def convert(cx: Context, node: Node) -> None:
        args = [cx.act(name) for name in node.inputs[:arity]]
        attrs = UnaryAttrs(**{k: float(node.attr(k, v)) for k, v in params.items()})
        cx.emit(node, op, args, node.outputs, attrs if params else NoAttrs())

    convert.__name__ = f"convert_{op.value}"
    return convert


def _unary(op: Op, **params: float) -> Converter:
    return _simple(op, 1, **params)


def _binary(op: Op) -> Converter:
    return _simple(op, 2)


relu = _unary(Op.RELU)
sigmoid = _unary(Op.SIGMOID)
tanh = _unary(Op.TANH)
exp = _unary(Op.EXP)
log = _unary(Op.LOG)
sqrt = _unary(Op.SQRT)
neg = _unary(Op.NEG)
abs_ = _unary(Op.ABS)
reciprocal = _unary(Op.RECIPROCAL)
hard_swish = _unary(Op.HARDSWISH)
leaky_relu = _unary(Op.LEAKY_RELU, alpha=0.01)
elu = _unary(Op.ELU, alpha=1.0)
hard_sigmoid = _unary(Op.HARDSIGMOID, alpha=0.2, beta=0.5)


def _clip(cx: Context, node: Node, lo: float, hi: float) -> None:
    # ONNX's "no bound" defaults are +-FLT_MAX; the IR spells them as infinities
    lo = -math.inf if lo <= -FLT_MAX else lo
    hi = math.inf if hi >= FLT_MAX else hi
    x = cx.act(node.inputs[0])
    if lo == 0.0 and hi == math.inf:
        cx.emit(node, Op.RELU, [x], node.outputs, NoAttrs())
    else:
        cx.emit(node, Op.CLIP, [x], node.outputs, UnaryAttrs(alpha=lo, beta=hi))


def _scalar(node: Node, arr: np.ndarray | None, what: str) -> float | None:
    if arr is None:
        return None
    if arr.size != 1:
        raise node.error(f"{what} must be a scalar, got shape {list(arr.shape)}")
    return float(arr.reshape(-1)[0])


def clip6(cx: Context, node: Node) -> None:
    """Clip-6..10: bounds are attributes."""
    _clip(cx, node, float(node.attr("min", -FLT_MAX)), float(node.attr("max", FLT_MAX)))


def clip11(cx: Context, node: Node) -> None:
    """Clip-11+: bounds are optional (constant) inputs."""
    lo = _scalar(node, cx.require_const(node, 1, "min"), "min")
    hi = _scalar(node, cx.require_const(node, 2, "max"), "max")
    _clip(cx, node, -math.inf if lo is None else lo, math.inf if hi is None else hi)


def fold_clip6(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    lo, hi = node.attr("min", -FLT_MAX), node.attr("max", FLT_MAX)
    return [np.clip(x, lo, hi).astype(x.dtype)]


def fold_clip11(cx: Context, node: Node) -> list[np.ndarray]:
    x = cx.const(node.inputs[0])
    lo = node.input(1)
    hi = node.input(2)
    y = x
    if lo is not None:
        y = np.maximum(y, cx.const(lo))
    if hi is not None:
        y = np.minimum(y, cx.const(hi))
    return [np.asarray(y).astype(x.dtype)]


# ---- binary ----


add = _binary(Op.ADD)
sub = _binary(Op.SUB)
mul = _binary(Op.MUL)
div = _binary(Op.DIV)
pow_ = _binary(Op.POW)
prelu = _binary(Op.PRELU)


def _variadic(op: Op, mean: bool = False) -> Converter:
    """Sum/Max/Min/Mean over any number of inputs as a chain of binary layers."""

    def convert(cx: Context, node: Node) -> None:
        names = [n for n in node.inputs if n]
        if len(names) == 1 and not mean:
            cx.bind(node.outputs[0], cx.act(names[0]))
            return
        acc = cx.act(names[0])
        steps = len(names) - 1 + (1 if mean else 0)
        for i, other in enumerate(names[1:]):
            last = i == steps - 1
            (acc,) = cx.emit(
                node, op, [acc, cx.act(other)], node.outputs if last else None, NoAttrs(),
                suffix=None if i == 0 else f"{op.value}{i}",
            )  # fmt: skip
        if mean:
            k = cx.add_const(f"{node.name}/inv_n", np.array(1.0 / len(names), F32))
            cx.emit(node, Op.MUL, [acc, k], node.outputs, NoAttrs(), suffix="mean")

    convert.__name__ = f"convert_variadic_{op.value}"
    return convert


sum_ = _variadic(Op.ADD)
max_ = _variadic(Op.MAX)
min_ = _variadic(Op.MIN)
mean = _variadic(Op.ADD, mean=True)


# ---- load-time folding ----


def _trunc_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer):
        # ONNX integer division truncates toward zero (C semantics), numpy's // floors
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) != (b < 0), -q, q)
    return np.divide(a, b)


def _fold(fn: Callable[..., np.ndarray], keep_dtype: bool = True) -> Folder:
    def fold(cx: Context, node: Node) -> list[np.ndarray]:
        args = [cx.const(n) for n in node.inputs if n]
        y = np.asarray(fn(*args))
        return [y.astype(args[0].dtype) if keep_dtype else y]

    return fold


def _fold_variadic(
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray], mean: bool = False
) -> Folder:
    def fold(cx: Context, node: Node) -> list[np.ndarray]:
        args = [cx.const(n) for n in node.inputs if n]
        acc = args[0]
        for other in args[1:]:
            acc = fn(acc, other)
        if mean:
            acc = acc / len(args)
        return [np.asarray(acc).astype(args[0].dtype)]

    return fold


def _mod(cx: Context, node: Node) -> list[np.ndarray]:
    a, b = cx.const(node.inputs[0]), cx.const(node.inputs[1])
    return [(np.fmod(a, b) if node.attr("fmod", 0) else np.mod(a, b)).astype(a.dtype)]


def _prelu(x: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x, x * s)


fold_add = _fold(np.add)
fold_sub = _fold(np.subtract)
fold_mul = _fold(np.multiply)
fold_div = _fold(_trunc_div)
fold_pow = _fold(np.power)
fold_prelu = _fold(_prelu)
fold_mod = _mod
fold_sum = _fold_variadic(np.add)
fold_max = _fold_variadic(np.maximum)
fold_min = _fold_variadic(np.minimum)
fold_mean = _fold_variadic(np.add, mean=True)
fold_neg = _fold(np.negative)
fold_abs = _fold(np.abs)
fold_sqrt = _fold(np.sqrt)
fold_floor = _fold(np.floor)
fold_ceil = _fold(np.ceil)
fold_round = _fold(np.round)  # numpy rounds half to even, as ONNX Round does
fold_sign = _fold(np.sign)
fold_reciprocal = _fold(np.reciprocal)
fold_relu = _fold(lambda x: np.maximum(x, 0))
fold_equal = _fold(np.equal, keep_dtype=False)
fold_less = _fold(np.less, keep_dtype=False)
fold_less_equal = _fold(np.less_equal, keep_dtype=False)
fold_greater = _fold(np.greater, keep_dtype=False)
fold_greater_equal = _fold(np.greater_equal, keep_dtype=False)
fold_not = _fold(np.logical_not, keep_dtype=False)
fold_and = _fold(np.logical_and, keep_dtype=False)
fold_or = _fold(np.logical_or, keep_dtype=False)
fold_xor = _fold(np.logical_xor, keep_dtype=False)


def fold_where(cx: Context, node: Node) -> list[np.ndarray]:
    c, a, b = (cx.const(n) for n in node.inputs[:3])
    return [np.where(c, a, b).astype(a.dtype)]
