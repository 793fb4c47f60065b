"""Reference back-end of the pulsed update in plain PyTorch: any device, CPU or CUDA.

Per chunk of samples the bit trains are 0/1 tensors and the coincidence counts one batched
matmul over the slots (:func:`analogkit.update.trains.coincidence_counts`); then each sample's
signed counts go, in sample order, through ``device.pulse_n`` (which applies |n| pulses per
element one after another, or the device's n-pulse closed form). Slow, simple, and the semantics
every faster back-end is tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from analogkit.devices.base import Device, DeviceState
from analogkit.update.config import UpdateConfig
from analogkit.update.trains import coincidence_counts, plan_trains

__all__ = ["reference_update_", "pulse_n_method", "CHUNK_ELEMENTS"]

#: Samples are counted in chunks of at most this many (sample, out, in) counts (memory bound).
CHUNK_ELEMENTS = 1 << 23


def has_closed_form(device: Device) -> bool:
    """Whether the device class implements an n-pulse closed form (``pulse_n(method="closed_form")``)."""
    own = type(device)._pulse_n_closed
    return own is not Device._pulse_n_closed or type(device).pulse_n is not Device.pulse_n


def pulse_n_method(device: Device, cfg: UpdateConfig) -> str:
    """``pulse_n`` method for a sample's pulses: ``"auto"`` (exact) or ``"closed_form"`` where it exists."""
    if cfg.pulse_application == "closed_form" and has_closed_form(device):
        return "closed_form"
    return "auto"


def reference_update_(
    device: Device, state: DeviceState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
    generator: torch.Generator, dw_min: float,
) -> tuple[Tensor, int, int]:
    """Stochastic/implicit/mean-count pulsed update in place; returns (bl per sample, pulses, max count)."""
    plan = plan_trains(x, d, lr, cfg, dw_min)
    method = pulse_n_method(device, cfg)
    m, n_out, n_in = x.shape[0], d.shape[1], x.shape[1]
    chunk = max(1, CHUNK_ELEMENTS // max(1, n_out * n_in))
    active = plan.active.tolist()
    pulses = 0
    max_count = 0
    for start in range(0, m, chunk):
        stop = min(m, start + chunk)
        if not any(active[start:stop]):
            continue
        counts = coincidence_counts(x, d, plan, cfg, generator, start, stop)
        mags = counts.abs()
        per_sample = mags.sum(dim=(1, 2)).tolist()
        pulses += int(sum(per_sample))
        max_count = max(max_count, int(mags.max()))
        for k in range(stop - start):
            if per_sample[k] > 0:
                device.pulse_n(state, counts[k], generator, method=method)
    return plan.bl, pulses, max_count
