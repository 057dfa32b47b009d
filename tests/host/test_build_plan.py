"""The executor emitter without a compiler: memory plan, weights.bin, C string escaping."""

from __future__ import annotations

import random
import subprocess

import numpy as np
import pytest
from test_build_helpers import S, branchy_graph, chain_graph, make_graph, toy_lower

from npas.codegen.emit import (
    ALIGN,
    WEIGHTS_HEADER_BYTES,
    WEIGHTS_MAGIC,
    Step,
    WeightsFile,
    c_comment,
    c_string,
    emit,
    plan_memory,
)
from npas.codegen.target import get_target
from npas.errors import ModelError
from npas.ir import Op

NB = int(np.prod(S)) * 4


def _random_program(rng: random.Random, n_steps: int):
    """A random DAG of steps over values of a few sizes, with views and in-place layers."""
    nbytes = {"in0": 256, "in1": 1000}
    live = ["in0", "in1"]
    steps = []
    for i in range(n_steps):
        kind = rng.random()
        if kind < 0.2:
            src = rng.choice(live)
            out = f"v{i}"
            nbytes[out] = nbytes[src]
            steps.append(Step((src,), (out,), alias=True))
        else:
            reads = tuple(rng.sample(live, k=min(len(live), rng.randint(1, 3))))
            outs = tuple(f"t{i}_{k}" for k in range(rng.choice((1, 1, 1, 2))))
            for o in outs:
                nbytes[o] = rng.choice((nbytes[reads[0]], 64, 4096, 100))
            steps.append(Step(reads, outs, inplace=kind < 0.6))
        live += list(steps[-1].writes)
    outputs = rng.sample(live, k=3)
    return steps, nbytes, outputs


@pytest.mark.parametrize("seed", range(60))
def test_plan_never_overlaps_live_buffers(seed: int) -> None:
    rng = random.Random(seed)
    steps, nbytes, outputs = _random_program(rng, rng.randint(1, 40))
    plan = plan_memory(steps, nbytes, ["in0", "in1"], outputs)
    plan.check()  # raises on any overlap of simultaneously live buffers
    assert plan.arena_bytes >= plan.live_bytes_bound
    # Independently: at every step, what is read or written (and every graph output at the
    # end) occupies disjoint bytes from every other value alive then.
    for b in plan.buffers:
        assert b.offset % ALIGN == 0
    for step in steps:
        if step.alias:
            assert plan.offset(step.writes[0]) == plan.offset(step.reads[0])
    for name in outputs:
        assert plan.buffers[plan.buffer_of[name]].last == len(steps)


def test_inplace_chain_uses_one_buffer() -> None:
    steps = [Step((f"v{i}",), (f"v{i + 1}",), inplace=True) for i in range(6)]
    plan = plan_memory(steps, {f"v{i}": 4096 for i in range(7)}, ["v0"], ["v6"])
    assert plan.arena_bytes == 4096
    assert len({plan.offset(f"v{i}") for i in range(7)}) == 1


def test_no_inplace_over_a_value_read_later() -> None:
    # v1 = f(v0); v2 = g(v0, v1): v1 must not take v0's buffer (v0 is read again).
    steps = [Step(("v0",), ("v1",), inplace=True), Step(("v0", "v1"), ("v2",), inplace=True)]
    plan = plan_memory(steps, dict.fromkeys(("v0", "v1", "v2"), 128), ["v0"], ["v2"])
    assert plan.offset("v1") != plan.offset("v0")
    assert plan.offset("v2") in (plan.offset("v0"), plan.offset("v1"))


def test_no_inplace_over_a_graph_output_or_a_viewed_value() -> None:
    steps = [
        Step(("x",), ("a",), inplace=True),
        Step(("a",), ("a_view",), alias=True),
        Step(("a",), ("b",), inplace=True),  # a lives on through a_view (an output)
    ]
    plan = plan_memory(steps, dict.fromkeys(("x", "a", "a_view", "b"), 256), ["x"], ["a_view", "b"])
    assert plan.offset("a") == plan.offset("a_view") == plan.offset("x")
    assert plan.offset("b") != plan.offset("a")


def test_branches_reuse_memory() -> None:
    # A long chain without in-place: only two buffers are ever live at once.
    steps = [Step((f"v{i}",), (f"v{i + 1}",)) for i in range(10)]
    plan = plan_memory(steps, {f"v{i}": 1024 for i in range(11)}, ["v0"], ["v10"])
    assert plan.arena_bytes == 2 * 1024 == plan.live_bytes_bound


def test_emitted_plan_of_a_branchy_graph() -> None:
    g, _ = branchy_graph()
    em = emit(g, get_target("host"))
    em.plan.check()
    total = sum(v.nbytes for v in g.values.values())
    assert em.plan.arena_bytes < total  # buffers were reused
    assert em.plan.arena_bytes == em.metadata()["peak_activation_bytes"]
    # views alias, the IDENTITY-passed input is the output's bytes
    assert em.plan.offset("c_flat") == em.plan.offset("c")
    assert em.plan.offset("y_out") == em.plan.offset("y")
    assert [layer.kernel for layer in em.layers].count("view") == 3


def test_view_size_mismatch_is_rejected() -> None:
    g = make_graph(
        "bad", {"x": S}, ["y"], [(Op.RESHAPE, "r", ("x",), ("y",), None)], shapes={"y": (1, 3)}
    )
    with pytest.raises(ModelError, match="view"):
        emit(g, get_target("host"))


def test_weights_file_layout() -> None:
    wf = WeightsFile()
    a = np.arange(5, dtype=np.float32)
    off_a = wf.add(a)
    off_b = wf.add(np.ones((3, 7), np.float32))
    assert wf.add(a.copy()) == off_a  # identical blobs are stored once
    data, digest = wf.render()
    assert data[:8] == WEIGHTS_MAGIC and len(data) == wf.size
    assert off_a == WEIGHTS_HEADER_BYTES and off_b % 64 == 0 and off_b > off_a
    assert np.array_equal(np.frombuffer(data, np.float32, 5, off_a), a)
    assert int.from_bytes(data[16:24], "little") == len(data) and data[24:40] == digest


def test_weights_hash_differs_with_weights() -> None:
    lower = toy_lower()
    from test_build_helpers import add_const_graph

    t = get_target("host")
    e1 = emit(add_const_graph(np.zeros(S, np.float32)), t, lower=lower)
    e2 = emit(add_const_graph(np.ones(S, np.float32)), t, lower=lower)
    assert e1.weights_hash != e2.weights_hash
    assert e1.weights_hash in e1.model_cpp


def test_c_string_round_trips_untrusted_names(tmp_path) -> None:
    names = ['a"b', "back\\slash", "new\nline", "tri??/graph", "*/ close", "ünï😀", "%s%n"]
    body = "\n".join(f"  std::puts({c_string(n)});" for n in names)
    src = tmp_path / "t.cpp"
    comment = c_comment("x */ y\\\n z")
    src.write_text(f"#include <cstdio>\n// {comment}\nint main() {{\n{body}\n}}\n")
    subprocess.run(["g++", "-o", str(tmp_path / "t"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, check=True).stdout
    assert out.decode("utf-8") == "".join(n + "\n" for n in names)
    assert "\n" not in c_comment("a\nb") and "*/" not in c_comment("*/")


def test_chain_graph_kernels_are_shared_per_parameter() -> None:
    g, _ = chain_graph([0.5, 0.5, 2.0])
    em = emit(g, get_target("host"), lower=toy_lower())
    clips = [u for u in em.kernel_units if u.startswith("test_clip")]
    assert len(clips) == 2  # two distinct bounds -> two TUs; equal ones share theirs
