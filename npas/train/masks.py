"""Fixed keep-masks on the pruned layers of a torch module.

Masks come from the compiler's numpy projections (`npas.passes.prune.project`), so a layer
trained here holds exactly the structure npas detects in the exported weights. Once set, a
mask never changes and no pruned weight comes back: gradients are masked before the optimizer
step, and after it the weights *and* the optimizer's per-weight state (momentum, Adam moments)
are masked again, because weight decay and momentum would otherwise move a zero weight.

Filter pruning also masks the removed filters' bias and the scale and shift of the batch norms
that read the layer: a removed filter then outputs exactly zero, which is what lets the
compiler delete it (see npas/passes/prune/shrink.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from npas.ir.graph import Sparsity
from npas.passes.prune import PruneError, project

from .config import TrainLayer


def project_layer(layer: TrainLayer, w: np.ndarray) -> Sparsity:
    """The layer's scheme and rate applied to `w` (the layer's weight or a stand-in for it)."""
    r = layer.rule
    try:
        return project(w, r.scheme, r.rate, layer.groups, **dict(r.params))
    except PruneError as e:
        raise PruneError(f"layer {layer.name!r}: {e}") from None


class Masks:
    """Keep-masks of the pruned layers; empty until `project()` fixes them."""

    def __init__(self, layers: list[TrainLayer]) -> None:
        self.layers = [lay for lay in layers if lay.pruned]
        self.sparsity: dict[str, Sparsity] = {}
        self._pairs: list[tuple[torch.nn.Parameter | torch.Tensor, torch.Tensor]] = []

    @property
    def fixed(self) -> bool:
        return bool(self.sparsity) or not self.layers

    def project(self) -> None:
        """Fix the masks by projecting every pruned layer's current weights, and apply them."""
        self.sparsity = {
            lay.name: project_layer(lay, lay.weight.detach().cpu().numpy()) for lay in self.layers
        }
        self._bind()
        self.apply()

    def _bind(self) -> None:
        """(tensor, mask) pairs for every tensor a mask covers."""
        self._pairs = []
        for lay in self.layers:
            sp = self.sparsity[lay.name]
            assert sp.mask is not None
            w = lay.weight
            mask = torch.from_numpy(np.ascontiguousarray(sp.mask)).to(w.device)
            self._pairs.append((w, mask.to(w.dtype)))
            if sp.scheme != "filter":
                continue
            kept = mask.reshape(mask.shape[0], -1).any(dim=1).to(w.dtype)
            bias = getattr(lay.module, "bias", None)
            if isinstance(bias, torch.Tensor):
                self._pairs.append((bias, kept))
            for bn in lay.bns:
                for t in (bn.weight, bn.bias):
                    if isinstance(t, torch.Tensor) and t.shape == kept.shape:
                        self._pairs.append((t, kept))

    @torch.no_grad()
    def apply(self) -> None:
        for t, m in self._pairs:
            t.mul_(m)

    @torch.no_grad()
    def mask_grads(self) -> None:
        for t, m in self._pairs:
            if t.grad is not None:
                t.grad.mul_(m)

    @torch.no_grad()
    def after_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Re-apply the masks to the weights and to the optimizer's per-weight state."""
        self.apply()
        for t, m in self._pairs:
            for v in optimizer.state.get(t, {}).values():
                if isinstance(v, torch.Tensor) and v.shape == m.shape:
                    v.mul_(m)

    def state_dict(self) -> dict[str, Any]:
        return {
            name: {"scheme": sp.scheme, "params": sp.params, "mask": sp.mask}
            for name, sp in self.sparsity.items()
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sparsity = {
            name: Sparsity(s["scheme"], tuple(s["params"]), np.asarray(s["mask"], dtype=bool))
            for name, s in state.items()
        }
        if self.sparsity:
            self._bind()
