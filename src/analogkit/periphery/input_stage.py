"""Fused CPU kernel for the input stage of a read: noise management, then the DAC.

Per input vector x (a row), with the same arithmetic as the PyTorch path of
:mod:`analogkit.periphery.mvm` (``noise_management_scale`` then ``_dac``)::

    α = max_j |x_j| (abs_max) or max_j x_j (max), capped at nm_thres if > 0; α = 1 where not > 0
    u = clip(Δ·round(x/α · (1/Δ)), ±b)        (Δ = 0: no rounding; round half to even)

all in the input's precision, so both paths give the same numbers. In PyTorch that is five to
seven passes over the inputs with a temporary each (about 70 µs for 64×512 inside a training
step, measured); here it is one pass per row. Only the deterministic DAC is fused: stochastic
rounding and input noise draw from the tile's generator and keep the PyTorch path (input noise
that the caller draws later, per tile as the tile grid does, does not), as do other devices and
``ANALOGKIT_KERNELS=torch``. Source of the scheme: Gokmen et al. 2017, "Training deep
convolutional neural networks with resistive cross-point devices", Sec. 3 (noise management).
"""

from __future__ import annotations

import torch
from torch import Tensor

from analogkit.config.io import IOConfig
from analogkit.periphery.kernels import HAVE_NUMBA, kernels_enabled

__all__ = ["fused_input_stage"]

_KINDS = {"none": 0, "abs_max": 1, "max": 2}

if HAVE_NUMBA:
    import numpy as np
    from numba import njit

    @njit(cache=True, error_model="numpy")
    def _input_rows(x, kind, nm_thres, inv_step, step, bound, u, alpha):
        """Rows of x (N, in) into u, their scales into alpha (N,) (kind 0: none, alpha untouched)."""
        for r in range(x.shape[0]):
            a = x.dtype.type(1.0)
            if kind != 0:
                m = x[r, 0] if kind == 2 else abs(x[r, 0])
                nan = m != m
                for j in range(1, x.shape[1]):
                    v = x[r, j] if kind == 2 else abs(x[r, j])
                    nan |= v != v
                    m = max(m, v)
                if nm_thres > 0:
                    m = min(m, nm_thres)
                a = m if (m > 0 and not nan) else x.dtype.type(1.0)  # (a NaN scale is replaced by 1, as in PyTorch)
                alpha[r] = a
            for j in range(x.shape[1]):
                v = x[r, j] / a if kind != 0 else x[r, j]
                if step > 0:
                    v = np.rint(v * inv_step) * step
                c = min(max(v, -bound), bound)
                u[r, j] = v if v != v else c


def fused_input_stage(x: Tensor, io: IOConfig, noise: bool = True) -> tuple[Tensor, Tensor | None] | None:
    """(u, α) of the input stage for x (..., in), one input vector per row: u the DAC's output (the
    shape of x), α (..., 1) the noise-management scales (None without noise management). None
    where the fused kernel does not apply (then use ``noise_management_scale`` and ``_dac``).
    ``noise``: whether the caller wants the input noise here (the tile grid draws it per tile, so
    it asks for none, and the kernel then applies whatever ``inp_noise`` is)."""
    kind = _KINDS.get(io.noise_management)
    if (kind is None or io.inp_sto_round or (noise and io.inp_noise > 0) or x.dim() < 2 or x.shape[-1] == 0
            or not kernels_enabled(x)):
        return None
    rows = x.detach().reshape(-1, x.shape[-1]).contiguous()
    dtype = x.dtype
    u = torch.empty_like(rows)
    alpha = torch.empty((rows.shape[0], 1), dtype=dtype) if kind else None
    ftype = np.float32 if dtype == torch.float32 else np.float64
    step = float(io.inp_step)
    scales = alpha.view(-1).numpy() if alpha is not None else np.empty(1, ftype)
    _input_rows(rows.numpy(), kind, ftype(io.nm_thres), ftype(1.0 / step if step > 0 else 0.0), ftype(step),
                ftype(io.inp_bound), u.numpy(), scales)
    return u.view(x.shape), alpha.view(x.shape[:-1] + (1,)) if alpha is not None else None
