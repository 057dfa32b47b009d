"""The pruning algorithms, as what they add to a training loop.

Every method trains in two phases over the same epoch budget: a sparsity-inducing phase that
moves the weights towards the scheme's structure, then a hard projection (the masks are fixed
from then on, see masks.py) and masked retraining.

- oneshot: no first phase; magnitude projection of the given weights, then masked fine-tuning.
- rgl (reweighted group lasso): the loss gains lam * sum_g sqrt(|g|) alpha_g ||W_g||_2 over the
  scheme's groups (`Scheme.group_ids`: whole filters, kernels, (block, position) pairs, (row
  block, column) pairs, single weights); alpha_g = mean_norm / (||W_g|| + eps * mean_norm) is
  re-estimated from the current weights at every epoch, so groups already small are pushed
  hardest and the ones the projection will keep are barely touched. Pattern pruning adds the
  single weights as groups, so each kernel's smallest positions fade and its pattern emerges.
- admm: the loss gains rho/2 ||W - Z + U||^2; after each epoch Z = projection of W + U onto the
  scheme (the compiler's numpy projection) and U += W - Z (the scaled dual); rho grows by
  `rho_growth` per epoch up to `rho_max`, pulling W onto its projection.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from npas.errors import NpasError
from npas.passes.prune import get_scheme

from .config import TrainLayer
from .masks import project_layer

METHODS = ("oneshot", "rgl", "admm")


class Method:
    """What a pruning algorithm does around the training loop of its first phase."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, float]] = {}

    def __init__(self, layers: list[TrainLayer], **options: float) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise NpasError(
                f"{self.name}: unknown option(s) {', '.join(unknown)}; accepted: "
                f"{', '.join(self.defaults) or 'none'}"
            )
        self.layers = [lay for lay in layers if lay.pruned]
        self.options = {**self.defaults, **options}

    def epoch_start(self, epoch: int) -> None:
        """Called before each epoch of the first phase."""

    def penalty(self) -> torch.Tensor | None:
        """The term added to the loss in the first phase (None: nothing)."""
        return None

    def epoch_end(self, epoch: int) -> None:
        """Called after each epoch of the first phase."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class OneShot(Method):
    name = "oneshot"


class ReweightedGroupLasso(Method):
    name = "rgl"
    defaults: ClassVar[dict[str, float]] = {"lam": 0.02, "eps": 0.05}

    def __init__(self, layers: list[TrainLayer], **options: float) -> None:
        super().__init__(layers, **options)
        # per layer, one or two groupings of its weights: (flat group ids, number of groups)
        self.groups: dict[str, list[tuple[torch.Tensor, int]]] = {}
        self.sizes: dict[str, list[torch.Tensor]] = {}  # sqrt(group size), per group
        for lay in self.layers:
            shape = tuple(lay.weight.shape)
            scheme = get_scheme(lay.rule.scheme)
            ids = scheme.group_ids(shape, **dict(lay.rule.params)).reshape(-1)
            grouping = [ids]
            if lay.rule.scheme == "pattern":
                grouping.append(np.arange(ids.size))
            self.groups[lay.name] = []
            self.sizes[lay.name] = []
            for g in grouping:
                _, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
                gid = torch.from_numpy(inverse.astype(np.int64)).to(lay.weight.device)
                self.groups[lay.name].append((gid, int(counts.size)))
                self.sizes[lay.name].append(
                    torch.from_numpy(np.sqrt(counts)).to(lay.weight.device, lay.weight.dtype)
                )
        self.alphas: dict[str, list[torch.Tensor]] = {}

    def _norms(self, w: torch.Tensor, gid: torch.Tensor, n: int) -> torch.Tensor:
        sq = torch.zeros(n, dtype=w.dtype, device=w.device)
        sq.index_add_(0, gid, w.reshape(-1) ** 2)
        return torch.sqrt(sq + 1e-12)

    @torch.no_grad()
    def epoch_start(self, epoch: int) -> None:
        eps = self.options["eps"]
        for lay in self.layers:
            alphas = []
            for gid, n in self.groups[lay.name]:
                norms = self._norms(lay.weight.detach(), gid, n)
                mean = norms.mean().clamp_min(1e-12)
                alphas.append(mean / (norms + eps * mean))
            self.alphas[lay.name] = alphas

    def penalty(self) -> torch.Tensor | None:
        total: torch.Tensor | None = None
        for lay in self.layers:
            for (gid, n), size, alpha in zip(
                self.groups[lay.name], self.sizes[lay.name], self.alphas[lay.name], strict=True
            ):
                term = (alpha * size * self._norms(lay.weight, gid, n)).sum()
                total = term if total is None else total + term
        return None if total is None else self.options["lam"] * total

    def state_dict(self) -> dict[str, Any]:
        return {"alphas": {k: [a.cpu() for a in v] for k, v in self.alphas.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        devices = {lay.name: lay.weight.device for lay in self.layers}
        self.alphas = {k: [a.to(devices[k]) for a in v] for k, v in state["alphas"].items()}


class Admm(Method):
    name = "admm"
    defaults: ClassVar[dict[str, float]] = {"rho": 0.3, "rho_growth": 1.5, "rho_max": 10.0}

    def __init__(self, layers: list[TrainLayer], **options: float) -> None:
        super().__init__(layers, **options)
        self.rho = float(self.options["rho"])
        self.z: dict[str, torch.Tensor] = {}
        self.u: dict[str, torch.Tensor] = {}

    def _project(self, lay: TrainLayer, v: torch.Tensor) -> torch.Tensor:
        sp = project_layer(lay, v.cpu().numpy())
        assert sp.mask is not None
        return v * torch.from_numpy(np.ascontiguousarray(sp.mask)).to(v.device, v.dtype)

    @torch.no_grad()
    def epoch_start(self, epoch: int) -> None:
        if not self.z:  # the first epoch of the phase: Z from W, no dual yet
            for lay in self.layers:
                w = lay.weight.detach().clone()
                self.z[lay.name] = self._project(lay, w)
                self.u[lay.name] = torch.zeros_like(w)

    def penalty(self) -> torch.Tensor | None:
        total: torch.Tensor | None = None
        for lay in self.layers:
            term = ((lay.weight - self.z[lay.name] + self.u[lay.name]) ** 2).sum()
            total = term if total is None else total + term
        return None if total is None else 0.5 * self.rho * total

    @torch.no_grad()
    def epoch_end(self, epoch: int) -> None:
        for lay in self.layers:
            w = lay.weight.detach()
            self.z[lay.name] = self._project(lay, w + self.u[lay.name])
            self.u[lay.name] = self.u[lay.name] + w - self.z[lay.name]
        self.rho = min(self.rho * self.options["rho_growth"], self.options["rho_max"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "rho": self.rho,
            "z": {k: v.cpu() for k, v in self.z.items()},
            "u": {k: v.cpu() for k, v in self.u.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        devices = {lay.name: lay.weight.device for lay in self.layers}
        self.rho = float(state["rho"])
        self.z = {k: v.to(devices[k]) for k, v in state["z"].items()}
        self.u = {k: v.to(devices[k]) for k, v in state["u"].items()}


_CLASSES: dict[str, type[Method]] = {c.name: c for c in (OneShot, ReweightedGroupLasso, Admm)}


def make_method(name: str, layers: list[TrainLayer], **options: float) -> Method:
    if name not in _CLASSES:
        raise NpasError(f"unknown pruning method {name!r}; known: {', '.join(METHODS)}")
    return _CLASSES[name](layers, **options)
