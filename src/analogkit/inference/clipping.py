"""Weight clipping for hardware-aware training: keep the weight distribution compact, so that the
few largest weights do not set the conductance scale and squeeze all others towards zero.

Applied in place to the trained parameter after each optimizer step (``torch.no_grad``)::

    clip_weights_(layer.weight, WeightClip(type="layer_gaussian", sigma=2.5))

Types (bound b; every weight is clipped to [−b, b]; statistics over the whole tensor, i.e. per
layer, for (out, in) and (G, out, in) alike):

    none                 no clipping
    fixed_value          b = fixed_value
    layer_gaussian       b = sigma·std(W)           (std over all elements, unbiased)
    average_channel_max  b = mean_i max_j |W_ij|   (mean over output channels i of each row's
                                                     max magnitude over inputs j)

Source: incumbent ``WeightClipParameter`` (spec §1.7); clipping at 2–2.5σ is part of the HWA
recipe of Rasch et al. 2023 (Nat. Commun. 14:5282) and Le Gallo et al. 2023 (APL Mach. Learn.
1:041102). ``fixed_value`` is idempotent; the two data-dependent bounds shrink when applied again
(clipping lowers std(W) and the channel maxima), as they do when applied after every batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase

__all__ = ["CLIP_TYPES", "WeightClip", "clip_bound", "clip_weights_"]

CLIP_TYPES = ("none", "fixed_value", "layer_gaussian", "average_channel_max")


@dataclass
class WeightClip(ConfigBase):
    """How the weight is clipped after each update (see module docstring for the bounds).

    - ``type``: ``none``, ``fixed_value``, ``layer_gaussian`` or ``average_channel_max``.
    - ``fixed_value``: the bound of ``fixed_value`` (> 0; the incumbent's default −1 means "unset").
    - ``sigma``: bound of ``layer_gaussian`` in standard deviations of the layer's weights (2.5).
    """

    type: str = "none"
    fixed_value: float = 1.0
    sigma: float = 2.5

    def validate(self) -> None:
        self.check_choice("type", CLIP_TYPES)
        self.check_range("fixed_value", 0, lo_open=True, allowed="use a positive bound (weights are clipped to ±fixed_value)")
        self.check_range("sigma", 0, lo_open=True, allowed="use a positive number of standard deviations")


def clip_bound(w: Tensor, cfg: WeightClip) -> Tensor | None:
    """The clipping bound b for ``w`` under ``cfg`` (0-dim tensor), or None for ``type="none"``."""
    w = w.detach()
    if cfg.type == "none":
        return None
    if cfg.type == "fixed_value":
        return torch.tensor(cfg.fixed_value, dtype=w.dtype, device=w.device)
    if w.dim() < 2 and cfg.type == "average_channel_max":
        raise ValueError(f"clip_weights_: w has shape {tuple(w.shape)}; use (out, in) or (G, out, in)")
    if cfg.type == "layer_gaussian":
        return cfg.sigma * w.std() if w.numel() > 1 else w.abs().amax()
    return w.abs().amax(dim=-1).mean()  # average_channel_max


def clip_weights_(w: Tensor, cfg: WeightClip) -> None:
    """Clip ``w`` in place to ±b (b from :func:`clip_bound`), without recording a gradient.

    Works on parameters that require grad (the update is done under ``torch.no_grad()``).
    """
    if not isinstance(cfg, WeightClip):
        raise TypeError(f"clip_weights_: cfg must be a WeightClip, got {type(cfg).__name__}")
    if not torch.is_floating_point(w):
        raise TypeError(f"clip_weights_: w must be a floating-point tensor, got dtype {w.dtype}")
    with torch.no_grad():
        bound = clip_bound(w, cfg)
        if bound is None:
            return
        w.clamp_(-bound, bound)
