"""End to end on real exporter output: a small PyTorch network with conv-BN-activation, a
decomposed hard-swish, SiLU, a squeeze-excite block and a residual add, exported with
torch.onnx.export, loaded, run through the pipeline and compared with ONNX Runtime."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from ir_helpers import run_ort

from npas.frontend import load_onnx
from npas.ir import Op
from npas.ir.interp import run_graph
from npas.ir.ops import ACTIVATIONS
from npas.passes import run_pipeline

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.se_reduce = nn.Conv2d(8, 4, 1)
        self.se_expand = nn.Conv2d(4, 8, 1)
        self.conv2 = nn.Conv2d(8, 8, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        t = self.bn0(self.conv0(x))
        t = t * F.relu6(t + 3) / 6  # hard-swish the way older model code writes it
        y = F.silu(self.bn1(self.conv1(t)))
        s = y.mean((2, 3), keepdim=True)  # squeeze-excite
        s = F.hardsigmoid(self.se_expand(F.relu(self.se_reduce(s))))
        y = y * s
        y = F.relu(self.bn2(self.conv2(y)) + t)  # residual
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def _export(opset: int, fold: bool) -> bytes:
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():  # non-trivial BN statistics, so folding them matters
        for bn in (net.bn0, net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (torch.randn(1, 3, 16, 16),), buf, dynamo=False, opset_version=opset,
            do_constant_folding=fold, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )  # fmt: skip
    return buf.getvalue()


# without constant folding the exporter keeps BatchNormalization (and adds Identity/Cast nodes)
@pytest.mark.parametrize("opset, fold", [(13, False), (17, True)])
def test_torch_export_pipeline(opset: int, fold: bool):
    import onnx

    data = _export(opset, fold)
    graph = load_onnx(data)
    assert graph.shape("input") == (1, 3, 16, 16)  # symbolic batch -> 1
    affine = [layer for layer in graph.layers if layer.op is Op.CHANNEL_AFFINE]
    assert len(affine) == (0 if fold else 3)
    out = run_pipeline(graph, verify=True)

    ops = [layer.op for layer in out.layers]
    assert Op.CHANNEL_AFFINE not in ops
    assert not [op for op in ops if op in ACTIVATIONS], ops  # every activation fused
    acts = {layer.epilogue.act.op for layer in out.layers if layer.epilogue.act is not None}
    assert acts == {Op.HARDSWISH, Op.SILU, Op.RELU, Op.HARDSIGMOID}
    assert sum(layer.epilogue.residual for layer in out.layers) == 1
    assert ops.count(Op.GLOBAL_AVGPOOL) == 2 and ops.count(Op.CONV2D) == 5

    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    want = run_ort(onnx.load_from_string(data), {"input": x})["logits"]
    for g in (graph, out):
        np.testing.assert_allclose(run_graph(g, {"input": x})["logits"], want, rtol=1e-4, atol=1e-5)
