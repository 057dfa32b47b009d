"""Frontend errors: each is an npas.errors class whose message says what, where and what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ir_helpers import model, rand
from onnx import TensorProto, helper

from npas.errors import ModelError, NpasError, ShapeError, UnsupportedOpError
from npas.frontend import constant_input_positions, load_onnx, supported_ops


def relu_model(**kw: object):
    return model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")], {"x": [1, 3, 4, 4]}, ["y"], **kw
    )


def test_missing_file(tmp_path: Path):
    with pytest.raises(ModelError, match=r"not found: .*nope\.onnx"):
        load_onnx(tmp_path / "nope.onnx")


def test_truncated_file(tmp_path: Path):
    conv = helper.make_node("Conv", ["x", "W"], ["y"], name="c")
    data = model([conv], {"x": [1, 3, 8, 8]}, ["y"], {"W": rand(8, 3, 3, 3)}).SerializeToString()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"truncated\.onnx.*(truncated|re-export)"):
        load_onnx(path)


@pytest.mark.parametrize("payload", [b"", b"hello, this is not a model\n", bytes(range(256))])
def test_not_an_onnx_file(tmp_path: Path, payload: bytes):
    path = tmp_path / "notes.onnx"
    path.write_bytes(payload)
    with pytest.raises(ModelError, match=r"notes\.onnx"):
        load_onnx(path)
    with pytest.raises(ModelError, match="not an ONNX model"):
        load_onnx(payload)


def test_bytes_and_path_inputs(tmp_path: Path):
    m = relu_model()
    path = tmp_path / "m.onnx"
    path.write_bytes(m.SerializeToString())
    assert len(load_onnx(str(path)).layers) == len(load_onnx(m.SerializeToString()).layers) == 1


def test_unsupported_op_names_op_node_and_opset():
    m = model([helper.make_node("Celu", ["x"], ["y"], name="my_celu")], {"x": [2, 3]}, ["y"])
    with pytest.raises(UnsupportedOpError) as e:
        load_onnx(m)
    assert (e.value.op, e.value.node, e.value.opset) == ("Celu", "my_celu", 13)
    assert "Celu" in str(e.value) and "my_celu" in str(e.value) and "13" in str(e.value)


def test_unsupported_op_of_unnamed_node_uses_generated_name():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Celu", ["a"], ["y"])]
    with pytest.raises(UnsupportedOpError, match="Celu_1"):
        load_onnx(model(nodes, {"x": [2, 3]}, ["y"]))


def test_op_newer_than_the_model_opset():
    m = model([helper.make_node("HardSwish", ["x"], ["y"], name="hs")], {"x": [2]}, ["y"], opset=13)
    with pytest.raises(UnsupportedOpError, match="from opset 14"):
        load_onnx(m)


def test_custom_domain():
    node = helper.make_node("FusedConv", ["x"], ["y"], name="fc", domain="com.microsoft")
    m = model([node], {"x": [2]}, ["y"])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpError, match=r"com\.microsoft"):
        load_onnx(m)


def test_conv3d_is_a_clear_error():
    node = helper.make_node("Conv", ["x", "W"], ["y"], name="conv3d")
    m = model([node], {"x": [1, 2, 4, 4, 4]}, ["y"], {"W": rand(3, 2, 3, 3, 3)})
    with pytest.raises(UnsupportedOpError, match=r"conv3d.*3-D"):
        load_onnx(m)


def test_runtime_weight_is_a_clear_error():
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c")
    m = model([node], {"x": [1, 2, 4, 4], "w": [3, 2, 3, 3]}, ["y"])
    with pytest.raises(UnsupportedOpError, match=r"'c'.*input 1 \(weight\) 'w' must be a constant"):
        load_onnx(m)


def test_unsupported_attribute_values():
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="cubic")
    m = model([node], {"x": [1, 1, 2, 2]}, ["y"], {"s": np.array([1, 1, 2, 2], np.float32)})
    with pytest.raises(UnsupportedOpError, match="cubic"):
        load_onnx(m)
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs")
    m = model([node], {"x": [1, 4, 2, 2]}, ["y"], {"s": np.array([1, 2, 1, 1], np.float32)})
    with pytest.raises(UnsupportedOpError, match="only the H and W"):
        load_onnx(m)


def test_shape_op_on_runtime_data():
    node = helper.make_node("Where", ["c", "x", "z"], ["y"], name="w")
    m = model([node], {"c": [2], "x": [2], "z": [2]}, ["y"], input_types={"c": TensorProto.BOOL})
    with pytest.raises(ModelError, match="'c' is BOOL"):
        load_onnx(m)
    node = helper.make_node("Where", ["c", "x", "z"], ["y"], name="w")
    m = model([node], {"x": [2], "z": [2]}, ["y"], {"c": np.array([True, False])})
    with pytest.raises(UnsupportedOpError, match="only at load time"):
        load_onnx(m)


def test_cast_of_activation_to_int():
    node = helper.make_node("Cast", ["x"], ["y"], name="cast", to=TensorProto.INT64)
    with pytest.raises(UnsupportedOpError, match="float32 only"):
        load_onnx(model([node], {"x": [2]}, ["y"]))


def test_gather_with_irregular_indices():
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="g", axis=1)
    m = model([node], {"x": [1, 5]}, ["y"], {"i": np.array([0, 3, 1], np.int64)})
    with pytest.raises(UnsupportedOpError, match="evenly spaced"):
        load_onnx(m)


def test_bad_reshape_names_node():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="rshp")
    m = model([node], {"x": [2, 3]}, ["y"], {"s": np.array([4, -1], np.int64)})
    with pytest.raises(ModelError, match=r"Reshape node 'rshp'.*cannot reshape \[2, 3\]"):
        load_onnx(m)


def test_shape_mismatch_names_node():
    node = helper.make_node("Add", ["a", "b"], ["y"], name="bad_add")
    with pytest.raises(ModelError, match=r"bad_add.*do not broadcast.*--input-shape"):
        load_onnx(model([node], {"a": [2, 3], "b": [4]}, ["y"]))


@pytest.mark.parametrize("opset", [10, 26])
def test_opset_out_of_range(opset: int):
    with pytest.raises(
        ModelError, match=rf"opset {opset}; npas supports opsets 11-25.*version_converter"
    ):
        load_onnx(relu_model(opset=opset))


def test_dynamic_dim_needs_input_shape():
    m = model([helper.make_node("Relu", ["x"], ["y"])], {"x": ["N", 3, "H", 224]}, ["y"])
    with pytest.raises(ShapeError, match=r"'x': dim 2 is dynamic \('H'\); pass --input-shape x="):
        load_onnx(m)
    g = load_onnx(m, input_shapes={"x": (2, 3, 5, 224)})
    assert g.shape("x") == (2, 3, 5, 224)


def test_symbolic_batch_becomes_one():
    m = model([helper.make_node("Relu", ["x"], ["y"])], {"x": ["N", 3, 4, 4]}, ["y"])
    assert load_onnx(m).shape("x") == (1, 3, 4, 4)


def test_input_shapes_errors():
    with pytest.raises(ShapeError, match=r"names \['nope'\].*\['x'\]"):
        load_onnx(relu_model(), input_shapes={"nope": (1,)})
    with pytest.raises(ShapeError, match="rank"):
        load_onnx(relu_model(), input_shapes={"x": (1, 3)})


def test_non_float_input_that_carries_data():
    node = helper.make_node("Relu", ["x"], ["y"], name="r")
    m = model([node], {"x": [2]}, ["y"], input_types={"x": TensorProto.DOUBLE})
    with pytest.raises(ModelError, match="'x' is DOUBLE; npas compiles float32"):
        load_onnx(m)


def test_errors_are_npas_errors():
    assert issubclass(UnsupportedOpError, NpasError) and issubclass(ShapeError, NpasError)


def test_constant_input_positions():
    assert constant_input_positions("Conv", 13) == (1, 2)
    assert constant_input_positions("Squeeze", 11) == ()
    assert constant_input_positions("Squeeze", 13) == (1,)
    assert constant_input_positions("ReduceMean", 17) == ()
    assert constant_input_positions("ReduceMean", 18) == (1,)
    assert constant_input_positions("Resize", 19) == (1, 2, 3)
    assert constant_input_positions("Clip", 10) == ()
    assert constant_input_positions("Clip", 11) == (1, 2)
    assert constant_input_positions("NoSuchOp", 13) == ()
    assert "Conv" in supported_ops() and "Shape" in supported_ops()
