"""ONNX -> npas IR. `load_onnx` converts a model; `constant_input_positions` tells which inputs
of an op must be load-time constants (the ONNX backend test harness bakes those)."""

from npas.frontend.loader import load_onnx
from npas.frontend.registry import (
    MAX_OPSET,
    MIN_OPSET,
    constant_input_positions,
    supported_ops,
)

__all__ = ["MAX_OPSET", "MIN_OPSET", "constant_input_positions", "load_onnx", "supported_ops"]
