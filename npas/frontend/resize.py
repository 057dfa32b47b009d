"""Resize (opsets 11, 13, 18, 19): nearest and linear resampling of H and W of an NCHW tensor."""

from __future__ import annotations

import math

import numpy as np

from npas.ir import Op, ResizeAttrs
from npas.ir.shapes import resize_out_dim

from .common import norm_axes
from .context import Context, Node

_COORD_MODES = (
    "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
    "tf_half_pixel_for_nearest",
)  # fmt: skip
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _round_half_up(v: float) -> int:
    return math.floor(v + 0.5)


def resize(cx: Context, node: Node) -> None:
    x = node.inputs[0]
    xs = cx.shape(x)
    rank = len(xs)
    mode = node.attr("mode", "nearest")
    coord = node.attr("coordinate_transformation_mode", "half_pixel")
    nearest = node.attr("nearest_mode", "round_prefer_floor")
    if mode not in ("nearest", "linear"):
        raise node.unsupported(f"mode={mode!r}; npas resizes with nearest or linear")
    if coord not in _COORD_MODES:
        raise node.unsupported(f"coordinate_transformation_mode={coord!r}")
    if mode == "nearest" and nearest not in _NEAREST_MODES:
        raise node.unsupported(f"nearest_mode={nearest!r}")
    axes = norm_axes(node, [int(a) for a in node.attr("axes", range(rank))], rank)
    scales_in = cx.require_const(node, 2, "scales")
    sizes_in = cx.require_const(node, 3, "sizes")
    scales: list[float] = [1.0] * rank
    out = list(xs)
    if sizes_in is not None and sizes_in.size:
        sizes = [int(v) for v in sizes_in.reshape(-1)]
        if len(sizes) != len(axes):
            raise node.error(f"sizes {sizes} must have one entry per axis {axes}")
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy == "stretch":
            for a, s in zip(axes, sizes, strict=False):
                out[a] = s
        else:
            ratios = [s / xs[a] for a, s in zip(axes, sizes, strict=False)]
            r = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                out[a] = _round_half_up(r * xs[a])
        # with sizes the coordinate transform uses output/input
        for a in axes:
            scales[a] = out[a] / xs[a]
    elif scales_in is not None and scales_in.size:
        given = [float(v) for v in scales_in.astype(np.float32).reshape(-1)]
        if len(given) != len(axes):
            raise node.error(f"scales {given} must have one entry per axis {axes}")
        for a, sc in zip(axes, given, strict=False):
            scales[a] = sc
            out[a] = resize_out_dim(xs[a], sc)
    else:
        raise node.error("needs non-empty scales or sizes")
    if int(node.attr("antialias", 0)) and mode == "linear" and min(scales) < 1.0:
        raise node.unsupported("antialias=1 when downsampling")
    if rank != 4 or out[:2] != list(xs[:2]):
        raise node.unsupported(
            f"resizes {list(xs)} to {out}; npas resizes only the H and W axes of NCHW tensors"
        )
    attrs = ResizeAttrs(
        mode=mode,
        coordinate_mode=coord,
        nearest_mode=nearest,
        scales=(scales[2], scales[3]),
    )
    (y,) = cx.emit(node, Op.RESIZE, [cx.act(x)], node.outputs, attrs)
    if list(cx.graph.shape(y)) != out:
        raise node.error(f"output {list(cx.graph.shape(y))} != expected {out}")
