"""The npas IR: ops, typed attrs, Graph/Layer/Value."""

from npas.ir.attrs import (
    Activation,
    AxisAttrs,
    Conv2dAttrs,
    ConvTranspose2dAttrs,
    Epilogue,
    NoAttrs,
    PadAttrs,
    PoolAttrs,
    ReduceAttrs,
    ReshapeAttrs,
    ResizeAttrs,
    SliceAttrs,
    SplitAttrs,
    TransposeAttrs,
    UnaryAttrs,
)
from npas.ir.graph import Graph, Layer, Schedule, Sparsity, Value
from npas.ir.ops import Op

__all__ = [
    "Activation",
    "AxisAttrs",
    "Conv2dAttrs",
    "ConvTranspose2dAttrs",
    "Epilogue",
    "Graph",
    "Layer",
    "NoAttrs",
    "Op",
    "PadAttrs",
    "PoolAttrs",
    "ReduceAttrs",
    "ReshapeAttrs",
    "ResizeAttrs",
    "Schedule",
    "SliceAttrs",
    "Sparsity",
    "SplitAttrs",
    "TransposeAttrs",
    "UnaryAttrs",
    "Value",
]  # fmt: skip
