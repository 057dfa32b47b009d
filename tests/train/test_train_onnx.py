"""ONNX <-> torch: the converted module computes what ONNX Runtime computes on the zoo's
models; writing it back changes nothing but the trained tensors; a torch module's export keeps
every weight; residual networks whose equal batch-norm biases the exporter stores once train
and write back as two tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from train_helpers import dense_model, example, onnx_weights, run_ort, threads

import npas.train as T
from npas.errors import ModelError
from npas.zoo import exporter
from npas.zoo.registry import MODELS


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("zoo")
    out = {}
    for name in ("resnet18", "mobilenet_v3_small", "squeezenet", "encdec"):
        model = exporter.build(MODELS[name], (64, 64), seed=0)
        out[name] = exporter.to_onnx(model, (64, 64), d / f"{name}.onnx", 17)
    return out


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "squeezenet", "encdec"])
def test_converted_module_matches_onnxruntime(zoo: dict[str, Path], name: str) -> None:
    threads()
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    module = T.OnnxModule(zoo[name]).eval()
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, run_ort(zoo[name], x), rtol=1e-3, atol=1e-4)
    # every Conv/Gemm node is a trainable layer under its ONNX node name
    nodes = [n.name for n in onnx.load(str(zoo[name])).graph.node if n.op_type in ("Conv", "Gemm")]
    assert sorted(module.layer_names.values()) == sorted(nodes)


def test_write_back_changes_only_the_trained_tensors(zoo: dict[str, Path], tmp_path: Path) -> None:
    threads()
    src = zoo["resnet18"]
    module = T.OnnxModule(src)
    untouched = T.write_onnx(module, tmp_path / "same.onnx")
    a, b = onnx.load(str(src)), onnx.load(str(untouched))
    assert a.SerializeToString() == b.SerializeToString()

    # train one step: conv/gemm weights, BN affine and running statistics all change
    module.train()
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    module(x).square().mean().backward()
    opt.step()
    out = T.write_onnx(module, tmp_path / "trained.onnx")
    got = onnx_weights(out)
    before = onnx_weights(src)
    assert set(got) == set(before)
    changed = 0
    for init, (mod, attr, shape, transposed) in module.owned.items():
        t = getattr(module.layers[mod], attr).detach().numpy()
        want = (t.T if transposed else t).reshape(shape)
        np.testing.assert_array_equal(got[init], want, err_msg=init)
        changed += not np.array_equal(got[init], before[init])
    assert changed > 0.9 * len(module.owned)
    assert [n.name for n in onnx.load(str(out)).graph.node] == [n.name for n in a.graph.node]
    module.eval()
    xn = x.numpy()
    with torch.no_grad():
        ref = module(x).numpy()
    np.testing.assert_allclose(run_ort(out, xn), ref, rtol=1e-3, atol=1e-4)


def test_torch_export_keeps_every_weight(tmp_path: Path) -> None:
    threads()
    model = dense_model()
    path = T.export_onnx(model, tmp_path / "m.onnx", example())
    got = onnx_weights(path)
    inits = set(got)
    assert {f"{n}.weight" for n, m in model.named_modules() if hasattr(m, "weight")} <= inits | {
        "layer2.shortcut.1.bias"
    }
    reloaded = T.OnnxModule(path).eval()
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name in inits:
            np.testing.assert_array_equal(got[name], t.numpy(), err_msg=name)
    # whatever the exporter stored once, the reloaded module gives every tensor back
    bn_tensors = {
        name: t for name, t in model.state_dict().items() if not name.endswith("batches_tracked")
    }
    owned_vals = {
        init: getattr(reloaded.layers[mod], attr).detach().numpy()
        for init, (mod, attr, _, _) in reloaded.owned.items()
    }
    for name, t in bn_tensors.items():
        assert name in owned_vals, name
        np.testing.assert_array_equal(owned_vals[name], t.numpy(), err_msg=name)
    x = example()
    with torch.no_grad():
        np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_aliased_batch_norm_biases_train_apart(tmp_path: Path) -> None:
    """torch.onnx.export stores two equal tensors once (Identity alias). Trained apart, both
    come back as tensors of their own."""
    threads()
    model = dense_model()
    sd = model.state_dict()
    assert torch.equal(sd["layer2.body.1.1.bias"], sd["layer2.shortcut.1.bias"])
    path = T.export_onnx(model, tmp_path / "m.onnx", example())
    proto = onnx.load(str(path))
    assert any(n.op_type == "Identity" for n in proto.graph.node)
    module = T.OnnxModule(path)
    with torch.no_grad():
        for init, (mod, attr, _, _) in module.owned.items():
            if init == "layer2.shortcut.1.bias":
                getattr(module.layers[mod], attr).add_(1.0)
    out = T.write_onnx(module, tmp_path / "apart.onnx")
    again = T.OnnxModule(out)
    vals = {
        init: getattr(again.layers[mod], attr).detach().numpy()
        for init, (mod, attr, _, _) in again.owned.items()
    }
    np.testing.assert_array_equal(vals["layer2.shortcut.1.bias"], sd["layer2.shortcut.1.bias"] + 1)
    np.testing.assert_array_equal(vals["layer2.body.1.1.bias"], sd["layer2.body.1.1.bias"])
    assert [n.name for n in onnx.load(str(out)).graph.node] == [n.name for n in proto.graph.node]


def test_unsupported_op_names_the_node(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Erf", ["x"], ["y"], name="my_erf")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelError, match=r"my_erf.*Erf"):
        T.OnnxModule(m)
