"""Building artifacts: the standalone project, the compile caches, atomic output, toolchain
errors and the ISA guard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_build_helpers import (  # noqa: F401 -- _private_cache is an autouse fixture
    S,
    _private_cache,
    add_const_graph,
    chain_graph,
    rand,
    toy_lower,
)

import npas
from npas.api import _resolve_target
from npas.codegen import build, emit
from npas.errors import ModelError, NpasError, ToolchainError


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("NPAS_CACHE_DIR", str(cache))
    return cache


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_artifact_is_a_standalone_project(tmp_path: Path) -> None:
    g, ref = chain_graph([0.5, 2.0], name="standalone")
    out = tmp_path / "model.npas"
    cm = npas.compile(g, out=out, lower=toy_lower())
    for rel in (
        "CMakeLists.txt", "src/model.cpp", "include/npas_model.h", "include/npas/kernel_abi.h",
        "runtime/threadpool.cpp", "bench/npas_bench.cpp", "weights.bin", "model.json", "ir.txt",
        "libnpas_model.so", "npas_bench",
    ):  # fmt: skip
        assert (out / rel).is_file(), rel
    meta = json.loads((out / "model.json").read_text())
    assert meta["compile_key"] == cm.compile_info.key and meta["target"] == "host"
    assert [layer["name"] for layer in meta["layers"]] == [layer.name for layer in g.layers]
    assert meta["inputs"] == [{"name": "x", "shape": list(S), "dtype": "float32"}]
    for unit in meta["kernel_units"]:
        assert (out / "src" / unit).is_file()
    # Someone without npas builds it with plain CMake and gets the same library.
    bdir = tmp_path / "user-build"
    subprocess.run(
        ["cmake", "-S", str(out), "-B", str(bdir), "-G", "Ninja", "-DNPAS_STATIC_BENCH=OFF"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(["ninja", "-C", str(bdir)], check=True, capture_output=True)
    shutil.copy2(bdir / "libnpas_model.so", out / "libnpas_model.so")
    x = rand()
    np.testing.assert_array_equal(npas.load(out).run(x)[g.outputs[0]], ref(x))


def test_recompile_is_a_cache_hit(tmp_path: Path, fresh_cache: Path) -> None:
    g, ref = chain_graph([0.25, 1.5], name="hit")
    cold = npas.compile(g, out=tmp_path / "a", lower=toy_lower())
    assert not cold.compile_info.cache_hit
    warm = npas.compile(chain_graph([0.25, 1.5], name="hit")[0], out=tmp_path / "b",
                        lower=toy_lower())  # fmt: skip
    assert warm.compile_info.cache_hit and warm.compile_info.key == cold.compile_info.key
    warm_in_cache = npas.compile(g, lower=toy_lower())  # out=None: loads from the cache
    assert warm_in_cache.compile_info.cache_hit
    assert warm_in_cache.path == fresh_cache / "builds" / cold.compile_info.key
    x = rand()
    for cm in (cold, warm, warm_in_cache):
        np.testing.assert_array_equal(cm(x), ref(x))
    print(f"cold {cold.compile_info.seconds:.2f} s, warm {warm.compile_info.seconds:.3f} s")


def test_changing_one_layer_rebuilds_one_kernel_unit(tmp_path: Path, fresh_cache: Path) -> None:
    betas = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    a, _ = chain_graph(betas, name="edit")
    first = npas.compile(a, out=tmp_path / "a", lower=toy_lower()).compile_info
    assert len(first.kernel_units_compiled) == 7  # six clip TUs and the shared relu TU
    edited = [*betas]
    edited[3] = 2.25
    b, ref = chain_graph(edited, name="edit")
    second = npas.compile(b, out=tmp_path / "b", lower=toy_lower())
    info = second.compile_info
    assert not info.cache_hit
    new_unit = set(emit.emit(b, _resolve_target("host"), lower=toy_lower()).kernel_units)
    new_unit -= set(json.loads((tmp_path / "a" / "model.json").read_text())["kernel_units"])
    assert info.kernel_units_compiled == sorted(new_unit) and len(new_unit) == 1
    assert sorted(info.compiled) == sorted([*new_unit, "model.cpp"])  # nothing else recompiled
    x = rand()
    np.testing.assert_array_equal(second(x), ref(x))


def test_failed_build_leaves_nothing_behind(tmp_path: Path, fresh_cache: Path) -> None:
    g, ref = chain_graph([0.5, 1.0], name="atomic")
    out = tmp_path / "out"
    good = npas.compile(g, out=out, lower=toy_lower())
    before = (out / "model.json").read_text()
    bad, _ = chain_graph([0.5, 1.0, 4.0], name="atomic")
    for dest in (out, tmp_path / "new"):
        with pytest.raises(ToolchainError) as err:
            npas.compile(bad, out=dest, lower=toy_lower(broken=["clip2"]))
        assert "npas-test-sabotage" in str(err.value)  # the compiler's own output, quoted
    assert (out / "model.json").read_text() == before  # the old artifact is untouched
    assert not (tmp_path / "new").exists()
    assert _leftovers(tmp_path) == []
    builds = fresh_cache / "builds"
    assert sorted(p.name for p in builds.iterdir()) == [good.compile_info.key]
    # The persistent build tree is not poisoned: a good model with more layers builds.
    fixed = npas.compile(bad, out=tmp_path / "fixed", lower=toy_lower())
    x = rand()
    np.testing.assert_array_equal(fixed(x), chain_graph([0.5, 1.0, 4.0])[1](x))
    np.testing.assert_array_equal(npas.load(out)(x), ref(x))


def test_no_cache_mode(tmp_path: Path, fresh_cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("NPAS_NO_CACHE", "1")
    g, ref = chain_graph([0.75], name="nocache")
    cm = npas.compile(g, out=tmp_path / "o", lower=toy_lower())
    assert not cm.compile_info.cache_hit and not (tmp_path / "o" / "build").exists()
    assert not (fresh_cache / "builds").exists() and not (fresh_cache / "trees").exists()
    x = rand()
    np.testing.assert_array_equal(cm(x), ref(x))


def test_refuses_to_overwrite_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("precious")
    with pytest.raises(NpasError, match="not an npas output directory"):
        npas.compile(chain_graph([1.0])[0], out=foreign, lower=toy_lower())
    assert (foreign / "notes.txt").read_text() == "precious"


def test_missing_tools_say_what_to_install(monkeypatch) -> None:
    real = build._which
    monkeypatch.setattr(build, "_which", lambda name: None if name == "ninja" else real(name))
    with pytest.raises(ToolchainError, match=r"ninja.*apt-get install g\+\+ cmake ninja-build"):
        npas.compile(chain_graph([1.0])[0], lower=toy_lower())


def test_unknown_targets_are_clear_errors() -> None:
    with pytest.raises(ToolchainError, match="unknown target 'riscv': expected one of host, arm64"):
        npas.compile(chain_graph([1.0])[0], target="riscv")


def test_weights_from_another_compile_are_rejected(tmp_path: Path) -> None:
    lower = toy_lower()
    w1, w2 = rand(seed=3), rand(seed=4)
    a = npas.compile(add_const_graph(w1, "wa"), out=tmp_path / "a", lower=lower)
    x = rand()
    np.testing.assert_allclose(a(x), np.maximum(x + w1, 0), rtol=0, atol=0)
    npas.compile(add_const_graph(w2, "wb"), out=tmp_path / "b", lower=lower)
    shutil.copy2(tmp_path / "b" / "weights.bin", tmp_path / "a" / "weights.bin")
    with pytest.raises(ModelError, match="does not belong to this model library"):
        npas.load(tmp_path / "a")
    (tmp_path / "a" / "weights.bin").write_bytes(b"garbage" * 20)
    with pytest.raises(ModelError, match="not an npas weights file"):
        npas.load(tmp_path / "a")


def test_library_refuses_a_cpu_without_its_isa(tmp_path: Path, monkeypatch) -> None:
    # Pretend the library's ISA needs XOP (an AMD-only extension this CPU does not have).
    isa = _resolve_target("host").isa.name
    if subprocess.run(["grep", "-qw", "xop", "/proc/cpuinfo"]).returncode == 0:
        pytest.fail("this test needs a CPU without XOP")
    monkeypatch.setitem(emit.CPU_FEATURES, isa, ("xop",))
    out = tmp_path / "isa"
    with pytest.raises(ModelError, match=f"compiled for {isa}, but this CPU lacks 'xop'"):
        npas.compile(chain_graph([1.0], name="isa")[0], out=out, lower=toy_lower())
    # The benchmark executable says the same instead of dying on an illegal instruction.
    proc = subprocess.run([str(out / "npas_bench"), str(out / "weights.bin")],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 1 and "lacks 'xop'" in proc.stderr


_KILLER = r"""
import os, signal, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from npas.codegen import build

def killing(cmd, cwd, *, progress):
    if not progress:  # cmake configure: let it finish
        return real(cmd, cwd, progress=progress)
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    for line in proc.stdout:
        if "Building CXX object" in line and "test_clip" in line:
            time.sleep(0.2)  # let the compilers start writing
            os.killpg(0, signal.SIGKILL)  # ninja, the compilers and this process at once

real, build._run_streaming = build._run_streaming, killing
import npas
from test_build_helpers import chain_graph, toy_lower
npas.compile(chain_graph([0.5, 1.5, 2.5], name="killed")[0], out=sys.argv[2], lower=toy_lower())
"""


def test_killed_compile_does_not_poison_the_caches(tmp_path: Path, fresh_cache: Path) -> None:
    out = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(Path(__file__).parent), str(out)],
        start_new_session=True,  # its own process group: the kill stays inside it
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    assert not out.exists()
    assert [p for p in (fresh_cache / "builds").iterdir() if not p.name.startswith(".")] == []
    # Ninja logs an object only once its compile finished: those may be reused, every other
    # unit (killed half-way, or never started) must be compiled again, not taken as up to date.
    logs = list((fresh_cache / "trees").glob("*/build/.ninja_log"))
    finished = {m for log in logs for m in re.findall(r"src/([\w.-]+\.cpp)\.o", log.read_text())}
    g, ref = chain_graph([0.5, 1.5, 2.5], name="killed")
    units = set(emit.emit(g, _resolve_target("host"), lower=toy_lower()).kernel_units)
    assert units - finished, "the kill came too late to interrupt any kernel compile"
    cm = npas.compile(g, out=out, lower=toy_lower())
    assert set(cm.compile_info.kernel_units_compiled) == units - finished
    x = rand()
    np.testing.assert_array_equal(cm(x), ref(x))


def test_npas_isa_knob_lowers_the_library_isa(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NPAS_ISA", "scalar")
    g, ref = chain_graph([1.0], name="scalar")
    cm = npas.compile(g, out=tmp_path / "scalar", lower=toy_lower())
    assert (
        cm.isa == "scalar" and json.loads((cm.path / "model.json").read_text())["isa"] == "scalar"
    )
    assert all(layer["kernel"].endswith("__scalar") for layer in cm.layers)
    assert "-mavx" not in (cm.path / "CMakeLists.txt").read_text()
    x = rand()
    np.testing.assert_array_equal(cm(x), ref(x))


def test_cache_evicts_least_recently_used_builds(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = fresh_cache / "builds"
    g1, _ = chain_graph([0.5], name="lru_a")
    g2, _ = chain_graph([0.25], name="lru_b")
    k1 = npas.compile(g1, lower=toy_lower()).compile_info.key
    k2 = npas.compile(g2, lower=toy_lower()).compile_info.key
    assert {p.name for p in builds.iterdir()} >= {k1, k2}
    # A hit marks k1 as recently used, so a cap that fits one build evicts k2 first...
    assert npas.compile(g1, lower=toy_lower()).compile_info.cache_hit
    size = build._tree_bytes(builds / k1)
    monkeypatch.setenv("NPAS_CACHE_MAX_GB", str(1.5 * size / 2**30))
    assert build.evict_builds() == [k2]
    assert (builds / k1).is_dir() and not (builds / k2).exists()
    # ...and a new build is never evicted by its own compile, even over the cap.
    monkeypatch.setenv("NPAS_CACHE_MAX_GB", "0")
    g3, _ = chain_graph([2.0], name="lru_c")
    cm = npas.compile(g3, lower=toy_lower())
    assert [p.name for p in builds.iterdir() if not p.name.startswith(".")] == [cm.compile_info.key]


def test_npas_isa_is_read_at_every_call(monkeypatch) -> None:
    """A process that forces NPAS_ISA for one compile does not keep it for the next (the CPU
    detection is cached, the knob is not)."""
    from npas.codegen.target import SCALAR, detected_isa, get_target, host_isa

    monkeypatch.setenv("NPAS_ISA", "scalar")
    assert get_target("host").isa is SCALAR
    monkeypatch.delenv("NPAS_ISA")
    assert host_isa() is detected_isa() and get_target("host").isa is detected_isa()
