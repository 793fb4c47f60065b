"""Weight remapping for hardware-aware training: rescale the weight so it fills the conductance range,
moving the factor into digital scales that multiply the outputs.

    w_remapped, scales = remap_weights(w, cfg)        # w = w_remapped · scales

Types (s: the digital scale, per layer or per output column; r = ``remapped_wmax``)::

    none                    s = 1
    layerwise_symmetric     s = max|W| / r                (one scale for the whole tensor)
    channelwise_symmetric   s_i = max_j |W_ij| / r        (one scale per output column i,
                                                           the row of W; per group for (G, out, in))
    w_remapped = W / s, so max|w_remapped| = r (per layer / per column).

Layers or columns that are all zero keep s = 1 (and stay zero). The scales carry no gradient
(computed from the detached weight), as the tile's digital mapping scales. Source: incumbent
``WeightRemapParameter`` (spec §1.7) and column-wise weight scaling (spec §1.5); channel-wise
remapping is part of the HWA recipe of Rasch et al. 2023 (Nat. Commun. 14:5282).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.config.base import ConfigBase

__all__ = ["REMAP_TYPES", "WeightRemap", "remap_scales", "remap_weights"]

REMAP_TYPES = ("none", "layerwise_symmetric", "channelwise_symmetric")


@dataclass
class WeightRemap(ConfigBase):
    """How the weight is rescaled into [−remapped_wmax, remapped_wmax] (see module docstring).

    - ``type``: ``none``, ``layerwise_symmetric`` or ``channelwise_symmetric``.
    - ``remapped_wmax``: the largest weight magnitude after remapping (1.0).
    """

    type: str = "none"
    remapped_wmax: float = 1.0

    def validate(self) -> None:
        self.check_choice("type", REMAP_TYPES)
        self.check_range("remapped_wmax", 0, lo_open=True, allowed="use a positive weight magnitude")


def remap_scales(w: Tensor, cfg: WeightRemap) -> Tensor:
    """The digital scales s (no gradient): shape (1,)*w.dim() per layer, (..., out, 1) per column."""
    if not isinstance(cfg, WeightRemap):
        raise TypeError(f"remap_weights: cfg must be a WeightRemap, got {type(cfg).__name__}")
    if not torch.is_floating_point(w) or w.dim() < 2:
        raise ValueError(
            f"remap_weights: w must be a floating-point tensor of shape (out, in) or (G, out, in); "
            f"got dtype {w.dtype}, shape {tuple(w.shape)}"
        )
    with torch.no_grad():
        wa = w.detach().abs()
        if cfg.type == "none":
            return torch.ones((1,) * w.dim(), dtype=w.dtype, device=w.device)
        if cfg.type == "layerwise_symmetric":
            m = wa.amax().reshape((1,) * w.dim())
        else:
            m = wa.amax(dim=-1, keepdim=True)
        return torch.where(m > 0, m / cfg.remapped_wmax, torch.ones_like(m))


def remap_weights(w: Tensor, cfg: WeightRemap) -> tuple[Tensor, Tensor]:
    """Return (w_remapped, scales) with w = w_remapped·scales and max|w_remapped| = remapped_wmax.

    ``w``: (out, in) or (G, out, in). ``w_remapped`` = w/scales (differentiable in ``w``, scales
    constant), clamped to ±remapped_wmax so that float rounding never exceeds the range (the clamp
    moves values by at most an ulp and is invisible to autograd).
    """
    scales = remap_scales(w, cfg)
    if cfg.type == "none":
        return w, scales
    r = cfg.remapped_wmax
    w_r = w / scales
    # clamp away float rounding above r (at most an ulp); the gradient stays 1/scales everywhere
    return w_r.detach().clamp(-r, r) + (w_r - w_r.detach()), scales
