"""The ONNX backend node test suite through npas on the host target.

The node cases are generated in memory by the installed onnx package
(`onnx.backend.test.loader.load_model_tests(kind="node")`). Every case of an operator npas
supports runs: npas compiles the one-node model to a native library and runs it.

Node tests feed weights (Conv W, Reshape shape, Resize scales, ...) as graph inputs. npas
compiles ahead of time with constant weights, so the backend bakes the inputs at the positions
the frontend declares constant (`constant_input_positions`) into initializers before compiling;
everything else stays a runtime input and goes through the generated kernels.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnx.backend.base
import onnx.backend.test
from onnx import helper, numpy_helper
from onnx.backend.test.loader import load_model_tests

import npas
from npas.frontend import constant_input_positions

# ---- what npas supports, as the node suite names it ----
SUPPORTED = [
    "abs", "add", "averagepool", "basic_conv", "batchnorm", "clip", "concat", "constant",
    "conv", "convtranspose", "div", "dropout", "elu", "exp", "flatten", "gemm",
    "globalaveragepool", "globalmaxpool", "hardsigmoid", "hardswish", "identity", "leakyrelu",
    "log", "matmul", "max", "maxpool", "min", "mul", "neg", "pow", "prelu", "reciprocal",
    "reduce_max", "reduce_mean", "reduce_sum", "relu", "reshape", "resize", "sigmoid", "slice",
    "softmax", "split", "sqrt", "squeeze", "sub", "tanh", "transpose", "unsqueeze",
    "constant_pad", "edge_pad", "reflect_pad",
]  # fmt: skip

# ---- excluded on purpose, with the reason ----
EXCLUDED: dict[str, str] = {
    # npas compiles float32 activations; integer/bool/float16/double tensors exist only while
    # shapes are computed and are folded at compile time.
    r"_(u?int\d+|bool|float16|bfloat16|double|fp16|string)\b": "non-float32 dtype",
    r"^test_clip(?!_default_inbounds_expanded$)(_\w+)?_expanded$": (
        "the expanded Clip compares and selects activations (Less/Where); npas evaluates those "
        "ops only on constants"
    ),
    r"_expanded_ver18$|^test_(leakyrelu|prelu)\w*_expanded$": (
        "the expanded form casts and selects activations (CastLike/Where); npas evaluates those "
        "ops only on constants"
    ),
    r"^test_reduce_sum_square": "ReduceSumSquare is not supported",
    r"^test_maxpool_with_argmax": "second (int64 indices) output not supported",
    r"^test_maxpool_3d|^test_averagepool_3d|_3d_|^test_averagepool_1d|^test_maxpool_1d": (
        "only 2-D spatial (NCHW) pooling and convolution are compiled"
    ),
    r"^test_conv_with_autopad_same|^test_convtranspose_1d|^test_convtranspose_3d": (
        "1-D/3-D convolutions are not compiled"
    ),
    r"^test_resize_.*(cubic|antialias|tf_crop_and_resize|keep_aspect_ratio|_axes_)": (
        "Resize: cubic, antialias, crop-and-resize and aspect-ratio policies are not compiled"
    ),
    r"^test_split_zero_size|^test_slice_start_out_of_bounds|_zero_size|^test_reshape_allowzero": (
        "zero-sized tensors are not supported"
    ),
    r"^test_reduce_.*_empty_set|^test_reduce_.*_empty_axes_input_noop": (
        "empty reductions produce no float work"
    ),
    r"^test_pow_types": "mixed-type Pow",
    r"^test_identity_(sequence|opt)|^test_split_to_sequence": "sequence/optional types",
    r"^test_resize_downsample_scales_linear_align_corners$": (
        "the reference output uses a fractional output width; ONNX Runtime and npas use "
        "the integer one (npas's contract is to match ONNX Runtime)"
    ),
    r"^test_.*_training_mode|^test_batchnorm_.*training": "training-mode BatchNormalization",
    r"^test_dropout_.*(mask|training)": "training-mode Dropout",
}


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _baked_inputs(model: onnx.ModelProto) -> set[str]:
    """Graph inputs that feed a position the frontend needs constant (weights, shapes, axes)."""
    opset = _opset(model)
    names: set[str] = set()
    for node in model.graph.node:
        for pos in constant_input_positions(node.op_type, opset):
            if pos < len(node.input) and node.input[pos]:
                names.add(node.input[pos])
    return names


def _float32_only(model: onnx.ModelProto) -> bool:
    """Every runtime input and every output is float32 (baked inputs may be int64 shapes)."""
    baked = _baked_inputs(model)
    runtime = [vi for vi in model.graph.input if vi.name not in baked]
    for vi in runtime + list(model.graph.output):
        if vi.type.tensor_type.elem_type not in (0, onnx.TensorProto.FLOAT):
            return False
    return True


class NpasRep(onnx.backend.base.BackendRep):
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model

    def run(self, inputs, **kwargs):
        graph = self.model.graph
        const_names = _baked_inputs(self.model)
        baked = onnx.ModelProto()
        baked.CopyFrom(self.model)
        feeds = {}
        del baked.graph.input[:]
        for vi, value in zip(graph.input, inputs, strict=False):
            if vi.name in const_names:
                baked.graph.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
            else:
                baked.graph.input.append(vi)
                feeds[vi.name] = np.asarray(value)
        cm = npas.compile(baked, target="host")
        out = cm.run(feeds)
        return tuple(out[o.name] for o in graph.output)


class NpasBackend(onnx.backend.base.Backend):
    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"

    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        return NpasRep(model)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        graph = helper.make_graph(
            [node], "node",
            [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in node.input],
            [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in node.output],
        )  # fmt: skip
        return NpasRep(helper.make_model(graph)).run(inputs)


def _selected_cases() -> tuple[list[str], dict[str, str]]:
    """Node cases of supported ops, and the excluded ones with their reason."""
    chosen, skipped = [], {}
    op_re = re.compile(r"^test_(" + "|".join(map(re.escape, SUPPORTED)) + r")(_|$)")
    for case in load_model_tests(kind="node"):
        if not op_re.match(case.name):
            continue
        reason = next((why for pat, why in EXCLUDED.items() if re.search(pat, case.name)), None)
        if reason is None and case.model is not None and not _float32_only(case.model):
            reason = "non-float32 graph input or output"
        if reason:
            skipped[case.name] = reason
        else:
            chosen.append(case.name)
    return chosen, skipped


SELECTED, EXCLUDED_CASES = _selected_cases()

backend_test = onnx.backend.test.BackendTest(NpasBackend, __name__)
for _name in SELECTED:
    backend_test.include(rf"^{re.escape(_name)}_cpu$")
# The runner makes a (skipped) method for every case of every op; keep only the selected ones
# so a skip in the report always means something.
_wanted = {f"{name}_cpu" for name in SELECTED}
_cases = backend_test.test_cases  # a property that builds new classes on every access
for _cls in _cases.values():
    for _attr in [a for a in vars(_cls) if a.startswith("test_") and a not in _wanted]:
        delattr(_cls, _attr)
globals().update(_cases)


def test_selection_is_not_empty() -> None:
    # A typo in SUPPORTED or a changed onnx naming must not silently select nothing.
    assert len(SELECTED) > 150, len(SELECTED)
    for op in ("conv", "relu", "add", "maxpool", "resize", "gemm", "concat", "softmax"):
        assert any(name.startswith(f"test_{op}") for name in SELECTED), op
