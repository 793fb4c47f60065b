"""Data converters of the read periphery: DAC/ADC quantisation with clipping, and noise management.

Pure functions on tensors, no autograd (the MVM's autograd function treats them as
straight-through; see :mod:`analogkit.periphery.mvm`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from analogkit.config.io import IOConfig


def quantize_(u: Tensor, step: float, bound: float, stochastic: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """Quantise and clip ``u`` in place: ``Q(u) = Δ·round(u/Δ [+ U(−½, ½)])``, then clip to ±bound.

    ``step`` is Δ in the units of ``u`` (0 = no quantisation). Stochastic rounding adds uniform
    dither before rounding, so E[Q(u)] = u inside the range (Gupta et al. 2015, "Deep learning with
    limited numerical precision", Eq. 2).
    """
    if step > 0:
        u.mul_(1.0 / step)
        if stochastic:
            u.add_(torch.rand(u.shape, generator=generator, device=u.device, dtype=u.dtype).sub_(0.5))
        u.round_().mul_(step)
    return u.clamp_(-bound, bound)


def noise_management_scale(x: Tensor, io: IOConfig) -> Tensor | None:
    """Per-input-vector scale α over the last dimension (shape ``x.shape[:-1] + (1,)``), or None.

    ``abs_max``: α = max_j |x_j| (capped at ``nm_thres`` if > 0); ``max``: α = max_j x_j;
    ``constant``: α = nm_thres; ``none``: no scaling (Gokmen et al. 2017, "Training deep
    convolutional neural networks with resistive cross-point devices", Sec. 3, noise management).
    Zero vectors get α = 1 so that they stay zero.
    """
    kind = io.noise_management
    if kind == "none":
        return None
    if kind == "constant":
        return torch.full(x.shape[:-1] + (1,), io.nm_thres, device=x.device, dtype=x.dtype)
    alpha = x.abs().amax(dim=-1, keepdim=True) if kind == "abs_max" else x.amax(dim=-1, keepdim=True)
    if io.nm_thres > 0:
        alpha = alpha.clamp(max=io.nm_thres)
    return torch.where(alpha > 0, alpha, torch.ones_like(alpha))
