"""Graph passes: each a named function Graph -> Graph; `pipeline.DEFAULT_PIPELINE` orders them."""

from npas.passes.cleanup import eliminate_dead_code, merge_reshapes, remove_identities
from npas.passes.fold import fold_batchnorm, fold_constants, fold_pad
from npas.passes.fuse import fuse_activation, fuse_residual_add
from npas.passes.pipeline import DEFAULT_PIPELINE, run_pipeline
from npas.passes.prune.annotate import annotate_sparsity
from npas.passes.prune.shrink import shrink_filters
from npas.passes.recognize import recognize_hardswish, recognize_silu, reduce_to_global_pool

__all__ = [
    "DEFAULT_PIPELINE", "annotate_sparsity", "eliminate_dead_code", "fold_batchnorm",
    "fold_constants", "fold_pad", "fuse_activation", "fuse_residual_add", "merge_reshapes",
    "recognize_hardswish", "recognize_silu", "reduce_to_global_pool", "remove_identities",
    "run_pipeline", "shrink_filters",
]  # fmt: skip
