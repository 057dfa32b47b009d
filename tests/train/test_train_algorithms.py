"""The methods do what they claim, measured on the weights: RGL shrinks the groups the
projection then removes far more than the ones it keeps, with penalty weights re-estimated
from the weights every epoch; ADMM pulls the weights onto their projection; every method ends
with the projection's masks (the numpy definitions) and trains the digits network to a useful
accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import CONV1X1, CONV3X3, data, dense_model, example, threads

import npas.train as T
from npas.errors import NpasError
from npas.passes.prune import get_scheme, project
from npas.train.algorithms import make_method
from npas.train.config import as_spec, assign_rules, trace_layers

PATTERN = {name: ("pattern", 6.0) for name in CONV3X3}
BLOCKS = {name: ("block-punched", 4.0) for name in CONV3X3 + CONV1X1}


def weights(model: torch.nn.Module, names: list[str]) -> dict[str, np.ndarray]:
    mods = dict(model.named_modules())
    return {n: mods[n].weight.detach().numpy().copy() for n in names}


def distance_to_projection(ws: dict[str, np.ndarray], scheme: str, rate: float) -> float:
    """Share of the weights' energy the projection would remove."""
    lost = total = 0.0
    for w in ws.values():
        mask = project(w, scheme, rate).mask
        lost += float((w[~mask] ** 2).sum())
        total += float((w**2).sum())
    return lost / total


def regularise(config: dict, method: str, epochs: int, **opts: float) -> torch.nn.Module:
    """The weights after `epochs` regularised epochs, just before the projection."""
    threads()
    s = data()
    model = dense_model()
    seen = {}

    from npas.train import masks as masks_mod

    real = masks_mod.Masks.project

    def spy(self: masks_mod.Masks) -> None:
        seen["w"] = {lay.name: lay.weight.detach().numpy().copy() for lay in self.layers}
        return real(self)

    masks_mod.Masks.project = spy
    try:
        T.prune(model, config, s.train, s.val, method=method, epochs=epochs, finetune_epochs=0,
                progress=False, **opts)  # fmt: skip
    finally:
        masks_mod.Masks.project = real
    return seen["w"]


@pytest.mark.parametrize(
    "config,scheme,rate,lam",
    [(PATTERN, "pattern", 6.0, 0.02), (BLOCKS, "block-punched", 4.0, 0.05)],
)
def test_rgl_pushes_the_weights_into_the_structure(config, scheme, rate, lam) -> None:
    before = weights(dense_model(), list(config))
    after = regularise(config, "rgl", 3, lam=lam)
    d0 = distance_to_projection(before, scheme, rate)
    d1 = distance_to_projection(after, scheme, rate)
    assert d1 < 0.5 * d0, (d0, d1)


def test_rgl_reweights_from_the_current_weights() -> None:
    threads()
    model = dense_model()
    x = example()
    layers = trace_layers(model, x)
    assign_rules(model, layers, as_spec(BLOCKS), x)
    rgl = make_method("rgl", layers, lam=1e-3, eps=0.05)
    rgl.epoch_start(0)
    lay = rgl.layers[0]
    w = lay.weight.detach().numpy()
    ids = get_scheme("block-punched").group_ids(w.shape).reshape(-1)
    norms = np.sqrt(np.bincount(ids, weights=(w.reshape(-1) ** 2).astype(np.float64)))
    want = norms.mean() / (norms + 0.05 * norms.mean())
    np.testing.assert_allclose(rgl.alphas[lay.name][0].numpy(), want, rtol=1e-5)
    # the penalty is lam * sum sqrt(|g|) alpha_g ||W_g|| over every layer's groups
    total = 0.0
    for layer in rgl.layers:
        wl = layer.weight.detach().numpy()
        gl = get_scheme("block-punched").group_ids(wl.shape).reshape(-1)
        nl = np.sqrt(np.bincount(gl, weights=(wl.reshape(-1) ** 2).astype(np.float64)))
        size = np.sqrt(np.bincount(gl))  # groups weigh by the root of their size
        total += float((rgl.alphas[layer.name][0].numpy() * size * nl).sum())
    assert float(rgl.penalty().detach()) == pytest.approx(1e-3 * total, rel=1e-5)
    # halve one group: its penalty weight at the next epoch grows
    with torch.no_grad():
        flat = lay.weight.view(-1)
        flat[torch.from_numpy(ids == 0)] *= 0.5
    old = rgl.alphas[lay.name][0][0].item()
    rgl.epoch_start(1)
    assert rgl.alphas[lay.name][0][0].item() > 1.5 * old


def test_admm_pulls_the_weights_onto_their_projection() -> None:
    before = weights(dense_model(), list(PATTERN))
    after = regularise(PATTERN, "admm", 4)  # the default rho schedule
    d0 = distance_to_projection(before, "pattern", 6.0)
    d1 = distance_to_projection(after, "pattern", 6.0)
    assert d1 < 0.5 * d0, (d0, d1)


def test_admm_dual_update_is_scaled_admm() -> None:
    threads()
    model = dense_model()
    x = example()
    layers = trace_layers(model, x)
    assign_rules(model, layers, as_spec(PATTERN), x)
    admm = make_method("admm", layers, rho=0.1, rho_growth=3.0, rho_max=0.5)
    admm.epoch_start(0)
    lay = admm.layers[0]
    w = lay.weight.detach().numpy().copy()
    np.testing.assert_array_equal(admm.z[lay.name].numpy(), w * project(w, "pattern", 6.0).mask)
    with torch.no_grad():
        lay.weight.mul_(1.1)
    admm.epoch_end(0)
    w1 = lay.weight.detach().numpy()
    z1 = w1 * project(w1, "pattern", 6.0).mask  # U was 0: Z = proj(W + 0)
    np.testing.assert_allclose(admm.z[lay.name].numpy(), z1, rtol=1e-6)
    np.testing.assert_allclose(admm.u[lay.name].numpy(), w1 - z1, rtol=1e-6, atol=1e-7)
    assert admm.rho == pytest.approx(0.3)
    admm.epoch_end(1)
    assert admm.rho == pytest.approx(0.5)  # capped at rho_max


@pytest.mark.parametrize("method", ["oneshot", "rgl", "admm"])
def test_every_method_ends_pruned_and_accurate(method: str) -> None:
    threads()
    s = data()
    model, report = T.prune(dense_model(), PATTERN, s.train, s.val, method=method, epochs=4,
                            progress=False)  # fmt: skip
    mods = dict(model.named_modules())
    for name in PATTERN:
        w = mods[name].weight.detach().numpy()
        sp = get_scheme("pattern").detect(w)
        assert sp is not None and sp.scheme == "pattern", name
        assert w.size / np.count_nonzero(w) == pytest.approx(6.0, rel=0.05)
    # the narrow network (98% dense) pruned at 6x in 4 epochs must still classify digits
    assert report.accuracy_before > 0.95
    assert report.accuracy_after > 0.9, report.summary()
    assert [h.phase for h in report.history] == (
        ["masked"] * 4 if method == "oneshot" else ["regularise"] * 2 + ["masked"] * 2
    )


def test_bad_requests_are_clear_errors() -> None:
    s = data()
    with pytest.raises(NpasError, match="unknown pruning method 'lasso'"):
        T.prune(dense_model(), PATTERN, s.train, s.val, method="lasso")
    with pytest.raises(NpasError, match="unknown option"):
        T.prune(dense_model(), PATTERN, s.train, s.val, method="rgl", epochs=1, rho=1.0,
                progress=False)  # fmt: skip
    with pytest.raises(NpasError, match="prunes no layer"):
        T.prune(dense_model(), {"stem.0": ("dense",)}, s.train, s.val, epochs=1, progress=False)
