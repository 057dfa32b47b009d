"""Recognise multi-layer idioms as the single ops that kernels implement:
hard-sigmoid/hard-swish written out of Add/Clip/Mul/Div, SiLU as x*sigmoid(x), and a mean/max
over H and W as global pooling."""

from __future__ import annotations

from collections.abc import Callable, Container

from npas.ir import Graph, Layer, NoAttrs, Op, ReduceAttrs, ReshapeAttrs, UnaryAttrs, Value

from .rewrite import close, const_scalar, use_counts

SIXTH = 1.0 / 6.0


class _Matcher:
    """Layer list with removal slots, producer lookup and use counts, for pattern passes."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph.copy()
        self.layers: list[Layer | None] = list(self.g.layers)
        self.producer_at = {o: i for i, layer in enumerate(self.g.layers) for o in layer.outputs}
        self.uses = use_counts(self.layers)
        self.outputs = set(self.g.outputs)

    def private(self, name: str, op: Op) -> tuple[int, Layer] | None:
        """The live producer of `name` if it is an `op` layer and `name` has no other reader."""
        i = self.producer_at.get(name)
        if i is None or self.uses[name] != 1 or name in self.outputs:
            return None
        layer = self.layers[i]
        if layer is None or layer.op is not op or not layer.epilogue.empty:
            return None
        return i, layer

    def replace(self, at: int, new: Layer, removed: list[int]) -> None:
        """Put `new` at slot `at` and drop the matched layers in `removed`."""
        for i in removed:
            gone = self.layers[i]
            assert gone is not None
            for name in gone.inputs:
                self.uses[name] -= 1
            self.layers[i] = None
        old = self.layers[at]
        assert old is not None
        for name in old.inputs:
            self.uses[name] -= 1
        for name in new.inputs:
            self.uses[name] += 1
        self.layers[at] = new
        for o in new.outputs:
            self.producer_at[o] = at

    def finish(self) -> Graph:
        self.g.layers = [layer for layer in self.layers if layer is not None]
        self.g.prune_values()
        return self.g

    def run(self, match: Callable[[_Matcher, int, Layer], None]) -> Graph:
        for i in range(len(self.layers)):
            layer = self.layers[i]
            if layer is not None:
                match(self, i, layer)
        return self.finish()


def _const_operand(m: _Matcher, layer: Layer, value: float) -> str | None:
    """For a binary layer with one operand the scalar constant `value`: the other operand."""
    a, b = layer.inputs
    if close(const_scalar(m.g, b), value):
        return a
    if close(const_scalar(m.g, a), value):
        return b
    return None


def _divided_by_6(m: _Matcher, layer: Layer) -> str | None:
    """`a` for layer = a / 6, a * (1/6) or (1/6) * a (empty epilogue), else None."""
    if not layer.epilogue.empty:
        return None
    if layer.op is Op.DIV and close(const_scalar(m.g, layer.inputs[1]), 6.0):
        return layer.inputs[0]
    if layer.op is Op.MUL:
        return _const_operand(m, layer, SIXTH)
    return None


def _relu6_of_x_plus_3(m: _Matcher, name: str) -> tuple[str, list[int]] | None:
    """`name` = clip(x + 3, 0, 6), each step read only here: (x, matched layer slots)."""
    clip = m.private(name, Op.CLIP)
    if clip is None:
        return None
    ci, cl = clip
    a = cl.attrs
    if not (isinstance(a, UnaryAttrs) and close(a.alpha, 0.0) and close(a.beta, 6.0)):
        return None
    add = m.private(cl.inputs[0], Op.ADD)
    if add is None:
        return None
    x = _const_operand(m, add[1], 3.0)
    return None if x is None else (x, [ci, add[0]])


def _is_hard_sigmoid_6(layer: Layer) -> bool:
    a = layer.attrs
    return isinstance(a, UnaryAttrs) and close(a.alpha, SIXTH) and close(a.beta, 0.5)


def _match_hardsigmoid(m: _Matcher, i: int, layer: Layer) -> None:
    # clip(x + 3, 0, 6) / 6  ->  hardsigmoid(x; 1/6, 1/2)
    a = _divided_by_6(m, layer)
    found = None if a is None else _relu6_of_x_plus_3(m, a)
    if found is not None:
        x, removed = found
        attrs = UnaryAttrs(alpha=SIXTH, beta=0.5)
        m.replace(i, Layer(Op.HARDSIGMOID, layer.name, (x,), layer.outputs, attrs), removed)


def _match_hardswish(m: _Matcher, i: int, layer: Layer) -> None:
    if layer.op is Op.MUL and layer.epilogue.empty:
        # x * hardsigmoid(x; 1/6, 1/2)  ->  hardswish(x)
        for pos in (0, 1):
            x, h = layer.inputs[1 - pos], layer.inputs[pos]
            hs = m.private(h, Op.HARDSIGMOID)
            if hs is not None and hs[1].inputs[0] == x and _is_hard_sigmoid_6(hs[1]):
                new = Layer(Op.HARDSWISH, layer.name, (x,), layer.outputs, NoAttrs())
                m.replace(i, new, [hs[0]])
                return
    # (x * clip(x + 3, 0, 6)) / 6  ->  hardswish(x)
    a = _divided_by_6(m, layer)
    mul = None if a is None else m.private(a, Op.MUL)
    if mul is None:
        return
    for pos in (0, 1):
        x, c = mul[1].inputs[1 - pos], mul[1].inputs[pos]
        found = _relu6_of_x_plus_3(m, c)
        if found is not None and found[0] == x:
            new = Layer(Op.HARDSWISH, layer.name, (x,), layer.outputs, NoAttrs())
            m.replace(i, new, [mul[0], *found[1]])
            return


def recognize_hardswish(graph: Graph) -> Graph:
    """Rewrite the decomposed forms exporters emit: x*clip(x+3,0,6)/6, x*relu6(x+3)/6,
    (x*clip(...))*(1/6), x*(clip(x+3,0,6)/6) and x*hardsigmoid(x; 1/6, 1/2) to HARDSWISH, and a
    lone clip(x+3,0,6)/6 to HARDSIGMOID."""
    g = _Matcher(graph).run(_match_hardsigmoid)
    return _Matcher(g).run(_match_hardswish)


def _match_silu(m: _Matcher, i: int, layer: Layer) -> None:
    if layer.op is not Op.MUL or not layer.epilogue.empty:
        return
    for pos in (0, 1):
        x, s = layer.inputs[1 - pos], layer.inputs[pos]
        sig = m.private(s, Op.SIGMOID)
        if sig is not None and sig[1].inputs[0] == x:
            m.replace(i, Layer(Op.SILU, layer.name, (x,), layer.outputs, NoAttrs()), [sig[0]])
            return


def recognize_silu(graph: Graph) -> Graph:
    """x * sigmoid(x) (sigmoid read only there) -> SILU(x)."""
    return _Matcher(graph).run(_match_silu)


_GLOBAL = {Op.REDUCE_MEAN: Op.GLOBAL_AVGPOOL, Op.REDUCE_MAX: Op.GLOBAL_MAXPOOL}


def reduce_to_global_pool(graph: Graph) -> Graph:
    """ReduceMean/ReduceMax over every spatial axis of an N, C, spatial... tensor (what SE blocks
    and `x.mean((2, 3))` export) -> GLOBAL_AVGPOOL/GLOBAL_MAXPOOL, plus a RESHAPE when the
    reduced axes are not kept."""
    g = graph.copy()
    names = {layer.name for layer in g.layers}
    layers: list[Layer] = []
    for layer in g.layers:
        a = layer.attrs
        rank = len(g.shape(layer.inputs[0]))
        if (
            layer.op not in _GLOBAL
            or not isinstance(a, ReduceAttrs)
            or rank < 3
            or tuple(a.axes) != tuple(range(2, rank))
        ):
            layers.append(layer)
            continue
        pool = _GLOBAL[layer.op]
        if a.keepdims:
            layers.append(Layer(pool, layer.name, layer.inputs, layer.outputs))
            continue
        x_shape = g.shape(layer.inputs[0])
        mid = _fresh(g.values, f"{layer.outputs[0]}/pooled")
        g.values[mid] = Value(mid, (x_shape[0], x_shape[1], *([1] * (rank - 2))))
        layers.append(Layer(pool, layer.name, layer.inputs, (mid,)))
        out = layer.outputs[0]
        name = _fresh(names, f"{layer.name}/squeeze")
        names.add(name)
        layers.append(Layer(Op.RESHAPE, name, (mid,), (out,), ReshapeAttrs(g.shape(out))))
    g.layers = layers
    return g


def _fresh(taken: Container[str], base: str) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name
