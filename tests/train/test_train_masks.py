"""Masks stay fixed: no optimizer step (momentum, Nesterov, weight decay, Adam moments)
revives a pruned weight; filter pruning silences the removed channels completely; the rates
reached equal the rates asked within each scheme's granularity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from train_helpers import CONV1X1, CONV3X3, data, dense_model, example, threads

import npas.train as T
from npas.passes.prune import get_scheme
from npas.train.config import as_spec, assign_rules, trace_layers
from npas.train.masks import Masks

MIXED = {
    **{name: ("pattern", 6.0) for name in CONV3X3[:2]},
    CONV3X3[2]: ("filter", 2.0),
    CONV3X3[3]: ("block-punched", 5.0),
    CONV3X3[4]: ("unstructured", 4.0),
    CONV1X1[0]: ("block-punched", 3.0, {"bf": 4, "bc": 2}),
    CONV1X1[1]: ("block", 2.5),
    "fc": ("block", 2.0, {"bf": 2}),
}


def masked_model() -> tuple[torch.nn.Module, Masks]:
    threads()
    model = dense_model()
    x = example()
    layers = trace_layers(model, x)
    assign_rules(model, layers, as_spec(MIXED), x)
    masks = Masks(layers)
    masks.project()
    return model, masks


def zeros(masks: Masks) -> dict[str, np.ndarray]:
    return {lay.name: ~masks.sparsity[lay.name].mask for lay in masks.layers}


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=5e-4),
        lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=1e-2),
        lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=1e-1),
    ],
    ids=["sgd-nesterov", "sgd-dampening", "adam", "adamw"],
)
def test_masks_never_revive(make_opt) -> None:
    model, masks = masked_model()
    model.train()
    pruned = zeros(masks)
    opt = make_opt(model.parameters())
    # momentum built up *before* the masks, as a method's first phase leaves it, must not
    # push pruned weights either
    for lay in masks.layers:
        opt.state[lay.weight] = {}
    s = data()
    gen = torch.Generator().manual_seed(1)
    for step in range(12):
        idx = torch.randint(0, len(s.train), (32,), generator=gen)
        x, y = s.train[idx]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        masks.mask_grads()
        opt.step()
        masks.after_step(opt)
        for lay in masks.layers:
            w = lay.weight.detach().numpy()
            assert not w[pruned[lay.name]].any(), (step, lay.name)
            for key, v in opt.state[lay.weight].items():
                if isinstance(v, torch.Tensor) and v.shape == w.shape:
                    assert not v.numpy()[pruned[lay.name]].any(), (step, lay.name, key)
    kept_moved = [lay.name for lay in masks.layers if np.abs(lay.weight.detach().numpy()).sum() > 0]
    assert len(kept_moved) == len(masks.layers)


def test_without_the_masks_the_weights_would_revive() -> None:
    """The control for the test above: one optimizer step with weight decay and momentum does
    move pruned weights when the masks are not re-applied."""
    model, masks = masked_model()
    model.train()
    pruned = zeros(masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    x, y = data().train[:32]
    F.cross_entropy(model(x), y).backward()
    opt.step()
    revived = [
        lay.name for lay in masks.layers if lay.weight.detach().numpy()[pruned[lay.name]].any()
    ]
    assert revived


def test_filter_pruning_silences_the_removed_channels() -> None:
    model, masks = masked_model()
    lay = next(lay for lay in masks.layers if masks.sparsity[lay.name].scheme == "filter")
    removed = ~masks.sparsity[lay.name].mask.reshape(lay.weight.shape[0], -1).any(axis=1)
    assert 0 < removed.sum() < removed.size
    assert len(lay.bns) == 1
    bn = lay.bns[0]
    assert not bn.weight.detach().numpy()[removed].any()
    assert not bn.bias.detach().numpy()[removed].any()
    seen = {}
    hook = bn.register_forward_hook(lambda m, i, o: seen.setdefault("y", o.detach()))
    with torch.no_grad():
        model(data().val[:8][0])
    hook.remove()
    y = seen["y"].numpy()
    assert not y[:, removed].any() and y[:, ~removed].any()


@pytest.mark.parametrize("scheme,rate,names", [
    ("pattern", 6.0, CONV3X3), ("pattern", 3.0, CONV3X3),
    ("block-punched", 5.0, [*CONV3X3, *CONV1X1, "fc"]),
    ("block", 2.5, [*CONV1X1, "fc"]), ("filter", 2.0, CONV3X3 + CONV1X1),
    ("unstructured", 7.0, CONV3X3 + CONV1X1 + ["fc"]),
])  # fmt: skip
def test_rates_reached_equal_rates_asked(scheme: str, rate: float, names: list[str]) -> None:
    threads()
    cfg = {"default": {"scheme": "dense"},
           "layers": {"*": {"scheme": scheme, "rate": rate}}}  # fmt: skip
    if scheme == "filter":  # the classifier's outputs are the classes: keep them all
        cfg["layers"]["fc"] = {"scheme": "dense"}
    s = data()
    model, report = T.prune(dense_model(), cfg, s.train, s.val, method="oneshot", epochs=1,
                            progress=False)  # fmt: skip
    modules = dict(model.named_modules())
    rows = {r.name: r for r in report.layers}
    assert {n for n, r in rows.items() if r.scheme == scheme} == set(names)
    assert rows["stem.0"].scheme == "dense"  # the first conv is left dense
    for name in names:
        w = modules[name].weight.detach().numpy()
        kept = int(np.count_nonzero(w))
        assert kept == rows[name].kept, name  # the report counts what the weights hold
        ids = get_scheme(scheme).group_ids(w.shape)
        group = int(np.bincount(ids.reshape(-1)).max())
        if scheme == "pattern":
            group = 4  # a kernel keeps 4 weights; connectivity rounds to whole kernels
        # the rate asked, up to half a group, or a whole one where blocks have remainders
        assert abs(kept - w.size / rate) <= group, (name, kept, w.size / rate, group)
        assert rows[name].rate == pytest.approx(w.size / kept)
