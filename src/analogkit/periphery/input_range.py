"""Learned input range: a static, trainable DAC range per layer that replaces dynamic noise management.

Instead of dividing every input vector by its own max|x| at run time (which a chip would have to
compute digitally), the layer learns one range r: inputs are clipped to [−r, r] and the DAC maps
[−r, r] onto its full scale, so x/r goes into the crossbar and the outputs are multiplied by r.

    forward:   y = clip(x, −r, r)
    init:      during the first ``init_from_data`` training batches, r is the running mean of
               init_std_alpha·std(x_b) over the batches b seen so far (no gradient for r)
    backward:  ∂L/∂x = d·[−r < x < r]                             (straight-through inside)
               g_r = Σ min(d·[x ≥ r], 0) − Σ max(d·[x ≤ −r], 0)   (only "grow the range" terms)
               g_r ← g_r·r  if gradient_relative
               g_r ← g_r + decay·r  if the unclipped fraction mean([−r < x < r]) > input_min_percentage
               g_r ← gradient_scale·g_r                            (a learning-rate factor for r)

d = ∂L/∂y. A clipped input whose gradient asks for a larger |y| pushes r up; the decay term pulls
r down while (almost) nothing clips, so r settles where a fraction ≈ 1 − input_min_percentage
of the inputs clips. The sums run over all elements of the batch (per group if ``groups`` > 1).

Source: Rasch et al. 2023, "Hardware-aware training for large-scale and diverse deep learning
inference workloads using in-memory computing-based accelerators", Nat. Commun. 14:5282
(learned input ranges, Methods); incumbent ``InputRangeParameter`` and the range gradient of its
torch tile (spec §1.6). Defaults as the incumbent's.

Granularity: one range per layer (``groups=1``, the default, as in the paper and the incumbent),
or one per group (``groups=G``, for x of shape (..., G, in): each group of a grouped convolution
sits on its own crossbar and may have its own DAC range).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from analogkit.config.base import ConfigBase

__all__ = ["InputRangeConfig", "InputRange", "InputRangeFunction", "input_range_clip"]

# Smallest range used in forward: keeps x/r finite if an optimizer drives r to 0 or below.
RANGE_FLOOR = 1e-6


@dataclass
class InputRangeConfig(ConfigBase):
    """Learned static input (DAC) range (see module docstring for the equations).

    - ``enable``: the tile uses a learned input range (builds an :class:`InputRange`, which then
      always clips, whatever this flag says).
    - ``learn_input_range``: r is trainable (else fixed after initialisation).
    - ``init_value``: r before any data is seen (3.0).
    - ``init_from_data``: number of training batches whose statistics set r (100; 0 = none).
    - ``init_std_alpha``: r = init_std_alpha·std(x) during initialisation (3.0).
    - ``decay``: pull on r while more than ``input_min_percentage`` (0.95) of inputs are unclipped (0.001).
    - ``gradient_scale``: factor on the gradient of r (1.0).
    - ``gradient_relative``: multiply the clipping gradient by r (True).
    """

    enable: bool = False
    learn_input_range: bool = True
    init_value: float = 3.0
    init_from_data: int = 100
    init_std_alpha: float = 3.0
    decay: float = 0.001
    input_min_percentage: float = 0.95
    gradient_scale: float = 1.0
    gradient_relative: bool = True

    def validate(self) -> None:
        for name in ("enable", "learn_input_range", "gradient_relative"):
            self.check_bool(name)
        self.check_range("init_value", 0, lo_open=True, allowed="use a positive input range")
        self.check_int("init_from_data", 0, allowed="use a number of batches >= 0 (0 = keep init_value)")
        self.check_range("init_std_alpha", 0, lo_open=True, allowed="use a positive number of standard deviations")
        self.check_range("decay", 0, allowed="use a decay rate >= 0")
        self.check_range("input_min_percentage", 0, 1, allowed="use a fraction in [0, 1]")
        self.check_range("gradient_scale", 0, allowed="use a factor >= 0")


def _reduce_dims(x: Tensor, grouped: bool) -> tuple[int, ...]:
    """Dimensions summed over for one range: all, or all but the group dimension (−2)."""
    if not grouped:
        return tuple(range(x.dim()))
    return tuple(d for d in range(x.dim()) if d != x.dim() - 2)


class InputRangeFunction(torch.autograd.Function):
    """y = clip(x, −r, r) with the learned-input-range gradients (module docstring).

    ``r``: a 0-dim tensor (one range) or shape (G, 1) for x of shape (..., G, in) (one per group).
    """

    @staticmethod
    def forward(ctx, x: Tensor, r: Tensor, decay: float, min_fraction: float,  # type: ignore[override]
                gradient_scale: float, relative: bool) -> Tensor:
        r_eff = r.detach().clamp(min=RANGE_FLOOR).to(x.dtype)
        upper = x >= r_eff
        lower = x <= -r_eff
        ctx.save_for_backward(upper, lower, r_eff)
        ctx.params = (decay, min_fraction, gradient_scale, relative, r.dim() > 0, r.shape, r.dtype)
        return torch.minimum(torch.maximum(x, -r_eff), r_eff)

    @staticmethod
    def backward(ctx, d: Tensor):  # type: ignore[override]
        upper, lower, r_eff = ctx.saved_tensors
        decay, min_fraction, gradient_scale, relative, grouped, r_shape, r_dtype = ctx.params
        grad_x = grad_r = None
        inside = ~(upper | lower)
        if ctx.needs_input_grad[0]:
            grad_x = d * inside
        if ctx.needs_input_grad[1]:
            dims = _reduce_dims(d, grouped)
            zero = torch.zeros((), dtype=d.dtype, device=d.device)
            g = torch.where(upper, d.clamp(max=0), zero).sum(dim=dims) - torch.where(lower, d.clamp(min=0), zero).sum(dim=dims)
            r_flat = r_eff.reshape(g.shape)
            if relative:
                g = g * r_flat
            if decay > 0:
                fraction = inside.to(d.dtype).mean(dim=dims)
                g = g + torch.where(fraction > min_fraction, decay * r_flat, zero)
            grad_r = (gradient_scale * g).reshape(r_shape).to(r_dtype)
        return grad_x, grad_r, None, None, None, None


def input_range_clip(x: Tensor, r: Tensor, cfg: InputRangeConfig) -> Tensor:
    """Functional form: clip ``x`` to ±r with the learned-range gradients of ``cfg``."""
    return InputRangeFunction.apply(x, r, cfg.decay, cfg.input_min_percentage, cfg.gradient_scale, cfg.gradient_relative)


class InputRange(nn.Module):
    """Holds the learned input range of one layer (or one per group) and clips inputs to it.

    State (saved in ``state_dict``): parameter ``input_range`` of shape (groups,), initialised to
    ``init_value`` (trainable iff ``learn_input_range``), and buffer ``init_batches``, the number of
    training batches already used for the data initialisation. In training mode, while
    ``init_batches < init_from_data``, each forward sets r to the running mean of
    ``init_std_alpha``·std(x) (per group: over all dims but −2), under ``torch.no_grad``, and r gets
    no gradient for that batch.

    For the DAC, use ``x_clipped / r`` with ``r = module.range()`` (detached): the gradient of r is
    fully defined by :class:`InputRangeFunction`, and must not also flow through that rescaling.
    Keep ``input_range`` out of the optimizer's weight decay (``decay`` is its own pull).
    """

    input_range: nn.Parameter
    init_batches: Tensor

    def __init__(self, config: InputRangeConfig | None = None, groups: int = 1) -> None:
        super().__init__()
        config = InputRangeConfig() if config is None else config
        if not isinstance(config, InputRangeConfig):
            raise TypeError(f"InputRange: config must be an InputRangeConfig, got {type(config).__name__}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"InputRange.groups: {groups!r} is not allowed; use an integer >= 1")
        self.config = config
        self.groups = groups
        self.input_range = nn.Parameter(torch.full((groups,), float(config.init_value)),
                                        requires_grad=config.learn_input_range)
        self.register_buffer("init_batches", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return f"groups={self.groups}, learn={self.config.learn_input_range}, init_from_data={self.config.init_from_data}"

    @property
    def initializing(self) -> bool:
        """True while data initialisation batches remain (whatever the mode)."""
        return int(self.init_batches) < self.config.init_from_data

    def _shaped(self, r: Tensor, x: Tensor) -> Tensor:
        if self.groups == 1:
            return r.reshape(())
        if x.dim() < 2 or x.shape[-2] != self.groups:
            raise ValueError(
                f"InputRange: x has shape {tuple(x.shape)}; with groups={self.groups} use (..., {self.groups}, in)"
            )
        return r.reshape(self.groups, 1)

    def range(self) -> Tensor:
        """The range r in use (detached, floored at ``RANGE_FLOOR``), shape (groups,)."""
        return self.input_range.detach().clamp(min=RANGE_FLOOR)

    @torch.no_grad()
    def _init_from(self, x: Tensor) -> None:
        dims = _reduce_dims(x, self.groups > 1)
        std = x.detach().to(self.input_range.dtype).std(dim=dims) if x.numel() > 1 else torch.zeros(self.groups)
        target = (self.config.init_std_alpha * std).reshape(self.groups).to(self.input_range.device)
        n = int(self.init_batches)
        self.input_range.mul_(n / (n + 1)).add_(target / (n + 1))  # running mean over init batches
        self.init_batches.add_(1)

    def forward(self, x: Tensor) -> Tensor:
        """Return x clipped to ±r (straight-through inside; learned-range gradient for r)."""
        r = self.input_range
        if self.training and self.initializing:
            self._init_from(x)
            r = r.detach()
        return input_range_clip(x, self._shaped(r, x), self.config)
