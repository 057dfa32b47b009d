"""Shared helpers of the build/runtime tests (imported by test_build_*.py, test_runtime_*.py):
small hand-built graphs with numpy references, and a few toy kernels whose sources the tests
control exactly (one TU per distinct parameter, weights, a deliberately broken one).

Real kernels (npas.codegen.lower) serve every op the toy lowering does not take over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from npas.codegen.kernel import LayerKernel, content_hash
from npas.codegen.target import Target
from npas.ir import Graph, Layer, Op, ReshapeAttrs, UnaryAttrs, Value

S = (1, 4, 8, 8)  # the activation shape of most test graphs
N = int(np.prod(S))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every test module shares one compile cache of its own, never the user's."""
    monkeypatch.setenv("NPAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "npas-cache"))
    monkeypatch.delenv("NPAS_NO_CACHE", raising=False)
    monkeypatch.delenv("NPAS_ISA", raising=False)


def make_graph(
    name: str,
    inputs: dict[str, tuple[int, ...]],
    outputs: Sequence[str],
    layers: Sequence[tuple[Op, str, tuple[str, ...], tuple[str, ...], Any]],
    consts: dict[str, np.ndarray] | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> Graph:
    """A Graph from a layer list (op, name, inputs, outputs, attrs-or-None); every activation
    not in `shapes` has the shape of the layer's first input."""
    values: dict[str, Value] = {n: Value(n, tuple(s)) for n, s in inputs.items()}
    for n, arr in (consts or {}).items():
        values[n] = Value(n, tuple(arr.shape), "float32", np.ascontiguousarray(arr, np.float32))
    built = []
    for op, lname, ins, outs, attrs in layers:
        for o in outs:
            shape = (shapes or {}).get(o, values[ins[0]].shape)
            values[o] = Value(o, tuple(shape))
        kw = {} if attrs is None else {"attrs": attrs}
        built.append(Layer(op, lname, tuple(ins), tuple(outs), **kw))
    return Graph(name, list(inputs), list(outputs), built, values)


def branchy_graph() -> tuple[Graph, Callable[..., dict[str, np.ndarray]]]:
    """Two inputs, three outputs: branches that let the planner reuse buffers, an output that
    later layers also read, an input passed straight to an output through IDENTITY, and a
    RESHAPE view in the middle."""
    flat = (1, N)
    layers = [
        (Op.RELU, "relu_a", ("x",), ("a",), None),
        (Op.ADD, "add_b", ("a", "y"), ("b",), None),  # b: an output that later layers read
        (Op.RELU, "relu_c", ("b",), ("c",), None),
        (Op.RESHAPE, "flat_c", ("c",), ("c_flat",), ReshapeAttrs(flat)),
        (Op.RELU, "relu_d", ("c_flat",), ("d_flat",), None),
        (Op.RESHAPE, "unflat_d", ("d_flat",), ("d",), ReshapeAttrs(S)),
        (Op.ADD, "add_e", ("d", "b"), ("e",), None),
        (Op.ADD, "add_f", ("e", "a"), ("f",), None),
        (Op.IDENTITY, "pass_y", ("y",), ("y_out",), None),
    ]
    g = make_graph(
        "branchy",
        {"x": S, "y": S},
        ["f", "b", "y_out"],
        layers,
        shapes={"c_flat": flat, "d_flat": flat, "d": S},
    )

    def reference(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        a = np.maximum(x, 0)
        b = a + y
        d = np.maximum(np.maximum(b, 0), 0)
        return {"f": d + b + a, "b": b, "y_out": y}

    return g, reference


def chain_graph(
    betas: Sequence[float], name: str = "chain"
) -> tuple[Graph, Callable[[np.ndarray], np.ndarray]]:
    """x -> clip(-1, beta_0) -> relu -> clip(-1, beta_1) -> relu ... (toy clip kernels)."""
    layers = []
    prev = "x"
    for i, beta in enumerate(betas):
        layers.append((Op.CLIP, f"clip{i}", (prev,), (f"c{i}",), UnaryAttrs(-1.0, float(beta))))
        layers.append((Op.RELU, f"relu{i}", (f"c{i}",), (f"r{i}",), None))
        prev = f"r{i}"
    g = make_graph(name, {"x": S}, [prev], layers)

    def reference(x: np.ndarray) -> np.ndarray:
        for beta in betas:
            x = np.maximum(np.clip(x, -1.0, beta), 0)
        return x

    return g, reference


# ---- toy kernels ----

_PRELUDE = '#include <cstdint>\n#include "npas/kernel_abi.h"\n'


def _toy(kind: str, body: str, *, weights: tuple[np.ndarray, ...] = (), inputs=()) -> LayerKernel:
    h = content_hash(kind, body)
    entry = f"npas_test_{kind}_{h}"
    src = f'{_PRELUDE}\nextern "C" void {entry}(const npas::LayerArgs* a) {{\n{body}\n}}\n'
    return LayerKernel(
        kernel=f"npas_f32_{kind}_test_1x1__scalar",
        entry=entry,
        sources={f"test_{kind}_{h}.cpp": src},
        weights=weights,
        inputs=tuple(inputs),
        isa="scalar",
    )


def toy_clip(layer: Layer, graph: Graph) -> LayerKernel:
    """clip with its bounds baked into the source: one TU per distinct (bounds, size); runs
    on the pool so threads > 1 are exercised."""
    n = graph.value(layer.inputs[0]).size
    lo, hi = layer.attrs.alpha, layer.attrs.beta
    body = f"""  a->pool->parallel_for({n}, [a](std::int64_t b, std::int64_t e, int) {{
    for (std::int64_t i = b; i < e; ++i) {{
      const float v = a->in[0][i];
      a->out[0][i] = v < {lo!r}f ? {lo!r}f : (v > {hi!r}f ? {hi!r}f : v);
    }}
  }});"""
    return _toy("clip", body, inputs=layer.inputs[:1])


def toy_add_const(layer: Layer, graph: Graph) -> LayerKernel:
    """x + W with W from weights.bin (w[0]); checks 64-byte alignment of the weights."""
    x, w = layer.inputs
    n = graph.value(x).size
    body = f"""  if (reinterpret_cast<std::uintptr_t>(a->w[0]) % 64 != 0) __builtin_trap();
  for (std::int64_t i = 0; i < {n}; ++i) a->out[0][i] = a->in[0][i] + a->w[0][i];"""
    return _toy("addc", body, weights=(graph.const(w).astype(np.float32),), inputs=(x,))


def toy_broken(layer: Layer, graph: Graph) -> LayerKernel:
    return _toy("broken", "  this is not C++; // npas-test-sabotage", inputs=layer.inputs[:1])


def toy_lower(broken: Sequence[str] = ()) -> Callable[[Layer, Graph, Target], Any]:
    """A lowering: toy kernels for CLIP, ADD with a constant, and the layers named in
    `broken`; the real lower_layer for everything else."""
    from npas.codegen.lower import lower_layer

    def lower(layer: Layer, graph: Graph, target: Target) -> LayerKernel | None:
        if layer.name in broken:
            return toy_broken(layer, graph)
        if layer.op is Op.CLIP:
            return toy_clip(layer, graph)
        if layer.op is Op.ADD and graph.values[layer.inputs[1]].is_const:
            return toy_add_const(layer, graph)
        return lower_layer(layer, graph, target)

    return lower


def add_const_graph(w: np.ndarray, name: str = "addc") -> Graph:
    return make_graph(
        name,
        {"x": S},
        ["z"],
        [(Op.ADD, "addw", ("x", "w"), ("y",), None), (Op.RELU, "relu", ("y",), ("z",), None)],
        consts={"w": w},
    )


def rand(shape: tuple[int, ...] = S, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# ---- the helpers themselves ----


def test_references_are_consistent() -> None:
    g, ref = branchy_graph()
    x, y = rand(seed=1), rand(seed=2)
    out = ref(x, y)
    assert set(out) == set(g.outputs)
    assert all(out[n].shape == g.shape(n) for n in g.outputs)
    g2, ref2 = chain_graph([0.5, 2.0])
    assert ref2(x).shape == S and g2.outputs == ["r1"]
