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

__all__ = ["CHUNK_ELEMENTS", "SPARSE_FRACTION", "has_closed_form", "pulse_n_method", "reference_update_"]

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
    if not all(t.is_contiguous() for t in state.tensors().values()):
        # the devices' pulse_n needs contiguous tensors: work on a copy, then write it back
        work = state.clone()
        out = reference_update_(device, work, x, d, lr, cfg, generator, dw_min)
        for name, t in state.tensors().items():
            t.copy_(getattr(work, name))
        return out
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
                _pulse_sample(device, state, counts[k], generator, method)
    return plan.bl, pulses, max_count


#: A sample whose non-zero counts are fewer than this fraction of the elements is applied to a
#: gathered 1-D copy of those elements only (whole-array operations cost more there, measured).
SPARSE_FRACTION = 0.25


def _pulse_sample(device: Device, state: DeviceState, counts: Tensor, generator: torch.Generator, method: str) -> None:
    """``device.pulse_n`` for one sample's counts; few non-zero counts: on those elements only."""
    flat = counts.reshape(-1)
    idx = torch.nonzero(flat).squeeze(1)
    if idx.numel() >= SPARSE_FRACTION * flat.numel():
        device.pulse_n(state, counts, generator, method=method)
        return
    sub = state.gather(idx)
    device.pulse_n(sub, flat.index_select(0, idx), generator, method=method)
    state.w.view(-1).index_copy_(0, idx, sub.w)  # pulse_n changes w and the write noise only
    if "write_noise" in state.extra:
        state.extra["write_noise"].view(-1).index_copy_(0, idx, sub.extra["write_noise"])
