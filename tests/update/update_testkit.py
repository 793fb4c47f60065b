"""Shared helpers of the pulsed-update tests: devices without d2d variation, repeated updates, formulas."""

from __future__ import annotations

import math

import torch
from torch import Tensor

import analogkit.devices as D
from analogkit.update import UpdateConfig, kernels, pulsed_update_

NO_D2D = {"dw_min_dtod": 0.0, "up_down_dtod": 0.0, "w_max_dtod": 0.0, "w_min_dtod": 0.0}
BACKENDS = ["torch", "numba"] if kernels.HAVE_NUMBA else ["torch"]


def constant_exact(dw_min: float = 0.001, bound: float = 10.0) -> D.ConstantStepDevice:
    """Constant step without d2d or c2c variation and far bounds: Δw = −count·dw_min exactly."""
    return D.ConstantStepDevice(dw_min=dw_min, dw_min_std=0.0, w_max=bound, w_min=-bound, **NO_D2D)


def repeat_updates(
    device: D.Device, state0: D.DeviceState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
    reps: int, seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Final hidden weights (reps, out, in) of ``reps`` independent updates from copies of ``state0``,
    and the write noise (reps, out, in) if the device has any (else an empty tensor)."""
    gen = torch.Generator().manual_seed(seed)
    ws, wns = [], []
    for _ in range(reps):
        st = state0.clone()
        pulsed_update_(device, st, x, d, lr, cfg, gen)
        ws.append(st.w.clone())
        if "write_noise" in st.extra:
            wns.append(st.extra["write_noise"].clone())
    return torch.stack(ws), (torch.stack(wns) if wns else torch.empty(0))


def expected_bl(lr: float, xm: float, dm: float, dw_min: float, cfg: UpdateConfig) -> int:
    """BL of one sample, written from spec §1.4 (independent of the implementation)."""
    if xm == 0 or dm == 0:
        return 0
    if cfg.update_bl_management:
        return min(max(math.ceil(lr * xm * dm / dw_min - 1e-9), 1), cfg.desired_bl)
    if not cfg.fixed_bl and lr > dw_min * cfg.desired_bl:
        return math.ceil(lr / dw_min - 1e-9)
    return cfg.desired_bl


def expected_probs(x: Tensor, d: Tensor, lr: float, dw_min: float, cfg: UpdateConfig) -> tuple[list[int], Tensor, Tensor]:
    """BL_n, p (M, in), q (M, out) from the formulas of spec §1.4 / Gokmen & Vlasov 2016 (float64)."""
    x, d = x.double(), d.double()
    bls, ps, qs = [], [], []
    for n in range(x.shape[0]):
        xm, dm = float(x[n].abs().max()), float(d[n].abs().max())
        bl = expected_bl(lr, xm, dm, dw_min, cfg)
        bls.append(bl)
        if bl == 0:
            ps.append(torch.zeros_like(x[n]))
            qs.append(torch.zeros_like(d[n]))
            continue
        base = math.sqrt(lr / (dw_min * bl))
        if cfg.update_management:
            k = cfg.um_grad_scale
            a, b = base * math.sqrt(k * dm / xm), base * math.sqrt(xm / (k * dm))
        else:
            a = b = base
        ps.append((a * x[n].abs()).clamp(max=1))
        qs.append((b * d[n].abs()).clamp(max=1))
    return bls, torch.stack(ps), torch.stack(qs)


def count_moments(x: Tensor, d: Tensor, lr: float, dw_min: float, cfg: UpdateConfig) -> tuple[Tensor, Tensor]:
    """Mean and variance (out, in) of the signed pulse count summed over samples (stochastic trains):
    per sample Binomial(BL, p·q) in direction −sign(d)·sign(x), samples independent."""
    bls, p, q = expected_probs(x, d, lr, dw_min, cfg)
    mean = torch.zeros(d.shape[1], x.shape[1], dtype=torch.float64)
    var = torch.zeros_like(mean)
    for n, bl in enumerate(bls):
        pq = q[n][:, None] * p[n][None, :]
        sign = -(torch.sign(d[n].double())[:, None] * torch.sign(x[n].double())[None, :])
        mean += sign * bl * pq
        var += bl * pq * (1 - pq)
    return mean, var


def many_dense_samples(dev: D.Device, seed: int, samples: int = 12, n_in: int = 20, full: bool = False):
    """State (5, n_in) and a run of mostly dense samples of both signs (a sparse one in the middle),
    long trains: every element gets pulses in both directions, so the groups' direction streams hold
    changes of direction, and flushes at the group's pulse limit. ``full``: x, d = ±1 (every
    element coincides in every slot of a train: BL pulses per element and sample)."""
    gen = torch.Generator().manual_seed(seed)
    state = dev.build_state((5, n_in), gen)
    dev.set_weights(state, 0.5 * (state.w_max + state.w_min), gen)
    x = torch.randn(samples, n_in, generator=gen)
    d = 20 * dev.dw_min * torch.randn(samples, 5, generator=gen)
    if full:
        x, d = x.sign(), d.sign()
    x[samples // 2, 2:] = 0  # a sparse sample: ends the group before it
    return state, x, d


def deterministic_pair(dev: D.Device, state0: D.DeviceState, x: Tensor, d: Tensor, lr: float,
                       **cfg_kw) -> list[tuple[Tensor, int, int]]:
    """(weights, pulses, longest count) of one update from copies of ``state0`` by the torch and the
    numba back-end, with deterministic counts (``deterministic_implicit``) and one seed."""
    out = []
    for backend in ("torch", "numba"):
        st = state0.clone()
        cfg = UpdateConfig(backend=backend, pulse_type="deterministic_implicit", **cfg_kw)
        stats = pulsed_update_(dev, st, x, d, lr, cfg, torch.Generator().manual_seed(0))
        out.append((st.w, stats.pulses, stats.max_count))
    return out
