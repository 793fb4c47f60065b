"""Device response data: pulse-response traces and step-size curves (plots live in the CLI/analysis).

``pulse_response`` applies n up then n down pulses, repeated, to a few independent devices and
records the weight after every pulse. ``step_curve`` gives the expected step per pulse and its
cycle-to-cycle std as a function of the weight for the nominal device (no d2d variation), with the
response-function view of Wu et al. 2025 (NeurIPS, arXiv:2502.06309; P1): one pulse of sign ±
changes w by ±dw_min·q±(w), symmetric part F = (q₋ + q₊)/2, asymmetric part G = (q₋ − q₊)/2,
symmetry point where G = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.devices.base import Device

__all__ = ["PulseResponse", "StepCurve", "pulse_response", "step_curve"]


@dataclass
class PulseResponse:
    """Traces of the hidden weight under a fixed up/down pulse pattern.

    ``pulses`` (steps,) is the direction of each pulse (+1/−1); ``w`` and ``w_apparent`` (traces,
    steps) the hidden and read (write-noise) weight after each pulse; ``w0`` (traces,) the start
    (each device's reset value); ``w_max``/``w_min`` (traces,) each device's bounds.
    """

    pulses: Tensor
    w: Tensor
    w_apparent: Tensor
    w0: Tensor
    w_max: Tensor
    w_min: Tensor


@dataclass
class StepCurve:
    """Expected step per pulse vs weight for the nominal device, and P1's response functions.

    ``mean_up`` > 0 and ``mean_down`` < 0 are signed expected changes of one pulse, ``std_up``/
    ``std_down`` their cycle-to-cycle std; ``q_up = mean_up/dw_min``, ``q_down = −mean_down/dw_min``,
    ``F = (q_down + q_up)/2``, ``G = (q_down − q_up)/2``; ``symmetry_point`` a 0-d tensor (NaN if none).
    """

    w: Tensor
    mean_up: Tensor
    mean_down: Tensor
    std_up: Tensor
    std_down: Tensor
    q_up: Tensor
    q_down: Tensor
    F: Tensor
    G: Tensor
    symmetry_point: Tensor

    @property
    def std(self) -> Tensor:
        """Cycle-to-cycle std of the step, averaged over both directions (one curve for a plot)."""
        return 0.5 * (self.std_up + self.std_down)


def pulse_response(
    device: Device,
    n_pulses: int = 100,
    n_cycles: int = 2,
    n_traces: int = 5,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> PulseResponse:
    """Weights of ``n_traces`` independent devices under (n up, n down) × ``n_cycles`` pulses.

    Each trace is one element drawn with d2d variation, starting at its reset value; the result has
    ``2·n_pulses·n_cycles`` steps.
    """
    for name, value, lo in (("n_pulses", n_pulses, 1), ("n_cycles", n_cycles, 1), ("n_traces", n_traces, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"pulse_response: {name} {value!r} is not allowed; use an integer >= {lo}")
    gen = torch.Generator().manual_seed(seed)
    state = device.build_state((n_traces,), gen, dtype)
    w0 = state.w.clone()
    one_cycle = torch.cat([torch.ones(n_pulses, dtype=torch.int8), -torch.ones(n_pulses, dtype=torch.int8)])
    pulses = one_cycle.repeat(n_cycles)
    w = torch.empty(n_traces, pulses.numel(), dtype=dtype)
    w_app = torch.empty_like(w)
    for k, d in enumerate(pulses.tolist()):
        device.pulse(state, torch.full((n_traces,), d, dtype=torch.int8), gen)
        w[:, k] = state.w
        w_app[:, k] = device.apparent_weight(state, gen)
    return PulseResponse(
        pulses=pulses, w=w, w_apparent=w_app, w0=w0, w_max=state.w_max.clone(), w_min=state.w_min.clone()
    )


def step_curve(device: Device, n_points: int = 101, seed: int = 0, dtype: torch.dtype = torch.float64) -> StepCurve:
    """Expected step and c2c std of one pulse on a grid of ``n_points`` weights spanning the nominal range.

    Uses ``device.nominal()`` (no device-to-device variation), so the curve is the model's mean rule;
    for reference devices the grid is in read-weight units (bounds minus reference).
    """
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"step_curve: n_points {n_points!r} is not allowed; use an integer >= 2")
    nominal = device.nominal()
    gen = torch.Generator().manual_seed(seed)
    state = nominal.build_state((n_points,), gen, dtype)
    lo, hi = state.w_min[0].item(), state.w_max[0].item()
    if not (torch.isfinite(torch.tensor([lo, hi])).all()):  # unbounded (ideal) device: the config's range
        lo, hi = float(getattr(nominal, "w_min", -1.0)), float(getattr(nominal, "w_max", 1.0))
    grid = torch.linspace(lo, hi, n_points, dtype=dtype)
    state.w.copy_(grid)
    mean_up, std_up = nominal.step_stats(state, +1)
    mean_down, std_down = nominal.step_stats(state, -1)
    q_up, q_down = mean_up / nominal.dw_min, -mean_down / nominal.dw_min
    sp = nominal.symmetry_point(state)[0]
    return StepCurve(
        w=grid, mean_up=mean_up, mean_down=mean_down, std_up=std_up, std_down=std_down,
        q_up=q_up, q_down=q_down, F=0.5 * (q_down + q_up), G=0.5 * (q_down - q_up), symmetry_point=sp,
    )
