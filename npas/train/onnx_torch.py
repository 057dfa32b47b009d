"""ONNX -> trainable torch module, and the trained weights back into the same ONNX.

`OnnxModule(model.onnx)` runs the ONNX graph node by node with torch functions. Conv, Gemm
and MatMul with a stored weight become `nn.Conv2d` / `nn.Linear` modules and
BatchNormalization a real `nn.BatchNorm*d` (batch statistics in training, running statistics
in eval), so a user holding only an ONNX file can fine-tune and prune it. Every other stored
tensor (reshape targets, clip bounds, constant operands) stays a frozen buffer.

The way back, `write_onnx`, copies the original model and replaces only the initializers the
modules own: the graph, its node names (which prune configs name) and every attribute stay as
they were, so ONNX Runtime and npas read the result as they read the original. Node names
follow the npas frontend (unnamed nodes are `<op>_<index>`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from npas.errors import ModelError
from npas.frontend.loader import _node_names, _read_model

Env = dict[str, Any]


class GemmLinear(nn.Linear):
    """ONNX Gemm / MatMul with a stored weight: y = alpha * x @ W^T + beta * C, W in the
    [F, C] layout the pruning schemes read (an ONNX B of transB=0 is stored transposed)."""

    def __init__(self, w: np.ndarray, bias: np.ndarray | None, alpha: float, beta: float) -> None:
        super().__init__(w.shape[1], w.shape[0], bias=bias is not None)
        self.alpha, self.beta = alpha, beta
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(w))
            if bias is not None:
                self.bias.copy_(torch.from_numpy(np.array(np.broadcast_to(bias, (w.shape[0],)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight)
        if self.alpha != 1.0:
            y = y * self.alpha
        if self.bias is not None:
            y = y + (self.bias * self.beta if self.beta != 1.0 else self.bias)
        return y


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _safe(name: str, taken: set[str]) -> str:
    """A torch submodule name for an ONNX node name (no dots, unique)."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "node"
    if base[0].isdigit():
        base = f"n_{base}"
    unique, i = base, 1
    while unique in taken:
        unique, i = f"{base}_{i}", i + 1
    taken.add(unique)
    return unique


def _pads_2d(attrs: dict[str, Any], node: str) -> tuple[tuple[int, int], list[int] | None]:
    """(symmetric conv padding, explicit F.pad list or None) from ONNX pads."""
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        raise ModelError(
            f"node {node!r}: auto_pad={attrs['auto_pad']!r} is not supported for training; "
            "re-export the model with explicit pads"
        )
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), [left, right, top, bottom]


class OnnxModule(nn.Module):
    """A torch module that computes an ONNX model (see the module docstring).

    `layer_names` maps each conv/dense submodule's name to its ONNX node name; prune configs
    and reports use the node names."""

    def __init__(self, model: str | os.PathLike[str] | bytes | onnx.ModelProto) -> None:
        super().__init__()
        src = str(model) if isinstance(model, os.PathLike) else model
        proto, _ = _read_model(src)
        self.proto = onnx.ModelProto()
        self.proto.CopyFrom(proto)
        g = self.proto.graph
        inits = {t.name: numpy_helper.to_array(t).copy() for t in g.initializer}
        # torch.onnx.export stores equal tensors once and aliases the others through Identity
        # nodes (the two batch-norm biases of a residual sum train to equal values): each alias
        # becomes a tensor of its own, written back as an initializer of its own.
        self.aliases: set[str] = set()
        for node in g.node:
            if node.op_type == "Identity" and node.input[0] in inits:
                inits[node.output[0]] = inits[node.input[0]].copy()
                self.aliases.add(node.output[0])
        self.input_names = [i.name for i in g.input if i.name not in inits]
        self.output_names = [o.name for o in g.output]
        self.layers = nn.ModuleDict()
        self.layer_names: dict[str, str] = {}
        # initializer name -> (submodule, attribute, original shape, transposed)
        self.owned: dict[str, tuple[str, str, tuple[int, ...], bool]] = {}
        self._steps: list[tuple[Callable[..., Any], onnx.NodeProto, dict[str, Any], str]] = []
        weight_uses: dict[str, str] = {}
        taken: set[str] = set()
        for node, name in zip(g.node, _node_names(g), strict=True):
            if node.op_type == "Identity" and node.output[0] in self.aliases:
                continue
            attrs = _attrs(node)
            if node.domain not in ("", "ai.onnx"):
                raise ModelError(
                    f"node {name!r}: op {node.domain}.{node.op_type} cannot be trained"
                )
            mod = ""
            if node.op_type in ("Conv", "Gemm", "MatMul", "BatchNormalization", "ConvTranspose"):
                owned = node.input[1:] if node.op_type != "MatMul" else node.input[1:2]
                stored = [n for n in owned if n in inits]
                if node.op_type != "MatMul" or stored:
                    if len(stored) != len([n for n in owned if n]):
                        raise ModelError(
                            f"node {name!r} ({node.op_type}): its weights must be stored "
                            "initializers to be trained; this one computes them"
                        )
                    for w in stored:
                        if w in weight_uses:
                            raise ModelError(
                                f"node {name!r} ({node.op_type}) shares weight {w!r} with node "
                                f"{weight_uses[w]!r}; shared weights cannot be trained here"
                            )
                        weight_uses[w] = name
                    mod = _safe(name, taken)
                    self.layers[mod] = self._build(node, name, mod, attrs, inits)
                    if node.op_type in ("Conv", "Gemm", "MatMul"):
                        self.layer_names[f"layers.{mod}"] = name
            fn = _OPS.get(node.op_type)
            if fn is None:
                raise ModelError(
                    f"node {name!r}: op {node.op_type} is not supported by the ONNX-to-torch "
                    f"converter (supported: {', '.join(sorted(_OPS))}); fine-tune the PyTorch "
                    "model instead"
                )
            self._steps.append((fn, node, attrs, mod))
        self.consts = nn.Module()
        self._const_of: dict[str, str] = {}
        ctaken: set[str] = set()
        for n, arr in inits.items():
            if n in weight_uses:
                continue
            key = _safe(n, ctaken)
            self.consts.register_buffer(key, torch.from_numpy(arr))
            self._const_of[n] = key

    # ---- construction ----
    def _own(self, init: str, mod: str, attr: str, shape: tuple[int, ...], t: bool) -> None:
        self.owned[init] = (mod, attr, shape, t)

    def _build(
        self, node: onnx.NodeProto, name: str, mod: str, attrs: dict[str, Any], inits: Env
    ) -> nn.Module:
        op = node.op_type
        if op in ("Conv", "ConvTranspose"):
            w = inits[node.input[1]]
            if w.ndim != 4:
                raise ModelError(
                    f"node {name!r}: only 2-D convolutions can be trained (weight {list(w.shape)})"
                )
            (ph, pw), _ = _pads_2d(attrs, name)
            bias = node.input[2] if len(node.input) > 2 and node.input[2] else ""
            groups = int(attrs.get("group", 1))
            common: dict[str, Any] = {
                "stride": tuple(attrs.get("strides", [1, 1])),
                "padding": (ph, pw),
                "dilation": tuple(attrs.get("dilations", [1, 1])),
                "groups": groups,
                "bias": bool(bias),
            }
            m: nn.Module
            if op == "Conv":
                m = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), **common)
            else:
                if attrs.get("output_shape"):
                    raise ModelError(f"node {name!r}: ConvTranspose output_shape is not supported")
                m = nn.ConvTranspose2d(
                    w.shape[0], w.shape[1] * groups, tuple(w.shape[2:]),
                    output_padding=tuple(attrs.get("output_padding", [0, 0])), **common,
                )  # fmt: skip
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(w))
                self._own(node.input[1], mod, "weight", w.shape, False)
                if bias:
                    assert m.bias is not None
                    m.bias.copy_(torch.from_numpy(inits[bias]))
                    self._own(bias, mod, "bias", inits[bias].shape, False)
            return m
        if op == "BatchNormalization":
            scale, b, mean, var = (inits[n] for n in node.input[1:5])
            c = scale.shape[0]
            momentum = 1.0 - float(attrs.get("momentum", 0.9))
            bn = nn.BatchNorm2d(c, eps=float(attrs.get("epsilon", 1e-5)), momentum=momentum)
            with torch.no_grad():
                for attr, arr, init in zip(
                    ("weight", "bias", "running_mean", "running_var"),
                    (scale, b, mean, var),
                    node.input[1:5],
                    strict=True,
                ):
                    getattr(bn, attr).copy_(torch.from_numpy(arr))
                    self._own(init, mod, attr, arr.shape, False)
            return bn
        # Gemm / MatMul with a stored B
        b_arr = inits[node.input[1]]
        if b_arr.ndim != 2:
            raise ModelError(f"node {name!r}: weight {list(b_arr.shape)} is not a matrix")
        if op == "Gemm" and attrs.get("transA", 0):
            raise ModelError(f"node {name!r}: Gemm with transA=1 is not supported for training")
        trans = not (op == "Gemm" and attrs.get("transB", 0))
        w = b_arr.T.copy() if trans else b_arr
        c_name = node.input[2] if op == "Gemm" and len(node.input) > 2 else ""
        c = inits[c_name] if c_name else None
        if c is not None and c.size not in (1, w.shape[0]):
            raise ModelError(f"node {name!r}: Gemm bias {list(c.shape)} is not per output")
        lin = GemmLinear(
            w,
            c.reshape(-1) if c is not None else None,
            float(attrs.get("alpha", 1.0)),
            float(attrs.get("beta", 1.0)),
        )
        self._own(node.input[1], mod, "weight", b_arr.shape, trans)
        if c_name:
            assert c is not None
            self._own(c_name, mod, "bias", c.shape, False)
        return lin

    # ---- running ----
    def forward(self, *xs: torch.Tensor) -> Any:
        if len(xs) != len(self.input_names):
            raise ModelError(
                f"the model takes {len(self.input_names)} input(s) "
                f"({', '.join(self.input_names)}), got {len(xs)}"
            )
        env: Env = dict(zip(self.input_names, xs, strict=True))
        for name, key in self._const_of.items():
            env[name] = getattr(self.consts, key)
        for fn, node, attrs, mod in self._steps:
            # weights a module owns are not in env: the module holds them
            args = [env.get(n) if n else None for n in node.input]
            out = fn(self.layers[mod] if mod else None, args, attrs)
            outs = out if isinstance(out, tuple) else (out,)
            for n, v in zip(node.output, outs, strict=False):
                if n:
                    env[n] = v
        res = tuple(env[n] for n in self.output_names)
        return res[0] if len(res) == 1 else res

    # ---- back to ONNX ----
    def to_proto(self) -> onnx.ModelProto:
        """The original model with the current weights (see write_onnx)."""
        proto = onnx.ModelProto()
        proto.CopyFrom(self.proto)
        gp = proto.graph
        # An alias the training owns gets an initializer of its own behind its Identity node
        # (the node stays, so unnamed nodes keep their <op>_<index> names).
        source = {}
        names = {t.name for t in gp.initializer}
        for node in gp.node:
            if node.op_type == "Identity" and node.output[0] in self.aliases & set(self.owned):
                new, i = f"{node.output[0]}.trained", 0
                while new in names:
                    new, i = f"{node.output[0]}.trained{i}", i + 1
                names.add(new)
                t = gp.initializer.add()
                t.CopyFrom(next(x for x in self.proto.graph.initializer if x.name == node.input[0]))
                t.name = new
                source[new] = node.output[0]
                node.input[0] = new
        used = {i for n in gp.node for i in n.input} | {o.name for o in gp.output}
        kept = [t for t in gp.initializer if t.name in used]
        del gp.initializer[:]
        gp.initializer.extend(kept)
        for t in gp.initializer:
            key = source.get(t.name, t.name)
            if key not in self.owned:
                continue
            mod, attr, shape, transposed = self.owned[key]
            arr = getattr(self.layers[mod], attr).detach().cpu().numpy()
            arr = arr.T if transposed else arr
            dtype = numpy_helper.to_array(t).dtype
            t.CopyFrom(numpy_helper.from_array(arr.reshape(shape).astype(dtype), t.name))
        return proto


def write_onnx(model: OnnxModule, path: str | os.PathLike[str]) -> Path:
    """Write `model`'s weights into its original ONNX graph at `path` (temp file + rename)."""
    from npas.passes.prune.onnx_prune import _write_atomic

    out = Path(path)
    _write_atomic(model.to_proto(), out)
    return out


# ---------------------------------------------------------------- the op table
def _x(args: list[Any], i: int) -> Any:
    return args[i] if i < len(args) else None


def _ints(t: Any) -> list[int]:
    return [int(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t)]


def _conv(m: nn.Module, args: list[Any], a: Env) -> Any:
    _, extra = _pads_2d(a, "conv")
    x = args[0] if extra is None else F.pad(args[0], extra)
    return m(x)


def _bn(m: nn.Module, args: list[Any], a: Env) -> Any:
    return m(args[0])


def _pool(kind: str) -> Callable[..., Any]:
    def run(_: Any, args: list[Any], a: Env) -> Any:
        (ph, pw), extra = _pads_2d(a, kind)
        x = args[0]
        k = tuple(a["kernel_shape"])
        s = tuple(a.get("strides", [1] * len(k)))
        ceil = bool(a.get("ceil_mode", 0))
        if kind == "max":
            if extra is not None:
                x = F.pad(x, extra, value=float("-inf"))
            d = tuple(a.get("dilations", [1] * len(k)))
            return F.max_pool2d(x, k, s, (ph, pw), d, ceil_mode=ceil)
        include = bool(a.get("count_include_pad", 0))
        if extra is not None:
            if not include:
                raise ModelError("AveragePool with asymmetric pads and count_include_pad=0")
            x = F.pad(x, extra)
        return F.avg_pool2d(x, k, s, (ph, pw), ceil_mode=ceil, count_include_pad=include)

    return run


def _clip(_: Any, args: list[Any], a: Env) -> Any:
    lo, hi = _x(args, 1), _x(args, 2)
    lo = float(lo) if lo is not None else a.get("min")
    hi = float(hi) if hi is not None else a.get("max")
    return torch.clamp(args[0], lo, hi)


def _flatten(_: Any, args: list[Any], a: Env) -> Any:
    x = args[0]
    axis = int(a.get("axis", 1)) % max(x.dim(), 1)
    return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)


def _reshape(_: Any, args: list[Any], a: Env) -> Any:
    x, shape = args[0], _ints(args[1])
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _axes(args: list[Any], a: Env) -> list[int] | None:
    ax = _x(args, 1)
    if ax is not None:
        return _ints(ax)
    return list(a["axes"]) if "axes" in a else None


def _squeeze(_: Any, args: list[Any], a: Env) -> Any:
    axes = _axes(args, a)
    x = args[0]
    if axes is None:
        return x.squeeze()
    for ax in sorted((ax % x.dim() for ax in axes), reverse=True):
        x = x.squeeze(ax)
    return x


def _unsqueeze(_: Any, args: list[Any], a: Env) -> Any:
    axes = _axes(args, a) or []
    x = args[0]
    rank = x.dim() + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        x = x.unsqueeze(ax)
    return x


def _reduce_mean(_: Any, args: list[Any], a: Env) -> Any:
    axes = _axes(args, a)
    keep = bool(a.get("keepdims", 1))
    if axes is None:
        return (
            args[0].mean()
            if not keep
            else args[0].mean(dim=tuple(range(args[0].dim())), keepdim=True)
        )
    return args[0].mean(dim=tuple(axes), keepdim=keep)


def _gather(_: Any, args: list[Any], a: Env) -> Any:
    x, idx = args
    return torch.index_select(x, int(a.get("axis", 0)), idx.reshape(-1).long()).reshape(
        *x.shape[: int(a.get("axis", 0))], *idx.shape, *x.shape[int(a.get("axis", 0)) + 1 :]
    )


def _concat(_: Any, args: list[Any], a: Env) -> Any:
    return torch.cat([t for t in args if t is not None], dim=int(a["axis"]))


def _pad(_: Any, args: list[Any], a: Env) -> Any:
    x = args[0]
    pads = _ints(args[1]) if _x(args, 1) is not None else list(a["pads"])
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    value = float(args[2]) if _x(args, 2) is not None else float(a.get("value", 0.0))
    r = x.dim()
    tp: list[int] = []
    for i in reversed(range(r)):
        tp += [pads[i], pads[i + r]]
    return F.pad(x, tp, mode=mode, value=value) if mode == "constant" else F.pad(x, tp, mode=mode)


def _resize(_: Any, args: list[Any], a: Env) -> Any:
    x = args[0]
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    sizes = _x(args, 3)
    scales = _x(args, 2)
    if sizes is not None and sizes.numel():
        size = _ints(sizes)[2:]
        kw: dict[str, Any] = {"size": size}
    elif scales is not None and scales.numel():
        kw = {"scale_factor": [float(s) for s in scales.tolist()[2:]]}
    else:
        raise ModelError("Resize without scales or sizes")
    if mode == "nearest":
        return F.interpolate(x, mode="nearest", **kw)
    ctm = a.get("coordinate_transformation_mode", b"half_pixel")
    align = (ctm.decode() if isinstance(ctm, bytes) else ctm) == "align_corners"
    return F.interpolate(x, mode="bilinear", align_corners=align, **kw)


def _constant(_: Any, args: list[Any], a: Env) -> Any:
    if "value" not in a:
        raise ModelError("Constant node without a tensor 'value' is not supported")
    return torch.from_numpy(numpy_helper.to_array(a["value"]).copy())


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[..., Any]:
    return lambda _m, args, _a: fn(args[0])


def _binary(fn: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    return lambda _m, args, _a: fn(args[0], args[1])


def _dense(m: nn.Module, args: list[Any], a: Env) -> Any:
    if m is None:
        return torch.matmul(args[0], args[1])
    return m(args[0])


_OPS: dict[str, Callable[..., Any]] = {
    "Conv": _conv,
    "ConvTranspose": _conv,
    "BatchNormalization": _bn,
    "Gemm": _dense,
    "MatMul": _dense,
    "Relu": _unary(F.relu),
    "Sigmoid": _unary(torch.sigmoid),
    "Tanh": _unary(torch.tanh),
    "HardSwish": _unary(F.hardswish),
    "HardSigmoid": lambda _m, args, a: torch.clamp(
        args[0] * float(a.get("alpha", 0.2)) + float(a.get("beta", 0.5)), 0.0, 1.0
    ),
    "LeakyRelu": lambda _m, args, a: F.leaky_relu(args[0], float(a.get("alpha", 0.01))),
    "Clip": _clip,
    "Identity": _unary(lambda x: x),
    "Dropout": _unary(lambda x: x),  # an exported eval-mode model never drops
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Div": _binary(torch.div),
    "MaxPool": _pool("max"),
    "AveragePool": _pool("avg"),
    "GlobalAveragePool": _unary(lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True)),
    "GlobalMaxPool": _unary(lambda x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True)),
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": lambda _m, args, a: args[0].permute(*a["perm"]),
    "Concat": _concat,
    "Softmax": lambda _m, args, a: torch.softmax(args[0], int(a.get("axis", -1))),
    "ReduceMean": _reduce_mean,
    "Shape": _unary(lambda x: torch.tensor(x.shape, dtype=torch.int64)),
    "Gather": _gather,
    "Constant": _constant,
    "Pad": _pad,
    "Resize": _resize,
}
