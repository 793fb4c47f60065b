"""Pulse trains of the stochastic parallel update: bit length, probabilities, coincidence counts.

The update ΔW = −lr·d xᵀ of a crossbar (x: (M, in) inputs, d: (M, out) output gradients, M
samples in order) is written by pulses (Gokmen & Vlasov 2016, "Acceleration of deep neural
network training with resistive cross-point devices: design considerations", Front. Neurosci.
10:333, section "Stochastic update rule"; the management schemes as in the incumbent's
``UpdateParameters``, spec §1.4). Per sample n (skipped if max|x_n| = 0 or max|d_n| = 0)::

    xm = max_j |x_nj|,  dm = max_i |d_ni|
    BL_n = desired_bl                                           (fixed)
         = clamp(ceil(lr·xm·dm/dw_min), 1, desired_bl)          (update_bl_management)
         = ceil(lr/dw_min) if lr > dw_min·desired_bl             (not fixed_bl, no BL management)
    base = sqrt(lr/(dw_min·BL_n))
    A = base·sqrt(k·dm/xm),  B = base·sqrt(xm/(k·dm))            (update_management, k = um_grad_scale)
    A = B = base                                                (otherwise)
    p_nj = min(A·|x_nj|, 1)   column (input) firing probability per slot
    q_ni = min(B·|d_ni|, 1)   row (gradient) firing probability per slot

``stochastic_compressed``: in each of the BL_n slots, column j fires with probability p_nj and
row i with q_ni, all independently. Element (i, j) gets one pulse per slot in which both fire,
in the direction −sign(d_ni)·sign(x_nj). Its count is Binomial(BL_n, p·q) with mean
BL_n·p·q = lr·|d_ni·x_nj|/dw_min when nothing clips, so a constant-step device moves on average
by −lr·d xᵀ. Counts of one sample are correlated along rows and columns (they share bits):
for j ≠ j' in row i,  Cov(n_ij, n_ij') = BL·q(1 − q)·p_j·p_j'  (derivation in the tests).

``deterministic_implicit``: no random trains; x̂ = min(round(p/r_x)·r_x, 1) and
d̂ = min(round(q/r_d)·r_d, 1) with bin widths r_x = ``x_res_implicit``, r_d = ``d_res_implicit``
(0: 1/BL_n), and count = round(BL_n·x̂·d̂) (round half to even).

``mean_count``: count = expected coincidences μ = BL_n·p·q, stochastically rounded:
floor(μ) + Bernoulli(μ − floor(μ)), so E[count] = μ exactly and each element is drawn
independently (no row/column correlation).

BL and the probabilities are computed in float64. ``ceil`` is taken of v·(1 − 1e-12) so that
a ratio that is an integer up to rounding (0.05/0.001 = 50.000000000000007) gives that integer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.update.config import UpdateConfig

__all__ = ["CEIL_SLACK", "TrainPlan", "bl_for", "coincidence_counts", "plan_trains", "probabilities"]

#: Relative slack of the ceil in the BL formulas (see the module docstring).
CEIL_SLACK = 1e-12


@dataclass
class TrainPlan:
    """Per-sample quantities of one update: BL_n (0 = sample skipped) and the scales A_n, B_n."""

    bl: Tensor  # (M,) int64, 0 where the sample is skipped
    a: Tensor  # (M,) float64: column (x) scale
    b: Tensor  # (M,) float64: row (d) scale

    @property
    def active(self) -> Tensor:
        return self.bl > 0


def _ceil(v: float) -> int:
    return math.ceil(v * (1.0 - CEIL_SLACK))


def bl_for(lr: float, xm: float, dm: float, dw_min: float, cfg: UpdateConfig) -> int:
    """BL of one sample (scalar form of the rule in :func:`plan_trains`; 0 if the sample is skipped)."""
    if xm <= 0 or dm <= 0 or lr <= 0:
        return 0
    if cfg.update_bl_management:
        return min(max(_ceil(lr * xm * dm / dw_min), 1), cfg.desired_bl)
    if not cfg.fixed_bl and lr > dw_min * cfg.desired_bl:
        return _ceil(lr / dw_min)
    return cfg.desired_bl


def plan_trains(x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig, dw_min: float) -> TrainPlan:
    """BL_n, A_n, B_n for every sample (float64, on the device of ``x``)."""
    xm = x.detach().abs().amax(dim=1).to(torch.float64)
    dm = d.detach().abs().amax(dim=1).to(torch.float64)
    active = (xm > 0) & (dm > 0) & (lr > 0)
    dev = x.device
    if cfg.update_bl_management:
        v = lr * xm * dm / dw_min
        bl = torch.ceil(v * (1.0 - CEIL_SLACK)).clamp(1, cfg.desired_bl).to(torch.int64)
    else:
        n = _ceil(lr / dw_min) if (not cfg.fixed_bl and lr > dw_min * cfg.desired_bl) else cfg.desired_bl
        bl = torch.full_like(xm, n, dtype=torch.int64)
    bl = torch.where(active, bl, torch.zeros_like(bl))
    safe_bl = bl.clamp(min=1).to(torch.float64)
    base = torch.sqrt(lr / (dw_min * safe_bl)) if lr > 0 else torch.zeros_like(safe_bl)
    if cfg.update_management:
        one = torch.ones_like(xm)
        xs, ds = torch.where(active, xm, one), torch.where(active, dm, one)
        k = cfg.um_grad_scale
        a = base * torch.sqrt(k * ds / xs)
        b = base * torch.sqrt(xs / (k * ds))
    else:
        a, b = base, base.clone()
    zero = torch.zeros((), dtype=torch.float64, device=dev)
    return TrainPlan(bl=bl, a=torch.where(active, a, zero), b=torch.where(active, b, zero))


def probabilities(x: Tensor, d: Tensor, plan: TrainPlan) -> tuple[Tensor, Tensor]:
    """Per-slot firing probabilities p (M, in) of the columns and q (M, out) of the rows (float64)."""
    p = (plan.a[:, None] * x.detach().to(torch.float64).abs()).clamp_(max=1.0)
    q = (plan.b[:, None] * d.detach().to(torch.float64).abs()).clamp_(max=1.0)
    return p, q


def _quantise(p: Tensor, res: float, bl: Tensor) -> Tensor:
    r = torch.where(bl > 0, 1.0 / bl.clamp(min=1).to(torch.float64), torch.ones_like(bl, dtype=torch.float64))
    r = torch.full_like(r, res) if res > 0 else r
    return (torch.round(p / r[:, None]) * r[:, None]).clamp_(max=1.0)


def coincidence_counts(
    x: Tensor, d: Tensor, plan: TrainPlan, cfg: UpdateConfig, generator: torch.Generator | None,
    start: int = 0, stop: int | None = None,
) -> Tensor:
    """Signed pulse counts (stop − start, out, in) int32 of samples ``start:stop`` (reference form).

    ``stochastic_compressed``: 0/1 float trains of shape (samples, BL, ·) drawn with ``torch.rand``
    and counted by a batched matmul over the slots. Positive counts raise w.
    """
    stop = x.shape[0] if stop is None else stop
    xs, ds = x[start:stop], d[start:stop]
    sub = TrainPlan(plan.bl[start:stop], plan.a[start:stop], plan.b[start:stop])
    p, q = probabilities(xs, ds, sub)
    bl = sub.bl
    blf = bl.to(torch.float64)
    if cfg.pulse_type == "stochastic_compressed":
        m = xs.shape[0]
        slots = int(bl.max()) if m else 0
        dev = x.device
        if slots == 0:
            mag = torch.zeros((m, ds.shape[1], xs.shape[1]), dtype=torch.float32, device=dev)
        else:
            live = torch.arange(slots, device=dev)[None, :] < bl[:, None]  # (m, slots)
            ux = torch.rand((m, slots, xs.shape[1]), generator=generator, device=dev, dtype=torch.float64)
            ud = torch.rand((m, slots, ds.shape[1]), generator=generator, device=dev, dtype=torch.float64)
            cx = ((ux < p[:, None, :]) & live[:, :, None]).to(torch.float32)  # (m, slots, in)
            cd = ((ud < q[:, None, :]) & live[:, :, None]).to(torch.float32)  # (m, slots, out)
            mag = torch.bmm(cd.transpose(1, 2), cx)  # (m, out, in): slots where both fire
    elif cfg.pulse_type == "deterministic_implicit":
        xh = _quantise(p, cfg.x_res_implicit, bl)
        dh = _quantise(q, cfg.d_res_implicit, bl)
        mag = torch.round(blf[:, None, None] * dh[:, :, None] * xh[:, None, :])
    elif cfg.pulse_type == "mean_count":
        mu = blf[:, None, None] * q[:, :, None] * p[:, None, :]
        fl = torch.floor(mu)
        u = torch.rand(mu.shape, generator=generator, device=mu.device, dtype=torch.float64)
        mag = fl + (u < mu - fl).to(mu.dtype)
    else:
        raise ValueError(f"coincidence_counts: pulse_type {cfg.pulse_type!r} has no pulse counts")
    sign = -(torch.sign(ds)[:, :, None] * torch.sign(xs)[:, None, :])  # −sign(d)·sign(x)
    return (mag.to(torch.int32) * sign.to(torch.int32)).contiguous()
