"""The default pass pipeline: one ordered list, each step with why it sits where it does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from npas.errors import NpasError
from npas.ir import Graph
from npas.ir.verify import VerifyError
from npas.ir.verify import verify as verify_graph

from .cleanup import eliminate_dead_code, merge_reshapes, remove_identities
from .fold import fold_batchnorm, fold_constants, fold_pad
from .fuse import fuse_activation, fuse_residual_add
from .prune.annotate import annotate_sparsity, pruning_pass
from .prune.shrink import shrink_filters
from .recognize import recognize_hardswish, recognize_silu, reduce_to_global_pool

Pass = Callable[[Graph], Graph]

DEFAULT_PIPELINE: list[Pass] = [
    fold_constants,  # first: constant subgraphs become plain constants the patterns can read
    remove_identities,  # no-op views gone, so producer/consumer pairs below are adjacent
    merge_reshapes,  # reshape chains (flatten after squeeze...) become one view
    reduce_to_global_pool,  # SE blocks' ReduceMean over H,W -> the global-pool kernel
    fold_pad,  # explicit zero Pad into conv pads, before anything else looks at the conv
    fold_batchnorm,  # BN into weights while the conv's epilogue is still empty
    annotate_sparsity,  # weights are final once BN is folded (its scale keeps zeros zero)
    recognize_hardswish,  # decomposed hard-swish/hard-sigmoid -> one op, so it can fuse
    recognize_silu,  # x*sigmoid(x) -> SILU, for the same reason
    fuse_residual_add,  # before activations: in conv -> add -> relu the add comes first
    fuse_activation,  # last fusion: an activation after conv, or after conv+residual
    shrink_filters,  # after fusions, a removed filter's output act(bias + residual) is one layer
    eliminate_dead_code,  # drop whatever the rewrites left unread
]


def run_pipeline(
    graph: Graph,
    passes: Sequence[Pass] = DEFAULT_PIPELINE,
    verify: bool = False,
    prune_config: Any = None,
) -> Graph:
    """Run `passes` in order; with verify, check the IR after every pass and name the pass
    that broke it. `prune_config` (a dict, a JSON path; format in npas.passes.prune.config)
    makes annotate_sparsity project the layers it names to their schemes and rates."""
    if prune_config is not None:
        if annotate_sparsity not in passes:
            raise NpasError("prune_config needs annotate_sparsity in the pass list")
        bound = pruning_pass(prune_config)
        passes = [bound if p is annotate_sparsity else p for p in passes]
    if verify:
        verify_graph(graph)
    for p in passes:
        graph = p(graph)
        if verify:
            try:
                verify_graph(graph)
            except VerifyError as e:
                raise VerifyError(f"after pass {p.__name__}: {e}") from None
    return graph
