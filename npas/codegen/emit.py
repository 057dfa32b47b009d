"""Graph executor emitter: a post-pipeline Graph -> model.cpp, kernel TUs, weights.bin and a
static memory plan.

Every layer is lowered to a LayerKernel (npas.codegen.lower); views (RESHAPE/IDENTITY) get no
kernel and share their input's bytes. Activations live in ONE arena whose layout is decided here,
at compile time: liveness over the layer order, in-place reuse for elementwise layers, greedy
best-fit placement (largest buffers first) at 64-byte alignment. The generated model.cpp only
holds tables (runtime/src/model_desc.h); the fixed executor (runtime/src/executor.cpp) runs
them, so a recompile rebuilds a few constexpr arrays instead of the whole C ABI.

ONNX names are untrusted input: they never become C identifiers (layers are addressed by index)
and reach C++ only as escaped string literals or sanitised comments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npas.codegen.kernel import ClLaunch, LayerKernel, content_hash
from npas.codegen.target import Target
from npas.errors import ModelError, UnsupportedOpError
from npas.ir.graph import Graph, Layer
from npas.ir.ops import ELEMENTWISE, VIEWS

ALIGN = 64  # bytes; cache line and the widest vector (AVX-512) at once
WEIGHTS_MAGIC = b"NPASWTS\0"
WEIGHTS_VERSION = 1
WEIGHTS_HEADER_BYTES = 64
# Mirrors runtime/include/npas/kernel_abi.h.
MAX_LAYER_INPUTS, MAX_LAYER_OUTPUTS, MAX_LAYER_WEIGHTS = 16, 16, 8

# CPU features a library built for an ISA needs; checked in npas_model_create so a
# wrong-machine library fails with a message instead of SIGILL. x86: GCC
# __builtin_cpu_supports names. aarch64: Linux HWCAP names (as /proc/cpuinfo's Features line
# spells them), tested with getauxval(AT_HWCAP). NEON kernels are built with
# -march=armv8.2-a, which lets the compiler use ARMv8.1 LSE atomics and other post-8.0
# instructions anywhere in them; 'atomics' stands for that (an ARMv8.0 core such as the
# Cortex-A53 lacks it). An fp16 build would add asimdhp and fphp.
CPU_FEATURES: dict[str, tuple[str, ...]] = {
    "scalar": (),
    "avx2": ("avx2", "fma", "f16c"),
    "avx512": ("avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma", "f16c"),
    "neon": ("asimd", "atomics"),
}
# Bit of each aarch64 feature in AT_HWCAP (linux/arch/arm64/include/uapi/asm/hwcap.h).
AARCH64_HWCAPS = {"fp": 0, "asimd": 1, "atomics": 8, "fphp": 9, "asimdhp": 10, "asimddp": 20}

LowerFn = Callable[[Layer, Graph, Target], "LayerKernel | None"]


def _round_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


# --------------------------------------------------------------------------------------------
# C string/comment safety
# --------------------------------------------------------------------------------------------


def c_string(text: str) -> str:
    """A C string literal holding `text` (UTF-8) exactly. Everything outside plain printable
    ASCII, plus quote, backslash and '?' (trigraphs), becomes a 3-digit octal escape: octal
    escapes stop after 3 digits, unlike \\x, so a following character can never join them."""
    out = ['"']
    for b in text.encode("utf-8"):
        ch = chr(b)
        if 0x20 <= b < 0x7F and ch not in '"\\?':
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


def c_comment(text: str, limit: int = 80) -> str:
    """Text safe inside a // or /* */ comment: no newlines, no backslash (line splice), no
    comment terminators; anything unusual becomes '?'."""
    safe = re.sub(r"[^A-Za-z0-9_.:,=+@#<>()\[\] -]", "?", text)
    return safe[:limit]


def cmake_quote(text: str) -> str:
    """A quoted CMake argument holding `text` literally (no variable or list expansion)."""
    escaped = re.sub(r'([\\"$;])', r"\\\1", text)
    return f'"{escaped}"'


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FILE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
TU_SUFFIXES = (".cpp", ".cc", ".cxx")


# --------------------------------------------------------------------------------------------
# Memory plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One layer as the memory planner sees it."""

    reads: tuple[str, ...]  # activation values read
    writes: tuple[str, ...]  # activation values written
    alias: bool = False  # a view: writes[0] is reads[0]'s bytes under another shape
    inplace: bool = False  # elementwise: writes[0] may take over a same-size read that dies here


@dataclass
class Buffer:
    index: int
    size: int  # bytes, a multiple of ALIGN
    first: int  # step that writes it; -1 for graph inputs (copied in before step 0)
    last: int  # last step that reads it; len(steps) for graph outputs (copied out after)
    values: list[str]
    offset: int = -1

    def live_with(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    buffer_of: dict[str, int]  # activation value name -> buffer index
    arena_bytes: int  # the arena the executor allocates: the peak activation bytes
    live_bytes_bound: int  # max over steps of the bytes live at once (no layout beats this)

    def offset(self, name: str) -> int:
        return self.buffers[self.buffer_of[name]].offset

    def check(self) -> None:
        """Raise AssertionError if two buffers that are live at the same time overlap, or a
        buffer is misaligned or outside the arena."""
        for b in self.buffers:
            assert b.offset % ALIGN == 0, f"buffer {b.index} misaligned at {b.offset}"
            assert 0 <= b.offset and b.offset + b.size <= self.arena_bytes, f"buffer {b.index}"
        live = [b for b in self.buffers if b.size > 0]
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                if a.live_with(b):
                    disjoint = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
                    assert disjoint, (
                        f"buffers {a.values} [{a.offset}, {a.offset + a.size}) and {b.values} "
                        f"[{b.offset}, {b.offset + b.size}) are live together and overlap"
                    )


def plan_memory(
    steps: Sequence[Step],
    nbytes: Mapping[str, int],
    graph_inputs: Sequence[str],
    graph_outputs: Sequence[str],
) -> MemoryPlan:
    """Place every activation into one arena. Views alias their input (the shared buffer lives
    as long as any alias); an in-place step hands a dying input's buffer to its output; then
    buffers are placed largest first, each into the smallest gap left by the buffers it is live
    with (best fit), else above them."""
    root: dict[str, str] = {}

    def find(v: str) -> str:
        while root[v] != v:
            v = root[v]
        return v

    for name in graph_inputs:
        root.setdefault(name, name)
    for step in steps:
        for name in step.writes:
            if name in root:
                raise ModelError(f"activation {name!r} is written twice (or is a graph input)")
            root[name] = name
        if step.alias:
            src, dst = step.reads[0], step.writes[0]
            if nbytes[src] != nbytes[dst]:
                raise ModelError(f"view {dst!r} has {nbytes[dst]} bytes, its input {nbytes[src]}")
            root[dst] = find(src)

    n = len(steps)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for name in graph_inputs:
        first[find(name)] = -1
    for i, step in enumerate(steps):
        for name in step.writes:
            r = find(name)
            first.setdefault(r, i)
            last[r] = max(last.get(r, i), i)
        for name in step.reads:
            r = find(name)
            last[r] = max(last.get(r, i), i)
    for name in graph_outputs:
        last[find(name)] = n
    for r in first:
        last.setdefault(r, first[r])

    # In-place: the output takes the buffer of an input that nobody reads after this step.
    for i, step in enumerate(steps):
        if not step.inplace or step.alias or len(step.writes) != 1:
            continue
        out = find(step.writes[0])
        if out != step.writes[0] or first[out] != i:
            continue
        for name in step.reads:
            r = find(name)
            if r != out and last[r] == i and nbytes[r] == nbytes[out] and last[r] < n:
                root[out] = r
                last[r] = last.pop(out)
                del first[out]
                break

    groups: dict[str, list[str]] = {}
    for name in root:
        groups.setdefault(find(name), []).append(name)
    buffers = [
        Buffer(i, _round_up(nbytes[r]), first[r], last[r], members)
        for i, (r, members) in enumerate(groups.items())
    ]
    buffer_of = {v: b.index for b in buffers for v in b.values}

    placed: list[Buffer] = []
    arena = 0
    for b in sorted(buffers, key=lambda b: (-b.size, b.first, b.index)):
        if b.size == 0:
            b.offset = 0
            continue
        conflicts = sorted((p for p in placed if p.live_with(b)), key=lambda p: p.offset)
        best, best_gap, top = None, None, 0
        for p in conflicts:
            gap = p.offset - top
            if gap >= b.size and (best_gap is None or gap < best_gap):
                best, best_gap = top, gap
            top = max(top, p.offset + p.size)
        b.offset = top if best is None else best
        arena = max(arena, b.offset + b.size)
        placed.append(b)

    bound = 0
    for t in range(-1, n + 1):
        bound = max(bound, sum(b.size for b in buffers if b.first <= t <= b.last))
    plan = MemoryPlan(buffers, buffer_of, arena, bound)
    plan.check()
    return plan


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


@dataclass
class WeightsFile:
    """weights.bin: a 64-byte header then every blob at a 64-byte aligned file offset.
    Header: magic[8], u32 version, u32 header bytes, u64 file bytes, hash[16], zeros."""

    blobs: list[bytes] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)
    size: int = WEIGHTS_HEADER_BYTES

    def add(self, array: np.ndarray) -> int:
        """File offset of `array`'s bytes (raw, native order); identical blobs are stored once."""
        data = np.ascontiguousarray(array).tobytes()
        key = hashlib.sha256(data).hexdigest()
        if key not in self._index:
            self._index[key] = self.size
            self.blobs.append(data)
            self.offsets.append(self.size)
            self.size = _round_up(self.size + len(data))
        return self._index[key]

    def payload(self) -> bytes:
        out = bytearray(self.size - WEIGHTS_HEADER_BYTES)
        for off, data in zip(self.offsets, self.blobs, strict=True):
            start = off - WEIGHTS_HEADER_BYTES
            out[start : start + len(data)] = data
        return bytes(out)

    def render(self) -> tuple[bytes, bytes]:
        """(file bytes, 16-byte content hash the library embeds)."""
        payload = self.payload()
        digest = hashlib.sha256(payload).digest()[:16]
        header = bytearray(WEIGHTS_HEADER_BYTES)
        header[0:8] = WEIGHTS_MAGIC
        header[8:12] = WEIGHTS_VERSION.to_bytes(4, "little")
        header[12:16] = WEIGHTS_HEADER_BYTES.to_bytes(4, "little")
        header[16:24] = self.size.to_bytes(8, "little")
        header[24:40] = digest
        return bytes(header) + payload, digest


# --------------------------------------------------------------------------------------------
# Emitter
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """Where a pointer of LayerArgs points: the activation arena or the weights image."""

    src: str  # "arena" | "weights"
    offset: int


@dataclass
class EmittedLayer:
    name: str
    op: str
    kernel: str
    scheme: str
    macs: int
    entry: str | None  # None: a view, nothing runs
    inputs: list[Ref]
    outputs: list[Ref]
    weights: list[int]
    scratch_bytes_per_thread: int
    isa: str = "scalar"
    cl: ClLaunch | None = None  # OpenCL targets: the layer's device kernel


@dataclass
class Emitted:
    """Everything the project writer needs: sources by path inside the project, weights.bin,
    the signature and the metadata that becomes model.json."""

    graph_name: str
    target: Target
    model_cpp: str
    kernel_sources: dict[str, str]  # file name (inside src/) -> text; TUs and headers
    weights: bytes
    weights_hash: str  # hex of the 16 bytes embedded in the library
    plan: MemoryPlan
    layers: list[EmittedLayer]
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[tuple[str, tuple[int, ...]]]
    scratch_bytes_per_thread: int

    @property
    def kernel_units(self) -> list[str]:
        """Kernel translation units (compiled one object each)."""
        return sorted(n for n in self.kernel_sources if n.endswith(TU_SUFFIXES))

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def metadata(self) -> dict[str, Any]:
        return {
            "graph": self.graph_name,
            "target": self.target.name,
            "isa": self.target.isa.name,
            "inputs": [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in self.inputs],
            "outputs": [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in self.outputs],
            "layers": [
                {
                    "name": layer.name,
                    "op": layer.op,
                    "kernel": layer.kernel,
                    "scheme": layer.scheme,
                    "macs": layer.macs,
                    "isa": layer.isa,
                }
                for layer in self.layers
            ],
            "peak_activation_bytes": self.plan.arena_bytes,
            "live_activation_bytes_bound": self.plan.live_bytes_bound,
            "scratch_bytes_per_thread": self.scratch_bytes_per_thread,
            "weights_bytes": len(self.weights),
            "weights_hash": self.weights_hash,
            "macs": self.macs,
            "kernel_units": self.kernel_units,
            **(
                {"fp16_storage": self.target.fp16_storage}
                if self.target.template_dir == "opencl"
                else {}
            ),
        }


def _default_lower() -> LowerFn:
    from npas.codegen.lower import lower_layer

    return lower_layer


def _template_env():
    """The one Jinja Environment of npas (npas.codegen.templates.ENV), with the filters the
    executor and project templates use."""
    from npas.codegen.templates import ENV

    ENV.filters.setdefault("c_string", c_string)
    ENV.filters.setdefault("c_comment", c_comment)
    ENV.filters.setdefault("cmake_quote", cmake_quote)
    return ENV


def render(template: str, **params: Any) -> str:
    """Render a template under npas/codegen; the header comment names it and its parameters."""
    return _template_env().get_template(template).render(template_name=template, **params)


_ISA_RANK = {"scalar": 0, "avx2": 1, "avx512": 2}


def _isa_fits(kernel_isa: str, target_isa: str) -> bool:
    """A kernel may use the target's ISA or a lower one (scalar runs everywhere)."""
    if kernel_isa in ("scalar", target_isa):
        return True
    return _ISA_RANK.get(kernel_isa, 99) <= _ISA_RANK.get(target_isa, -1)


def _check_activation(graph: Graph, name: str, where: str) -> None:
    if name not in graph.values:
        raise ModelError(f"{where} refers to {name!r}, which the graph does not define")
    v = graph.values[name]
    if v.dtype != "float32":
        raise ModelError(f"{where}: tensor {name!r} is {v.dtype}; compiled models are float32")
    if any((not isinstance(d, int | np.integer)) or d < 0 for d in v.shape):
        raise ModelError(f"{where}: tensor {name!r} has a non-static shape {v.shape}")


def _lower_layers(
    graph: Graph, target: Target, lower_fn: LowerFn, inplace: bool
) -> tuple[list[LayerKernel | None], list[tuple[str, ...]], list[Step]]:
    """Lower and check every layer: (kernel or None for a view, the values it reads in
    LayerArgs::in order, its memory-planner step)."""
    defined = set(graph.inputs)
    kernels: list[LayerKernel | None] = []
    all_reads: list[tuple[str, ...]] = []
    steps: list[Step] = []
    for layer in graph.layers:
        where = layer.where
        try:
            kernel = lower_fn(layer, graph, target)
        except NotImplementedError as e:
            raise UnsupportedOpError(layer.op.value, layer.name, graph.opset, str(e)) from None
        if kernel is None:
            if layer.op not in VIEWS:
                raise ModelError(f"{where}: no kernel lowering (lower_layer returned None)")
            reads = tuple(layer.inputs[:1])
            if len(layer.outputs) != 1 or not reads or graph.values.get(reads[0]) is None:
                raise ModelError(f"{where}: a view needs one activation input and one output")
            if graph.values[reads[0]].is_const:
                raise ModelError(f"{where}: a view of a constant should have been folded")
        else:
            wants_cl = target.template_dir == "opencl"
            if (kernel.cl is not None) != wants_cl:
                raise ModelError(
                    f"{where}: kernel {kernel.kernel} is "
                    f"{'an OpenCL' if kernel.cl else 'a CPU'} kernel, but target "
                    f"{target.name!r} runs {'OpenCL' if wants_cl else 'CPU'} kernels"
                )
            if not _isa_fits(kernel.isa, target.isa.name):
                raise ModelError(
                    f"{where}: kernel {kernel.kernel} needs ISA {kernel.isa!r}, but the target "
                    f"builds for {target.isa.name!r}"
                )
            # LayerKernel.inputs names the activations in LayerArgs::in order; empty means
            # "the layer's non-constant inputs".
            reads = kernel.inputs or tuple(
                n for n in layer.inputs if n in graph.values and not graph.values[n].is_const
            )
        for name in reads:
            if name not in graph.values:
                raise ModelError(f"{where} reads {name!r}, which the graph does not define")
            if not graph.values[name].is_const and name not in defined:
                raise ModelError(f"{where} reads {name!r} before any layer writes it")
        for name in layer.outputs:
            _check_activation(graph, name, where)
            if graph.values[name].is_const:
                raise ModelError(f"{where} writes the constant {name!r}")
        defined.update(layer.outputs)
        steps.append(
            Step(
                reads=tuple(n for n in reads if not graph.values[n].is_const),
                writes=tuple(layer.outputs),
                alias=kernel is None,
                # Elementwise kernels read element i before writing element i, so the output
                # may take over a same-size input that dies here.
                inplace=inplace and kernel is not None and layer.op in ELEMENTWISE,
            )
        )
        kernels.append(kernel)
        all_reads.append(reads)
    for name in graph.outputs:
        if name not in defined and not graph.values[name].is_const:
            raise ModelError(f"graph output {name!r} is never written")
    return kernels, all_reads, steps


def emit(
    graph: Graph, target: Target, *, lower: LowerFn | None = None, inplace: bool = True
) -> Emitted:
    """Lower every layer and lay the model out: see the module docstring."""
    for name in (*graph.inputs, *graph.outputs):
        _check_activation(graph, name, "the graph signature")
    kernels, all_reads, steps = _lower_layers(graph, target, lower or _default_lower(), inplace)

    activations = {n for s in steps for n in (*s.reads, *s.writes)} | set(graph.inputs)
    activations |= {n for n in graph.outputs if not graph.values[n].is_const}
    plan = plan_memory(
        steps,
        {n: graph.values[n].nbytes for n in activations},
        graph.inputs,
        [n for n in graph.outputs if not graph.values[n].is_const],
    )

    weights = WeightsFile()

    def ref(name: str) -> Ref:
        if graph.values[name].is_const:
            data = np.asarray(graph.values[name].data, dtype=np.float32)
            return Ref("weights", weights.add(data))
        return Ref("arena", plan.offset(name))

    sources: dict[str, str] = {}
    layers: list[EmittedLayer] = []
    for layer, kernel, reads in zip(graph.layers, kernels, all_reads, strict=True):
        where = layer.where
        scheme = layer.sparsity.scheme if layer.sparsity is not None else "dense"
        if kernel is None:
            layers.append(
                EmittedLayer(
                    layer.name, layer.op.value, "view", scheme, 0, None,
                    [ref(reads[0])], [ref(layer.outputs[0])], [], 0,
                )
            )  # fmt: skip
            continue
        if len(reads) > MAX_LAYER_INPUTS or len(layer.outputs) > MAX_LAYER_OUTPUTS:
            raise ModelError(f"{where}: more than {MAX_LAYER_INPUTS} inputs or outputs")
        if len(kernel.weights) > MAX_LAYER_WEIGHTS:
            raise ModelError(f"{where}: kernel {kernel.kernel} packs > {MAX_LAYER_WEIGHTS} blobs")
        if not _IDENT.match(kernel.entry):
            raise ModelError(f"{where}: kernel entry {kernel.entry!r} is not a C identifier")
        for fname, text in kernel.sources.items():
            if not _FILE.match(fname) or fname.startswith("model"):
                raise ModelError(f"{where}: kernel source name {fname!r} is not a plain file name")
            if sources.setdefault(fname, text) != text:
                raise ModelError(f"kernel source {fname!r} has two different texts")
        layers.append(
            EmittedLayer(
                name=layer.name,
                op=layer.op.value,
                kernel=kernel.kernel,
                scheme=scheme,
                macs=int(kernel.macs),
                entry=kernel.entry,
                inputs=[ref(n) for n in reads],
                outputs=[ref(n) for n in layer.outputs],
                weights=[weights.add(w) for w in kernel.weights],
                scratch_bytes_per_thread=_round_up(int(kernel.scratch_bytes_per_thread)),
                isa=kernel.isa,
                cl=kernel.cl,
            )
        )

    outputs = [ref(n) for n in graph.outputs]
    weights_bytes, digest = weights.render()
    scratch = max((layer.scratch_bytes_per_thread for layer in layers), default=0)
    inputs_sig = [(n, tuple(int(d) for d in graph.shape(n))) for n in graph.inputs]
    outputs_sig = [(n, tuple(int(d) for d in graph.shape(n))) for n in graph.outputs]
    isa = target.isa.name
    features = CPU_FEATURES.get(isa, ())
    for f in features:
        if not re.fullmatch(r"[a-z0-9_-]+", f):
            raise ValueError(f"bad CPU feature name {f!r}")
    aarch64 = target.arch == "aarch64"
    hwcaps = [(f, AARCH64_HWCAPS[f]) for f in features] if aarch64 else []
    features = () if aarch64 else features
    refs: list[Ref] = []
    table: list[tuple[EmittedLayer, int]] = []
    for el in layers:
        table.append((el, len(refs)))
        refs += [*el.inputs, *el.outputs, *(Ref("weights", o) for o in el.weights)]
    shapes: list[int] = []
    shape_begin: list[int] = []
    for _, shape in (*inputs_sig, *outputs_sig):
        shape_begin.append(len(shapes))
        shapes += shape
    cl = _cl_program(layers, target) if target.template_dir == "opencl" else None
    model_cpp = render(
        "project/model.cpp.j2",
        cl=cl,
        graph_name=graph.name,
        target=target.name,
        isa=isa,
        cpu_features=features,
        hwcaps=hwcaps,
        layers=table,
        refs=refs,
        shapes=[*shapes, 0],  # the sentinel keeps the array non-empty for rank-0 signatures
        entries=sorted({layer.entry for layer in layers if layer.entry and layer.cl is None}),
        inputs=[
            (n, len(s), b, Ref("arena", plan.offset(n)), graph.values[n].nbytes)
            for (n, s), b in zip(inputs_sig, shape_begin, strict=False)
        ],
        outputs=[
            (n, len(s), b, r, graph.values[n].nbytes)
            for (n, s), b, r in zip(
                outputs_sig, shape_begin[len(inputs_sig) :], outputs, strict=True
            )
        ],
        arena_bytes=plan.arena_bytes,
        scratch_bytes_per_thread=scratch,
        weights_bytes=len(weights_bytes),
        weights_hash=list(digest),
        weights_hash_hex=digest.hex(),
        weights_version=WEIGHTS_VERSION,
        weights_header_bytes=WEIGHTS_HEADER_BYTES,
    )
    return Emitted(
        graph_name=graph.name,
        target=target,
        model_cpp=model_cpp,
        kernel_sources=sources,
        weights=weights_bytes,
        weights_hash=digest.hex(),
        plan=plan,
        layers=layers,
        inputs=inputs_sig,
        outputs=outputs_sig,
        scratch_bytes_per_thread=scratch,
    )


_RAW_END = ')npascl"'


def _cl_program(layers: Sequence[EmittedLayer], target: Target) -> dict[str, Any]:
    """The OpenCL tables of model.cpp: the program's sources (prelude first, then each distinct
    kernel once, in first-use order), one launch per layer, the program's content hash."""
    from npas.codegen.opencl.common import PRELUDE

    sources = [PRELUDE]
    seen: set[str] = set()
    launches: list[tuple[str, int, tuple[int, ...], tuple[int, ...]] | None] = []
    for el in layers:
        if el.cl is None:
            launches.append(None)
            continue
        if el.cl.function not in seen:
            seen.add(el.cl.function)
            sources.append(el.cl.source)
        # Unused dimensions are 1; local (0, 0, 0) leaves the work-group size to the driver.
        pad = (1,) * (3 - len(el.cl.global_size))
        local = (*el.cl.local_size, *pad) if el.cl.local_size else (0, 0, 0)
        launches.append((el.cl.function, len(el.cl.global_size), (*el.cl.global_size, *pad), local))
    for text in sources:
        if _RAW_END in text:
            raise ModelError(f"OpenCL source contains {_RAW_END!r}, which ends a raw literal")
    return {
        "sources": sources,
        "layers": launches,
        "fp16": target.fp16_storage,
        "hash": content_hash(*sources, str(target.fp16_storage)),
    }


__all__ = [
    "AARCH64_HWCAPS", "ALIGN", "CPU_FEATURES", "Buffer", "Emitted", "EmittedLayer", "MemoryPlan",
    "Ref", "Step", "WeightsFile", "c_comment", "c_string", "content_hash", "emit", "plan_memory",
    "render",
]  # fmt: skip
