"""Ops that only ever produce load-time constants: Constant, Shape, Size, ConstantOfShape, Range,
and Cast (an alias on float activations). Shapes are static, so Shape of an activation folds."""

from __future__ import annotations

import numpy as np
import onnx

from .context import Context, Node


def fold_constant(cx: Context, node: Node) -> list[np.ndarray]:
    a = node.attrs
    if "value" in a:
        return [np.asarray(a["value"])]
    if "value_float" in a:
        return [np.array(a["value_float"], np.float32)]
    if "value_floats" in a:
        return [np.array(a["value_floats"], np.float32)]
    if "value_int" in a:
        return [np.array(a["value_int"], np.int64)]
    if "value_ints" in a:
        return [np.array(a["value_ints"], np.int64)]
    raise node.unsupported(f"attributes {sorted(a)}; npas reads numeric Constant values only")


def fold_shape(cx: Context, node: Node) -> list[np.ndarray]:
    shape = cx.shape(node.inputs[0])
    start, end = node.attr("start", 0), node.attr("end")
    return [np.array(shape[start:end], np.int64)]


def fold_size(cx: Context, node: Node) -> list[np.ndarray]:
    return [np.array(int(np.prod(cx.shape(node.inputs[0]))), np.int64)]


def fold_constant_of_shape(cx: Context, node: Node) -> list[np.ndarray]:
    shape = [int(d) for d in cx.const(node.inputs[0]).reshape(-1)]
    value = node.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(shape, fill[0], fill.dtype)]


def fold_range(cx: Context, node: Node) -> list[np.ndarray]:
    start, limit, delta = (cx.const(n) for n in node.inputs[:3])
    return [np.arange(start.item(), limit.item(), delta.item()).astype(start.dtype)]


def _to_dtype(node: Node) -> np.dtype:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(node.attr("to"))))
    except (KeyError, TypeError, ValueError):
        raise node.unsupported(f"cast to ONNX type {node.attr('to')}") from None


def fold_cast(cx: Context, node: Node) -> list[np.ndarray]:
    return [cx.const(node.inputs[0]).astype(_to_dtype(node))]


def cast(cx: Context, node: Node) -> None:
    """Activations are float32; a cast to float32 is a no-op, any other target is not
    compilable (it would turn data into something npas does not compute)."""
    if _to_dtype(node) != np.float32:
        raise node.unsupported(
            f"casts a run-time tensor to {_to_dtype(node)}; npas computes activations in "
            "float32 only"
        )
    cx.bind(node.outputs[0], cx.act(node.inputs[0]))
