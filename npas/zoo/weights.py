"""Deterministic, well-scaled random weights for the zoo models.

Random weights alone make activations explode or vanish with depth, and default BatchNorm
statistics (mean 0, var 1, scale 1, shift 0) make BN folding a no-op that hides bugs. So:
1. conv/linear weights are drawn fan-in-normal from a seeded generator; every BN gets random
   scale, shift and perturbations of its statistics;
2. one calibration forward pass on a seeded random batch rescales each conv/linear so its output
   has unit RMS, and sets each BN's running mean/var from the statistics it actually sees,
   perturbed, so activations stay O(1) through any depth while BN stays non-trivial.
Measured statistics are rounded to 3 significant digits so that last-bit differences between
thread counts or CPUs do not change the weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
# Calibrate on about as many pixels as 8 images of 224x224, so that small exports still give the
# deepest BN layers (2x2 maps at 64x64) enough samples; too few makes their statistics noisy,
# and the noise compounds into outputs whose scale swings wildly from image to image.
_CALIBRATION_PIXELS = 8 * 224 * 224
_CALIBRATION_BATCH = (8, 256)


def _round3(t: torch.Tensor) -> torch.Tensor:
    """Round to 3 significant digits (float64 in, float64 out)."""
    scale = torch.pow(10.0, torch.floor(torch.log10(t.abs().clamp_min(1e-30))) - 2)
    return torch.round(t / scale) * scale


@torch.no_grad()
def initialise(model: nn.Module, input_size: tuple[int, int], seed: int) -> nn.Module:
    """Give `model` deterministic weights for `seed` and return it in eval mode."""
    g = torch.Generator().manual_seed(seed)
    bn_noise: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            w = m.weight
            fan_in = w[0].numel()  # only roughly right for ConvTranspose; calibration fixes it
            w.copy_(torch.randn(w.shape, generator=g) * math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.copy_(0.5 + torch.rand(c, generator=g))
            m.bias.copy_(torch.randn(c, generator=g) * 0.25)
            # Mean offset in units of the measured std; variance factor in [0.5, 2].
            bn_noise[m] = (
                torch.randn(c, generator=g, dtype=torch.float64) * 0.3,
                torch.exp2(torch.rand(c, generator=g, dtype=torch.float64) * 2 - 1),
            )
    model.eval()

    def rescale(m: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
        assert isinstance(m, _WEIGHTED)
        rms = _round3(out.double().pow(2).mean().sqrt().clamp_min(1e-12)).item()
        m.weight.div_(rms)
        if m.bias is not None:
            m.bias.div_(rms)
        return out / rms

    def set_stats(m: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        assert isinstance(m, nn.BatchNorm2d)
        assert m.running_mean is not None and m.running_var is not None
        x = inp[0].double()
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        # Dead (all-zero after ReLU) channels would otherwise divide noise by sqrt(eps).
        var = var.clamp_min(0.1 * var.mean().item() + 1e-6)
        offset, factor = bn_noise[m]
        m.running_mean.copy_(_round3(mean + offset * var.sqrt()))
        m.running_var.copy_(_round3(var * factor))

    hooks = []
    for m in model.modules():
        if isinstance(m, _WEIGHTED):
            hooks.append(m.register_forward_hook(rescale))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(set_stats))
    lo, hi = _CALIBRATION_BATCH
    batch = min(hi, max(lo, round(_CALIBRATION_PIXELS / (input_size[0] * input_size[1]))))
    try:
        model(torch.randn((batch, 3, *input_size), generator=g))
    finally:
        for h in hooks:
            h.remove()
    return model
