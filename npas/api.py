"""npas.compile: model -> CompiledModel, through the whole toolchain.

    ONNX --frontend.load_onnx--> IR --passes.run_pipeline--> IR --codegen.emit--> sources
         --codegen.build (CMake + Ninja, cached)--> artifact directory --runtime.load--> model

The whole-artifact cache is consulted before the frontend runs, keyed by the model's bytes (or
the IR's content for a Graph), the shapes, target, options and a fingerprint of npas' own
sources, so recompiling an unchanged model only copies a directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from npas import knobs
from npas.errors import ModelError, NpasError, ToolchainError
from npas.ir.graph import Graph


def _resolve_target(target: Any, fp16: bool = False) -> Any:
    """The Target of a name (or a Target as is); fp16 on an OpenCL target is half storage."""
    from npas.codegen.target import TARGET_NAMES, Target, get_target

    if isinstance(target, Target):
        tgt = target
    elif target in TARGET_NAMES:
        tgt = get_target(target)
    else:
        raise ToolchainError(
            f"unknown target {target!r}: expected one of {', '.join(TARGET_NAMES)}"
        )
    if fp16 and tgt.template_dir == "opencl":
        tgt = dataclasses.replace(tgt, fp16_storage=True)
    try:
        # NPAS_ISA is read now, not when the (cached) host Target was first made.
        from npas.codegen.lower import effective_isa
    except ImportError:
        return tgt
    try:
        return dataclasses.replace(tgt, isa=effective_isa(tgt))
    except ValueError as e:
        raise ToolchainError(str(e)) from None


def _lowering_id(lower: Callable[..., Any] | None) -> Any:
    """Part of the cache key: which lowering function built the kernels. The default one is
    covered by the npas source fingerprint; another one by its name and its module's source."""
    if lower is None:
        return "default"
    module = inspect.getmodule(lower)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        source = ""
    return (getattr(lower, "__module__", "?"), getattr(lower, "__qualname__", repr(lower)), source)


def _prune_config_key(prune_config: Any) -> Any:
    if prune_config is None:
        return None
    if isinstance(prune_config, str | os.PathLike):
        try:
            return ("file", Path(prune_config).read_bytes())
        except OSError as e:
            raise NpasError(f"prune config {prune_config}: cannot read it ({e})") from None
    return json.dumps(prune_config, sort_keys=True, default=str)


def _model_source(model: Any) -> tuple[Any, str | None, bytes | None]:
    """(cache identity, source path, serialized ONNX bytes) of a model argument."""
    if isinstance(model, Graph):
        from npas.codegen.build import fingerprint

        return ("graph", fingerprint(model)), None, None
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"{path}: no such ONNX file")
        data = path.read_bytes()
        identity = ("onnx", hashlib.sha256(data).hexdigest(), _external_data_hashes(path, data))
        return identity, str(path.resolve()), None
    if isinstance(model, bytes | bytearray):
        data = bytes(model)
    elif hasattr(model, "SerializeToString"):  # onnx.ModelProto, without importing onnx here
        data = model.SerializeToString()
    else:
        raise TypeError(
            f"npas.compile: model must be a path, ONNX bytes, an onnx.ModelProto or an npas "
            f"Graph, not {type(model).__name__}"
        )
    return ("onnx", hashlib.sha256(data).hexdigest(), []), None, data


def _external_data_hashes(path: Path, data: bytes) -> list[tuple[str, str]]:
    """Hashes of the external-data files an ONNX model refers to (weights stored beside the
    .onnx), so that changing them invalidates the cache too. Only parsed when the bytes can
    hold such a reference at all."""
    if b"location" not in data:
        return []
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)
    locations = set()
    for tensor in onnx.external_data_helper._get_all_tensors(proto):
        for entry in tensor.external_data:
            if entry.key == "location":
                locations.add(entry.value)
    out = []
    for loc in sorted(locations):
        file = path.parent / loc
        digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else "missing"
        out.append((loc, digest))
    return out


def _to_graph(
    model: Any,
    path: str | None,
    data: bytes | None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None,
    run_passes: bool,
    pipeline_options: dict[str, Any],
) -> Graph:
    if isinstance(model, Graph):
        graph = model
    else:
        from npas.frontend import load_onnx

        shapes = None if input_shapes is None else {k: tuple(v) for k, v in input_shapes.items()}
        graph = load_onnx(path if path is not None else (data or b""), shapes)
    if run_passes:
        from npas.passes.pipeline import run_pipeline

        accepted = inspect.signature(run_pipeline).parameters
        for option in pipeline_options:
            if option not in accepted:
                raise NpasError(
                    f"npas.compile({option}=...): the pass pipeline of this npas does not "
                    "support it yet; compile without it"
                )
        graph = run_pipeline(graph, **pipeline_options)
    return graph


def compile(
    model: Any,
    target: Any = "host",
    out: str | os.PathLike[str] | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    threads: int = 1,
    prune_config: Any = None,
    fp16: bool = False,
    tune: bool = False,
    run_passes: bool | None = None,
    lower: Callable[..., Any] | None = None,
) -> Any:
    """Compile `model` for `target` and load it: returns an npas.CompiledModel.

    model: an ONNX path, ONNX bytes, an onnx.ModelProto, or an npas Graph. A Graph is taken as
    already run through the pass pipeline unless run_passes=True (ONNX always runs it).
    out: the output directory (a standalone CMake project plus the built library); None builds
    into the compile cache and loads from there. threads: worker threads of the loaded model.
    fp16: on OpenCL targets, buffers hold half (arithmetic stays fp32; outputs agree with fp32
    to about 1e-2 of their range); elsewhere it goes to the pass pipeline like prune_config.
    lower: the layer lowering (default
    npas.codegen.lower.lower_layer); tests plug their own.
    """
    from npas.codegen import build
    from npas.codegen.emit import emit
    from npas.passes.prune.annotate import sparsity_report
    from npas.runtime.compiled import load

    tgt = _resolve_target(target, fp16)
    if tune:
        warnings.warn(
            "npas.compile(tune=True): the tuner is not available yet; compiling with the "
            "default kernel parameters",
            stacklevel=2,
        )
    identity, path, data = _model_source(model)
    if run_passes is None:
        run_passes = not isinstance(model, Graph)
    pipeline_options: dict[str, Any] = {}
    if prune_config is not None:
        pipeline_options["prune_config"] = prune_config
    if fp16 and tgt.template_dir != "opencl":
        pipeline_options["fp16"] = True
    shapes = None if input_shapes is None else {k: list(v) for k, v in sorted(input_shapes.items())}

    tc = build.toolchain(tgt)  # fail fast, before any work, when the tools are missing
    key = build.compile_key(
        identity,
        shapes,
        build.target_fingerprint(tgt, tc),
        _prune_config_key(prune_config),
        fp16,
        run_passes,
        _lowering_id(lower),
        knobs.SPARSE.get(),  # sparse kernels or dense ones for pruned layers
    )
    info = build.from_cache(key, out)
    if info is None:
        graph = _to_graph(
            model, path, data, input_shapes=input_shapes, run_passes=run_passes,
            pipeline_options=pipeline_options,
        )  # fmt: skip
        emitted = emit(graph, tgt, lower=lower)
        meta = {"source_model": path, "sparsity": sparsity_report(graph)}
        info = build.build(emitted, out, key=key, graph=graph, extra_metadata=meta)
    cm = load(info.path, threads=threads, connect=False)  # a phone is needed to run, not here
    cm.compile_info = info
    return cm


__all__ = ["compile"]
