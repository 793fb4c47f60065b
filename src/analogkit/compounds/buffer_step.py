"""The digital buffer's step in a buffered transfer (TTv2, c-TTv2, AGAD): add the read, take whole
pulses out, forget what was written.

For the entries (m, k) of the vectors just read (Gokmen 2021, TTv2; Rasch et al. 2024, c-TTv2)::

    H ← H + s·u                        (u: what the variant adds for its reads; s: buffer scale)
    n = trunc(clip(H, −BL, BL))        (whole pulses for the slow array, at most BL = desired_bl)
    forget_buffer:  H ← momentum·H where n ≠ 0      else  H ← clip(H − (1 − momentum)·n, ±cap)

(cap = 0: no clip). In PyTorch that is seven passes over the entries with a temporary for each. On
the CPU with numba it is one pass (:func:`buffer_step_`). For c-TTv2's transfer of 64 columns of a
512-row array inside a training step (measured): 0.27 ms for the PyTorch operations, 0.17 ms for
the pass; the buffer's lines come cold from memory after the update kernel, and the pass fetches
them once. The pass works in float64 and stores the buffer in its own precision; the PyTorch path
(other devices, or ``ANALOGKIT_KERNELS=torch``) works in the buffer's precision, so at a count's
edge the two can differ by one rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

from analogkit.periphery.kernels import HAVE_NUMBA, kernels_enabled

__all__ = ["buffer_step_"]

if HAVE_NUMBA:
    import math

    import numpy as np
    from numba import njit

    @njit(cache=True, error_model="numpy")
    def _buffer_pass(h, row_stride, m, k, u, scale, max_steps, no_buffer, forget, momentum, cap, counts):
        """One branch-free pass over the (m, k) entries, in place: entry (i, j) of H is
        ``h[i·row_stride + j]`` (a flat span, so the inner loop runs over consecutive memory and
        vectorises); ``u`` and ``counts`` are C-contiguous (m, k). Returns how many counts are non-zero."""
        keep = 1.0 - momentum
        lo = -cap if cap > 0.0 else -np.inf
        hi = cap if cap > 0.0 else np.inf
        n_moved = 0
        for i in range(m):
            base = i * row_stride
            for j in range(k):
                hv = float(h[base + j])
                v = (0.0 if no_buffer else hv) + scale * float(u[i, j])
                c = np.trunc(min(max(v, -max_steps), max_steps))
                counts[i, j] = np.int32(c)
                moved = c != 0.0
                kept = v * momentum if forget else min(max(v - keep * c, lo), hi)
                h[base + j] = kept if (moved or not forget) else v
                n_moved += np.int64(moved)
        return n_moved


def buffer_step_(h: Tensor, u: Tensor, scale: float, max_steps: float, *, no_buffer: bool, forget: bool,
                 momentum: float, cap: float) -> tuple[Tensor, Tensor, bool]:
    """The buffer step above on the entries ``h`` (m, k) with the reads' contribution ``u`` (m, k).

    Returns (H after the step, the int32 counts n, whether any n ≠ 0). H is ``h`` itself, changed
    in place, on the CPU kernel's path, and on the PyTorch path where the rule allows it (forget
    with momentum 0); otherwise a new tensor the caller stores back.
    """
    if kernels_enabled(h) and u.device == h.device and h.dim() == 2:
        m, k = h.shape
        if h.stride(1) != 1 and k > 1:  # (rows of a transposed view: work on a copy, stored back by the caller)
            h = h.contiguous()
        row_stride = h.stride(0) if m > 1 else k
        span = torch.as_strided(h.detach(), ((m - 1) * row_stride + k,), (1,)) if h.numel() else h.detach().reshape(-1)
        counts = torch.empty((m, k), dtype=torch.int32)
        moved = _buffer_pass(span.numpy(), row_stride, m, k, u.detach().contiguous().numpy(), float(scale),
                             float(max_steps), bool(no_buffer), bool(forget), float(momentum), float(cap),
                             counts.numpy())
        return h, counts, moved > 0
    if no_buffer:
        h.zero_()
    h.add_(u, alpha=scale)
    counts = h.clamp(-max_steps, max_steps).to(torch.int32)
    moved = counts != 0
    if forget:
        h = h.masked_fill_(moved, 0.0) if momentum == 0 else torch.where(moved, h * momentum, h)
    else:
        h = h - (1.0 - momentum) * counts.to(h.dtype)
        if cap > 0:
            h = h.clamp(-cap, cap)
    return h, counts, bool(moved.any())
