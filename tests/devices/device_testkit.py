"""Shared test configurations and independent reference formulas for the device tests.

``RULE_CASES`` maps a case name to a device *without* device-to-device variation and a function
giving the expected mean step and c2c std of one pulse at weight ``w`` — written directly from the
update equations of spec §1.8 (scalar config values only; no call into the implementation).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

import analogkit.devices as D

NO_D2D = dict(dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)

Rule = Callable[[Tensor, bool], tuple[Tensor, Tensor]]


def _constant(dev: D.ConstantStepDevice) -> Rule:
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        m = torch.full_like(w, up_step if up else -down_step)
        return m, dev.dw_min_std * m.abs()

    return rule


def _linear(dev: D.LinearStepDevice) -> Rule:
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        if up:
            m = up_step * (1 - dev.gamma_up * w / dev.w_max)
            base = up_step
        else:
            m = -down_step * (1 - dev.gamma_down * w / dev.w_min)
            base = down_step
        std = dev.dw_min_std * (m.abs() if dev.mult_noise else torch.full_like(w, base))
        return m, std

    return rule


def _soft_bounds(dev: D.SoftBoundsDevice) -> Rule:
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        m = up_step * (1 - w / dev.w_max) if up else -down_step * (1 - w / dev.w_min)
        std = dev.dw_min_std * (m.abs() if dev.mult_noise else torch.full_like(w, up_step if up else down_step))
        return m, std

    return rule


def _soft_bounds_reference(dev: D.SoftBoundsReferenceDevice) -> Rule:
    r = dev.reference_mean  # reference_std = 0, no symmetry point subtracted in the rule cases
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        g = w + r
        m = up_step * (1 - g / dev.w_max) if up else -down_step * (1 - g / dev.w_min)
        std = dev.dw_min_std * (m.abs() if dev.mult_noise else torch.full_like(w, up_step if up else down_step))
        return m, std

    return rule


def _exp_step(dev: D.ExpStepDevice) -> Rule:
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        z = 2 * dev.a * w / (dev.w_max - dev.w_min) + dev.b
        if up:
            m = torch.clamp(1 - dev.A_up * torch.exp(dev.gamma_up * z), min=0) * up_step
        else:
            m = -torch.clamp(1 - dev.A_down * torch.exp(-dev.gamma_down * z), min=0) * down_step
        if dev.dw_min_std_add or dev.dw_min_std_slope:
            std = dev.dw_min_std * (m.abs() + dev.dw_min_std_add + dev.dw_min_std_slope * w.abs())
        else:
            std = dev.dw_min_std * m.abs()
        return m, std

    return rule


def _pow(dev: D.PowStepDevice | D.PowStepReferenceDevice, ref: float) -> Rule:
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))
    g_up = dev.pow_gamma * (1 + min(dev.pow_up_down, 0))
    g_down = dev.pow_gamma * (1 - max(dev.pow_up_down, 0))
    span = dev.w_max - dev.w_min

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        g = w + ref
        if up:
            m = up_step * ((dev.w_max - g) / span) ** g_up
        else:
            m = -down_step * ((g - dev.w_min) / span) ** g_down
        return m, dev.dw_min_std * m.abs()

    return rule


def _piecewise(dev: D.PiecewiseStepDevice) -> Rule:
    up_step = dev.dw_min * (1 + min(dev.up_down, 0))
    down_step = dev.dw_min * (1 - max(dev.up_down, 0))

    def interp(nodes: list[float], w: Tensor) -> Tensor:
        # nodes at w_min + k·(w_max − w_min)/(len − 1); plain linear interpolation
        xs = [dev.w_min + k * (dev.w_max - dev.w_min) / (len(nodes) - 1) for k in range(len(nodes))]
        out = torch.empty_like(w)
        for i, wi in enumerate(w.tolist()):
            for k in range(len(nodes) - 1):
                if xs[k] <= wi <= xs[k + 1]:
                    t = (wi - xs[k]) / (xs[k + 1] - xs[k])
                    out[i] = (1 - t) * nodes[k] + t * nodes[k + 1]
                    break
        return out

    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        m = interp(dev.piecewise_up, w) * up_step if up else -interp(dev.piecewise_down, w) * down_step
        return m, dev.dw_min_std * m.abs()

    return rule


def _ideal(dev: D.IdealDevice) -> Rule:
    def rule(w: Tensor, up: bool) -> tuple[Tensor, Tensor]:
        return torch.full_like(w, dev.dw_min if up else -dev.dw_min), torch.zeros_like(w)

    return rule


def rule_cases() -> dict[str, tuple[D.Device, Rule]]:
    """Devices without d2d variation, each with its reference rule (mean, std of one pulse)."""
    cases: dict[str, tuple[D.Device, Rule]] = {}

    def add(name: str, dev: D.Device, rule_fn: Callable[..., Rule], *args: float) -> None:
        cases[name] = (dev, rule_fn(dev, *args))

    common = dict(NO_D2D, dw_min=0.01, dw_min_std=0.3, w_max=1.0, w_min=-1.0, reset_std=0.0)
    add("ideal", D.IdealDevice(dw_min=0.01, reset_std=0.0), _ideal)
    add("constant_step", D.ConstantStepDevice(**common), _constant)
    add("constant_step_up_down", D.ConstantStepDevice(**{**common, "up_down": 0.25}), _constant)
    add("linear_step_mult", D.LinearStepDevice(**common, gamma_up=0.3, gamma_down=0.5, gamma_up_dtod=0.0, gamma_down_dtod=0.0), _linear)
    add(
        "linear_step_add",
        D.LinearStepDevice(**{**common, "up_down": -0.2}, gamma_up=0.4, gamma_down=0.2, gamma_up_dtod=0.0,
                           gamma_down_dtod=0.0, mult_noise=False),
        _linear,
    )
    add("soft_bounds", D.SoftBoundsDevice(**{**common, "up_down": 0.2}), _soft_bounds)
    add("soft_bounds_add", D.SoftBoundsDevice(**common, mult_noise=False), _soft_bounds)
    pmax = D.SoftBoundsPmaxDevice(p_max=100, alpha=0.01, range_min=-0.8, range_max=1.0, dw_min_std=0.3,
                                  dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0, reset_std=0.0)
    add("soft_bounds_pmax", pmax, _soft_bounds)
    add("soft_bounds_reference", D.SoftBoundsReferenceDevice(**common, reference_mean=0.1), _soft_bounds_reference)
    add("soft_bounds_reference_mult", D.SoftBoundsReferenceDevice(**{**common, "up_down": 0.1}, reference_mean=-0.2, mult_noise=True),
        _soft_bounds_reference)
    add("exp_step", D.ExpStepDevice(**{**common, "w_max": 0.6, "w_min": -0.6}), _exp_step)
    add(
        "exp_step_pcm_noise",
        D.ExpStepDevice(**{**common, "dw_min": 0.0003, "w_max": 2.0, "w_min": 0.0, "dw_min_std": 0.6}, a=-1.0, b=0.0,
                        gamma_up=2.5, gamma_down=2.5, A_up=-27.235, A_down=-2.235, dw_min_std_add=0.00126,
                        dw_min_std_slope=0.00324),
        _exp_step,
    )
    add("pow_step", D.PowStepDevice(**common, pow_gamma=2.0, pow_gamma_dtod=0.0, pow_up_down=0.25), _pow, 0.0)
    add(
        "pow_step_reference",
        D.PowStepReferenceDevice(**common, pow_gamma=1.5, pow_gamma_dtod=0.0, reference_mean=0.1), _pow, 0.1,
    )
    add("piecewise_step", D.PiecewiseStepDevice(**common, piecewise_up=[0.5, 1.0, 2.0], piecewise_down=[2.0, 1.5, 1.0]), _piecewise)
    return cases


def visible_range(dev: D.Device) -> tuple[float, float]:
    """[w_min, w_max] of the read weight for a device without d2d variation."""
    gen = torch.Generator().manual_seed(0)
    st = dev.build_state((1,), gen)
    lo, hi = st.w_min.item(), st.w_max.item()
    if math.isinf(lo) or math.isinf(hi):
        return -1.0, 1.0
    return lo, hi


def small_bounded_config(kind: str) -> D.Device:
    """A device of ``kind`` with big steps (bounds are reached quickly) and every non-ideality on."""
    cls = D.DEVICES.get(kind)
    slow = dict(lifetime=5.0, lifetime_dtod=0.2, diffusion=0.01, diffusion_dtod=0.3, reset_std=0.05, reset_dtod=0.05)
    if kind == "ideal":
        return cls(dw_min=0.05, bounded=True, **slow)
    kwargs: dict = dict(slow, corrupt_devices_prob=0.2, dw_min_std=0.5)
    if kind == "soft_bounds_pmax":
        kwargs.update(p_max=40, alpha=0.05)
    else:
        kwargs.update(dw_min=0.05)
    if "write_noise_std" in cls.__dataclass_fields__:
        kwargs["write_noise_std"] = 1.0
    if kind in ("soft_bounds_reference", "pow_step_reference"):
        kwargs.update(subtract_symmetry_point=True, reference_std=0.05)
    if kind == "exp_step":
        kwargs.update(dw_min_std_add=0.01, dw_min_std_slope=0.02)
    if kind == "piecewise_step":
        kwargs.update(piecewise_up=[1.0, 0.5, 0.0], piecewise_down=[0.0, 2.0, 1.0])
    return cls(**kwargs)
