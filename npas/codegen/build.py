"""Project writer and builder: an emitted model -> a standalone CMake project in the output
directory, built with CMake + Ninja into libnpas_model.so and npas_bench.

Output directory (an "artifact"):
    CMakeLists.txt  src/model.cpp (tables)  src/<kernel TUs, named by content hash>
    include/ (copy of runtime/include)  runtime/{executor.cpp,model_desc.h,threadpool.cpp}
    bench/npas_bench.cpp
    weights.bin  model.json  ir.txt  build.log  libnpas_model.so  npas_bench

Caching, two levels, both under NPAS_CACHE_DIR:
  builds/<key>/    whole artifacts keyed by (npas version, a fingerprint of the npas sources,
                   the model, target, compiler, options); a hit is a directory copy.
  trees/<t>-<s>/   persistent per-target CMake build trees (t: hash of target, flags and
                   compiler; s: a slot, so parallel compiles do not queue on one lock). Every
                   generated source there is named by its content hash, the executor included,
                   so a file name never changes meaning: Ninja recompiles exactly the sources
                   it has no object for, whatever the filesystem's timestamp granularity, and
                   its build log makes it redo an object whose compile was killed half-way.
                   Shared runtime files (headers) are compared by content: a change wipes the
                   tree's objects rather than trusting timestamps.
Everything is written to a temporary path and renamed into place, so a killed compile leaves
neither a partial artifact at the destination nor a poisoned cache entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from npas import knobs
from npas.codegen.emit import Emitted, render
from npas.codegen.target import HOST_INSTALL_HINT, Target
from npas.errors import NpasError, ToolchainError

FORMAT_VERSION = 1  # of the artifact directory and model.json
LIBRARY = "libnpas_model.so"
BENCH = "npas_bench"
WEIGHTS = "weights.bin"
METADATA = "model.json"
TREE_SLOTS = 4
INSTALL_HINT = HOST_INSTALL_HINT


# --------------------------------------------------------------------------------------------
# Fingerprints and keys
# --------------------------------------------------------------------------------------------


def _canonical(obj: Any, h: Any) -> None:
    """Feed a stable encoding of `obj` into hash `h` (arrays by content, dataclasses by field)."""
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        h.update(f"nd{arr.dtype.str}{arr.shape}".encode())
        h.update(hashlib.sha256(arr.tobytes()).digest())
    elif is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dc{type(obj).__qualname__}(".encode())
        for f in fields(obj):
            h.update(f.name.encode() + b"=")
            _canonical(getattr(obj, f.name), h)
        h.update(b")")
    elif isinstance(obj, Enum):
        h.update(f"en{type(obj).__qualname__}.{obj.name}".encode())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k in sorted(obj, key=repr):
            _canonical(k, h)
            _canonical(obj[k], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[" if isinstance(obj, list) else b"(")
        for x in obj:
            _canonical(x, h)
        h.update(b"]")
    elif isinstance(obj, bytes):
        h.update(b"by" + hashlib.sha256(obj).digest())
    elif isinstance(obj, np.generic):
        _canonical(obj.item(), h)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def fingerprint(*parts: Any) -> str:
    """Content hash of arbitrary IR objects, arrays and options."""
    h = hashlib.sha256()
    for part in parts:
        _canonical(part, h)
    return h.hexdigest()[:24]


def runtime_root() -> Path:
    """runtime/ (include/, src/): the repository's in a source checkout, else the copy that
    setup.py packs into npas/_runtime_files."""
    here = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "runtime", here / "_runtime_files"):
        if (cand / "include" / "npas_model.h").is_file():
            return cand
    raise ToolchainError(
        "npas cannot find its C++ runtime sources (runtime/include/npas_model.h); reinstall npas"
    )


_fingerprint_memo: dict[tuple, str] = {}


def code_fingerprint() -> str:
    """Hash of every npas source file the compiled artifact can depend on (Python, templates,
    C++ runtime), so editing a kernel template invalidates the cache without a version bump.
    Memoised on (path, size, mtime) of the files."""
    pkg = Path(__file__).resolve().parents[1]
    files: list[Path] = []
    for root in (pkg, runtime_root()):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            files += [
                Path(dirpath, f)
                for f in sorted(filenames)
                if f.endswith((".py", ".j2", ".h", ".hpp", ".cpp", ".inc", ".cmake"))
            ]
    sig = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if sig not in _fingerprint_memo:
        h = hashlib.sha256()
        for p in files:
            h.update(str(p.relative_to(p.anchor)).encode() + b"\0" + p.read_bytes() + b"\0")
        _fingerprint_memo.clear()
        _fingerprint_memo[sig] = h.hexdigest()[:24]
    return _fingerprint_memo[sig]


# --------------------------------------------------------------------------------------------
# Toolchain
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Toolchain:
    cmake: str
    ninja: str
    cxx: str
    cxx_version: str


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # pip's cmake/ninja wheels put their binaries beside the interpreter of the venv.
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.is_file() and os.access(cand, os.X_OK) else None


@functools.cache
def _compiler_version(cxx: str, mtime_ns: int) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolchainError(f"the C++ compiler {cxx} does not run: {e}; {INSTALL_HINT}") from e
    return (out.stdout.splitlines() or ["?"])[0]


def toolchain(target: Target) -> Toolchain:
    """The tools a build of `target` needs, or a ToolchainError saying what to install."""
    found = {name: _which(name) for name in ("cmake", "ninja", target.cxx)}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        hints = [INSTALL_HINT] if {"cmake", "ninja"} & set(missing) else []
        if target.cxx in missing and target.install_hint not in hints:
            hints.append(target.install_hint)
        raise ToolchainError(
            f"npas needs cmake, ninja and {target.cxx} to build models for target "
            f"{target.name!r}, but cannot find {', '.join(missing)} on PATH; "
            f"{'; '.join(hints)}."
        )
    cxx = str(found[target.cxx])
    real = os.path.realpath(cxx)
    return Toolchain(
        str(found["cmake"]),
        str(found["ninja"]),
        cxx,
        _compiler_version(real, os.stat(real).st_mtime_ns),
    )


def target_fingerprint(target: Target, tc: Toolchain) -> str:
    return fingerprint(target, tc.cxx_version, os.path.realpath(tc.cxx))


def compile_key(*parts: Any) -> str:
    """The whole-artifact cache key: npas version and source fingerprint plus `parts`."""
    from npas import __version__

    return fingerprint("npas-artifact", FORMAT_VERSION, __version__, code_fingerprint(), *parts)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(knobs.CACHE_DIR.get()).expanduser()


def _tmp_sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}.{tag}-{uuid.uuid4().hex[:12]}"


STALE_SECONDS = 3600.0


def _sweep_stale(parent: Path) -> None:
    """Remove temp siblings that a killed compile left behind (old enough that no running
    compile can still own them)."""
    now = time.time()
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for p in entries:
        if p.name.startswith(".") and re.search(r"\.(tmp|old)-[0-9a-f]{12}$", p.name):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime <= STALE_SECONDS:
                    continue
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()


def _write(path: Path, data: bytes | str) -> bool:
    """Write `data` to `path` unless it already holds exactly that; tmp + rename so a reader
    never sees half a file. True if the file changed."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path, "tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return True


def _is_artifact(path: Path) -> bool:
    return (path / METADATA).is_file()


def check_destination(out: Path) -> None:
    """Refuse to replace a directory that is not an npas artifact (it may hold user data)."""
    if out.exists() and not (out.is_dir() and (_is_artifact(out) or not any(out.iterdir()))):
        raise NpasError(
            f"output path {str(out)!r} exists and is not an npas output directory (no "
            f"{METADATA}); choose another path or remove it"
        )


def replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished directory `tmp` to `dest`, replacing an earlier artifact there."""
    check_destination(dest)
    old = None
    if dest.exists():
        old = _tmp_sibling(dest, "old")
        os.rename(dest, old)
    os.rename(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def copy_artifact(src: Path, dest: Path) -> Path:
    """Copy an artifact directory to `dest` atomically (to a temp sibling, then rename)."""
    dest = Path(dest).resolve()
    check_destination(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(dest, "tmp")
    try:
        shutil.copytree(src, tmp, symlinks=True, ignore=shutil.ignore_patterns("build", ".*"))
        replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def lookup(key: str) -> Path | None:
    """The cached artifact for `key`, if a complete one exists."""
    if knobs.NO_CACHE.flag():
        return None
    path = cache_root() / "builds" / key
    try:
        meta = json.loads((path / METADATA).read_text())
    except (OSError, ValueError):
        return None
    ok = (
        meta.get("compile_key") == key and (path / LIBRARY).is_file() and (path / WEIGHTS).is_file()
    )
    if ok:
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: the last to be evicted
    return path if ok else None


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def evict_builds(keep: Path | None = None) -> list[str]:
    """Delete the least recently used cached builds until builds/ fits NPAS_CACHE_MAX_GB
    (every compile of a changed npas or model adds one; weights make them large). Returns
    the keys removed; `keep` (the build just made) is never removed."""
    limit = float(knobs.CACHE_MAX_GB.get()) * 2**30
    root = cache_root() / "builds"
    entries = []
    for entry in root.iterdir() if root.is_dir() else ():
        if entry.name.startswith(".") or not entry.is_dir():
            continue  # staging and swept dirs belong to compiles in flight
        with contextlib.suppress(OSError):
            entries.append((entry.stat().st_mtime, _tree_bytes(entry), entry))
    total = sum(size for _, size, _ in entries)
    removed = []
    for _, size, entry in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if keep is not None and entry.resolve() == keep.resolve():
            continue
        shutil.rmtree(entry, ignore_errors=True)
        total -= size
        removed.append(entry.name)
    return removed


def _runtime_files() -> dict[str, bytes]:
    """Runtime files every project carries, by path inside the project."""
    root = runtime_root()
    files = {
        f"include/{p.relative_to(root / 'include').as_posix()}": p.read_bytes()
        for p in sorted((root / "include").rglob("*"))
        if p.is_file()
    }
    names = ("threadpool.cpp", "executor.cpp", "model_desc.h",
             "opencl_backend.cpp", "opencl_backend.h", "npas_cl.h")  # fmt: skip
    for name in names:
        files[f"runtime/{name}"] = (root / "src" / name).read_bytes()
    files["bench/npas_bench.cpp"] = (root / "src" / "bench_main.cpp").read_bytes()
    return files


TOOLCHAINS_DIR = Path(__file__).resolve().parent / "toolchains"


def _cmakelists(em: Emitted, model_source: str) -> str:
    return render(
        "project/CMakeLists.txt.j2",
        graph_name=em.graph_name,
        target=em.target.name,
        isa=em.target.isa.name,
        cxxflags=list(em.target.cxxflags),
        isa_flags=list(em.target.isa.cflags),
        kernel_units=em.kernel_units,
        model_source=model_source,
        toolchain=em.target.cmake_toolchain,
        opencl=em.target.template_dir == "opencl",
    )


def _toolchain_file(target: Target) -> dict[str, bytes]:
    """The target's CMake toolchain file, at its path inside the project (the project must
    cross-compile by hand too, with nothing of npas installed)."""
    if not target.cmake_toolchain:
        return {}
    src = TOOLCHAINS_DIR / Path(target.cmake_toolchain).name
    try:
        return {target.cmake_toolchain: src.read_bytes()}
    except OSError as e:
        raise ToolchainError(
            f"npas cannot read the CMake toolchain file of target {target.name!r} ({src}): "
            f"{e}; reinstall npas"
        ) from e


def write_sources(em: Emitted, root: Path, *, model_source: str = "model.cpp") -> set[str]:
    """Write the CMake project of `em` under `root`; returns the paths that changed."""
    files: dict[str, bytes | str] = dict(_runtime_files())
    files.update(_toolchain_file(em.target))
    files["CMakeLists.txt"] = _cmakelists(em, model_source)
    files[f"src/{model_source}"] = em.model_cpp
    for name, text in em.kernel_sources.items():
        files[f"src/{name}"] = text
    return {rel for rel, data in files.items() if _write(root / rel, data)}


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------


@dataclass
class BuildInfo:
    """What a compile did: for tests, logs and the CLI."""

    key: str
    path: Path
    cache_hit: bool
    seconds: float
    compiled: list[str] = field(default_factory=list)  # sources compiled (file names)
    kernel_units_compiled: list[str] = field(default_factory=list)
    tree: Path | None = None


_OBJECT_LINE = re.compile(r"Building CXX object \S*?/(?:src|runtime|bench)/(\S+?)\.o\b")
_STATUS = re.compile(r"^\[(\d+)/(\d+)\]")


def _jobs() -> int:
    value = knobs.JOBS.get()
    return int(value) if value.strip() else max(1, os.cpu_count() or 1)


def _run_streaming(cmd: list[str], cwd: Path, *, progress: bool) -> tuple[int, list[str]]:
    """Run a build command, collecting its output; a tqdm bar follows Ninja's [i/n] lines."""
    env = dict(os.environ, NINJA_STATUS="[%f/%t] ", LC_ALL="C")
    lines: list[str] = []
    bar = None
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace",
        )  # fmt: skip
    except OSError as e:
        raise ToolchainError(f"cannot run {cmd[0]}: {e}; {INSTALL_HINT}") from e
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = _STATUS.match(line)
            if progress and m:
                done, total = int(m.group(1)), int(m.group(2))
                if bar is None and total >= 8:
                    from tqdm import tqdm

                    bar = tqdm(
                        total=total, desc="npas build", unit="step", disable=None, leave=False
                    )
                if bar is not None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()
        return proc.wait(), lines
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        if bar is not None:
            bar.close()


def _failure(what: str, lines: list[str], where: Path) -> ToolchainError:
    start = next((i for i, line in enumerate(lines) if line.startswith("FAILED:")), None)
    tail = lines[start:] if start is not None else lines
    text = "\n".join(tail[-60:])[-6000:]
    return ToolchainError(f"{what} failed (build directory {where}):\n{text}")


def cmake_build(
    project: Path, build_dir: Path, target: Target, tc: Toolchain, *, configure: bool
) -> tuple[list[str], list[str]]:
    """Configure (when asked or needed) and build `project` in `build_dir`; returns (compiled
    source names, output lines)."""
    log: list[str] = []
    if configure or not (build_dir / "build.ninja").is_file():
        cmd = [
            tc.cmake, "-S", str(project), "-B", str(build_dir), "-G", "Ninja",
            "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_COMPILER={tc.cxx}",
            f"-DCMAKE_MAKE_PROGRAM={tc.ninja}",
        ]  # fmt: skip
        if target.cmake_toolchain:
            cmd.append(f"-DCMAKE_TOOLCHAIN_FILE={project / target.cmake_toolchain}")
        cmd += list(target.cmake_args)
        rc, lines = _run_streaming(cmd, project, progress=False)
        log += lines
        if rc != 0:
            raise _failure("configuring the model's CMake project", lines, build_dir)
    cmd = [tc.ninja, "-C", str(build_dir), "-j", str(_jobs()), LIBRARY, BENCH]
    rc, lines = _run_streaming(cmd, project, progress=True)
    log += lines
    if rc != 0:
        raise _failure("compiling the model", lines, build_dir)
    compiled = [m.group(1) for line in lines if (m := _OBJECT_LINE.search(line))]
    return compiled, log


@contextlib.contextmanager
def _tree_slot(base: Path) -> Iterator[Path]:
    """A locked persistent build tree: the first free slot, else wait for slot 0. flock dies
    with its process, so a killed compile never leaves a slot locked."""
    base.parent.mkdir(parents=True, exist_ok=True)
    handles = []
    try:
        for slot in [*range(TREE_SLOTS), 0]:
            tree = base.with_name(f"{base.name}-{slot}")
            tree.mkdir(parents=True, exist_ok=True)
            f = open(tree / ".lock", "w")  # held for the whole build
            handles.append(f)
            blocking = slot == 0 and len(handles) > TREE_SLOTS
            try:
                fcntl.flock(f, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield tree
            return
    finally:
        for f in handles:
            f.close()


def _build_in_tree(em: Emitted, artifact: Path, tc: Toolchain) -> tuple[list[str], list[str], Path]:
    """Build in a persistent per-target tree and copy the products into `artifact`."""
    from npas.codegen.kernel import content_hash

    base = cache_root() / "trees" / target_fingerprint(em.target, tc)
    with _tree_slot(base) as tree:
        model_source = f"model_{content_hash(em.model_cpp)}.cpp"
        changed = write_sources(em, tree, model_source=model_source)
        build_dir = tree / "build"
        if any(not p.startswith("src/") and p != "CMakeLists.txt" for p in changed):
            # A shared header or runtime source changed: rebuild everything rather than trust
            # timestamps (they may be coarser than the edit interval).
            shutil.rmtree(build_dir, ignore_errors=True)
        try:
            compiled, log = cmake_build(
                tree, build_dir, em.target, tc, configure="CMakeLists.txt" in changed
            )
        except ToolchainError as e:
            if "FAILED:" in str(e):
                raise  # a real compile error: the tree is fine
            # CMake/Ninja state broken (e.g. the compiler moved): one retry from scratch.
            shutil.rmtree(build_dir, ignore_errors=True)
            compiled, log = cmake_build(tree, build_dir, em.target, tc, configure=True)
        for name in (LIBRARY, BENCH):
            shutil.copy2(build_dir / name, artifact / name)
        compiled = ["model.cpp" if c == model_source else c for c in compiled]
        return compiled, log, tree


def _ir_text(graph: Any) -> str:
    try:
        from npas.ir.printer import format_graph

        return format_graph(graph)
    except ImportError:
        lines = [f"graph {graph.name}: inputs {graph.inputs} outputs {graph.outputs}"]
        for layer in graph.layers:
            lines.append(f"  {layer.outputs} = {layer.op.value}({', '.join(layer.inputs)})")
        return "\n".join(lines) + "\n"


def build(
    em: Emitted,
    out: str | os.PathLike[str] | None,
    *,
    key: str,
    graph: Any = None,
    extra_metadata: dict[str, Any] | None = None,
) -> BuildInfo:
    """Write and build the artifact of `em`. With the cache on it lands in builds/<key> first;
    `out` (if given) receives an atomic copy. Nothing partial is left anywhere on failure."""
    from npas import __version__

    t0 = time.perf_counter()
    use_cache = not knobs.NO_CACHE.flag()
    dest = Path(out).resolve() if out is not None else None
    if dest is not None:
        check_destination(dest)
    tc = toolchain(em.target)

    if use_cache:
        final = cache_root() / "builds" / key
    elif dest is not None:
        final = dest
    else:
        final = Path(tempfile.mkdtemp(prefix="npas-")) / "model"
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(final.parent)
    staging = _tmp_sibling(final, "tmp")
    staging.mkdir()
    tree = None
    try:
        write_sources(em, staging)
        (staging / WEIGHTS).write_bytes(em.weights)
        if graph is not None:
            (staging / "ir.txt").write_text(_ir_text(graph))
        if use_cache:
            compiled, log, tree = _build_in_tree(em, staging, tc)
        else:
            compiled, log = cmake_build(staging, staging / "build", em.target, tc, configure=True)
            for name in (LIBRARY, BENCH):
                shutil.copy2(staging / "build" / name, staging / name)
            if not knobs.KEEP_BUILD.flag():
                shutil.rmtree(staging / "build")
        (staging / "build.log").write_text("\n".join(log) + "\n")
        meta = {
            "format": FORMAT_VERSION,
            "npas_version": __version__,
            "compile_key": key,
            **em.metadata(),
            "files": {"library": LIBRARY, "weights": WEIGHTS, "bench": BENCH},
            **(extra_metadata or {}),
        }
        (staging / METADATA).write_text(json.dumps(meta, indent=1) + "\n")
        if use_cache and final.exists():
            shutil.rmtree(staging)  # a concurrent compile of the same key won; same content
        else:
            replace_dir(staging, final)
        if use_cache:
            evict_builds(keep=final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    path = copy_artifact(final, dest) if use_cache and dest is not None else final
    units = set(em.kernel_units)
    return BuildInfo(
        key=key,
        path=path,
        cache_hit=False,
        seconds=time.perf_counter() - t0,
        compiled=compiled,
        kernel_units_compiled=[c for c in compiled if c in units],
        tree=tree,
    )


def from_cache(key: str, out: str | os.PathLike[str] | None) -> BuildInfo | None:
    """A cache hit for `key`, copied to `out` when given; None on a miss."""
    t0 = time.perf_counter()
    hit = lookup(key)
    if hit is None:
        return None
    path = copy_artifact(hit, Path(out)) if out is not None else hit
    return BuildInfo(key=key, path=path, cache_hit=True, seconds=time.perf_counter() - t0)
