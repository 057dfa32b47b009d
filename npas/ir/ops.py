"""The one op enum of the npas IR, with named groups that passes and codegen ask about."""

from __future__ import annotations

from enum import Enum


class Op(Enum):
    # ---- convolution-like: constant weights, the layers pruning rewrites ----
    CONV2D = "conv2d"  # groups cover depthwise; weights W[F, C/groups, kh, kw]
    CONV_TRANSPOSE2D = "conv_transpose2d"  # W[C, F/groups, kh, kw] as ONNX stores it
    DENSE = "dense"  # y[M, F] = x[M, C] @ W[F, C]^T + b  (Gemm / MatMul with constant weights)

    # ---- matrix product of two activations ----
    MATMUL = "matmul"  # numpy matmul semantics with broadcast batch dims

    # ---- pooling ----
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    GLOBAL_AVGPOOL = "global_avgpool"
    GLOBAL_MAXPOOL = "global_maxpool"

    # ---- elementwise unary (also the activations a conv epilogue can hold) ----
    IDENTITY = "identity"
    RELU = "relu"
    CLIP = "clip"  # alpha=min, beta=max (relu6 is clip 0..6)
    LEAKY_RELU = "leaky_relu"  # alpha=slope
    ELU = "elu"  # alpha
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"  # max(0, min(1, alpha*x + beta))
    SIGMOID = "sigmoid"
    TANH = "tanh"
    SILU = "silu"  # x * sigmoid(x)
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    NEG = "neg"
    ABS = "abs"
    RECIPROCAL = "reciprocal"

    # ---- elementwise binary, numpy broadcasting ----
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    MAX = "max"
    MIN = "min"
    POW = "pow"
    PRELU = "prelu"  # x if x >= 0 else slope * x; slope broadcast like a binary operand

    # ---- per-channel affine (a BatchNormalization that no conv absorbed) ----
    CHANNEL_AFFINE = "channel_affine"  # y = x * scale[c] + shift[c] on axis 1

    # ---- data movement ----
    CONCAT = "concat"
    SPLIT = "split"
    SLICE = "slice"
    RESHAPE = "reshape"  # Flatten/Squeeze/Unsqueeze/Reshape: same bytes, new shape
    TRANSPOSE = "transpose"
    PAD = "pad"
    RESIZE = "resize"

    # ---- reductions and normalisation ----
    SOFTMAX = "softmax"
    REDUCE_MEAN = "reduce_mean"
    REDUCE_MAX = "reduce_max"
    REDUCE_SUM = "reduce_sum"


CONV_LIKE = frozenset({Op.CONV2D, Op.CONV_TRANSPOSE2D, Op.DENSE})
# Layers whose weights the pruning schemes rewrite.
PRUNABLE = frozenset({Op.CONV2D, Op.DENSE})
POOLING = frozenset({Op.MAXPOOL, Op.AVGPOOL, Op.GLOBAL_AVGPOOL, Op.GLOBAL_MAXPOOL})
UNARY = frozenset(
    {
        Op.IDENTITY, Op.RELU, Op.CLIP, Op.LEAKY_RELU, Op.ELU, Op.HARDSWISH, Op.HARDSIGMOID,
        Op.SIGMOID, Op.TANH, Op.SILU, Op.EXP, Op.LOG, Op.SQRT, Op.NEG, Op.ABS, Op.RECIPROCAL,
    }
)  # fmt: skip
# Unary ops a conv/dense/binary epilogue may absorb.
ACTIVATIONS = frozenset(
    {Op.RELU, Op.CLIP, Op.LEAKY_RELU, Op.HARDSWISH, Op.HARDSIGMOID, Op.SIGMOID, Op.TANH, Op.SILU}
)
BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.POW, Op.PRELU})
ELEMENTWISE = UNARY | BINARY | {Op.CHANNEL_AFFINE}
DATA_MOVEMENT = frozenset(
    {Op.CONCAT, Op.SPLIT, Op.SLICE, Op.RESHAPE, Op.TRANSPOSE, Op.PAD, Op.RESIZE}
)
REDUCTION = frozenset({Op.SOFTMAX, Op.REDUCE_MEAN, Op.REDUCE_MAX, Op.REDUCE_SUM})
# Ops whose output aliases the input bytes (the memory planner shares the buffer).
VIEWS = frozenset({Op.RESHAPE, Op.IDENTITY})
