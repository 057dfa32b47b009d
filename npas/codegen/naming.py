"""Kernel names: `npas_<dtype>_<op>[_<epilogue>...]_<scheme>[_<MR>x<NR>]__<isa>`.

Every variant axis is in the name, and the name parses back (tests, build flags, the tuner and
the search all read it). Tokens never contain '_' themselves, so the split is unambiguous:

    npas_f32_conv3x3s1_relu_dense_12x32__avx512
    npas_f32_conv1x1s1_res_relu_dense_12x32__avx512   (epilogue: residual add, then relu)
    npas_f32_dwconv3x3s2_relu6_dense_1x16__avx2
    npas_f32_relu_dense_1x8__avx2
    npas_f32_conv3x3s1_ref__scalar                     (reference kernels have no tile)

Op tokens of windowed ops carry their geometry: <family><kh>x<kw>s<sh>[x<sw>][d<dh>[x<dw>]];
a family may hold digits between letters (wino6conv3x3s1: Winograd F(6, 3)).
"""

from __future__ import annotations

import re
from typing import Any

from npas.ir.attrs import Activation, Epilogue
from npas.ir.ops import Op

_TOKEN = re.compile(r"^[a-z0-9]+$")
_TILE = re.compile(r"^(\d+)x(\d+)$")
_WINDOW = re.compile(
    r"^(?P<family>[a-z]+(?:\d+[a-z]+)*?)(?P<kh>\d+)x(?P<kw>\d+)s(?P<sh>\d+)(?:x(?P<sw>\d+))?"
    r"(?:d(?P<dh>\d+)(?:x(?P<dw>\d+))?)?$"
)

# Epilogue tokens of fused activations (conv/dense/binary epilogues).
_ACT_TOKENS = {
    Op.RELU: "relu",
    Op.CLIP: "clip",
    Op.LEAKY_RELU: "leakyrelu",
    Op.ELU: "elu",
    Op.HARDSWISH: "hswish",
    Op.HARDSIGMOID: "hsigmoid",
    Op.SIGMOID: "sigmoid",
    Op.TANH: "tanh",
    Op.SILU: "silu",
}
RESIDUAL_TOKEN = "res"


def op_token(op: Op) -> str:
    """The underscore-free spelling of an op in kernel names (leaky_relu -> leakyrelu)."""
    return op.value.replace("_", "")


def act_token(act: Activation | None) -> str | None:
    if act is None:
        return None
    if act.op is Op.CLIP and act.alpha == 0.0 and act.beta == 6.0:
        return "relu6"
    return _ACT_TOKENS.get(act.op, op_token(act.op))


def epilogue_tokens(epilogue: Epilogue | None) -> tuple[str, ...]:
    if epilogue is None:
        return ()
    tokens = [RESIDUAL_TOKEN] if epilogue.residual else []
    act = act_token(epilogue.act)
    if act:
        tokens.append(act)
    return tuple(tokens)


def window_token(
    family: str,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> str:
    """conv3x3s1, dwconv3x3s2, maxpool3x3s2, conv3x3s1d2, conv1x7s1, conv3x3s2x1 ..."""
    text = f"{family}{kernel[0]}x{kernel[1]}s{stride[0]}"
    if stride[1] != stride[0]:
        text += f"x{stride[1]}"
    if dilation != (1, 1):
        text += f"d{dilation[0]}"
        if dilation[1] != dilation[0]:
            text += f"x{dilation[1]}"
    return text


def kernel_name(
    op: str,
    scheme: str,
    isa: str,
    tile: tuple[int, int] | None = None,
    epilogue: tuple[str, ...] | Epilogue | None = (),
    dtype: str = "f32",
) -> str:
    """Compose a kernel name; every token must be lower-case alphanumeric."""
    epi = epilogue_tokens(epilogue) if isinstance(epilogue, Epilogue) else tuple(epilogue or ())
    tokens = [dtype, op, *epi, scheme]
    if tile is not None:
        tokens.append(f"{int(tile[0])}x{int(tile[1])}")
    for token in (*tokens, isa):
        if not _TOKEN.match(token):
            raise ValueError(f"kernel name token {token!r} must match [a-z0-9]+")
    return "npas_" + "_".join(tokens) + "__" + isa


def parse_kernel_name(name: str) -> dict[str, Any]:
    """Inverse of kernel_name: {dtype, op, epilogue, scheme, mr, nr, isa} plus, for windowed
    ops, {family, kernel, stride, dilation}."""
    if not name.startswith("npas_") or name.count("__") != 1:
        raise ValueError(f"not an npas kernel name: {name!r}")
    body, isa = name[len("npas_") :].split("__")
    tokens = body.split("_")
    if len(tokens) < 3 or not all(_TOKEN.match(t) for t in (*tokens, isa)):
        raise ValueError(f"not an npas kernel name: {name!r}")
    dtype, op = tokens[0], tokens[1]
    rest = tokens[2:]
    mr = nr = None
    tile = _TILE.match(rest[-1])
    if tile:
        mr, nr = int(tile.group(1)), int(tile.group(2))
        rest = rest[:-1]
    if not rest:
        raise ValueError(f"kernel name without a scheme: {name!r}")
    out: dict[str, Any] = {
        "dtype": dtype,
        "op": op,
        "epilogue": tuple(rest[:-1]),
        "scheme": rest[-1],
        "mr": mr,
        "nr": nr,
        "isa": isa,
    }
    window = _WINDOW.match(op)
    if window:
        g = window.groupdict()
        sh, dh = int(g["sh"]), int(g["dh"] or 1)
        out["family"] = g["family"]
        out["kernel"] = (int(g["kh"]), int(g["kw"]))
        out["stride"] = (sh, int(g["sw"] or sh))
        out["dilation"] = (dh, int(g["dw"] or dh))
    else:
        out["family"] = op
    return out
