"""Drift compensation: a digital output scale α that undoes the average conductance decay.

After programming, the tile reads a reference: it runs its forward periphery (DAC, MVM, noise,
ADC: all forward non-idealities) on one-hot inputs, i.e. the identity matrix ``eye(in_size)``
(:func:`reference_inputs`), and keeps the outputs ``y_ref``. At inference time ``t`` it reads the
same inputs again (``y_t``) and multiplies its outputs by

    global:      α = max(mean|y_ref|, eps) / max(mean|y_t|, eps)           (one scalar)
    per column:  α_j = max(mean_i |y_ref[i, j]|, eps) / max(mean_i |y_t[i, j]|, eps)

with eps = 1e-4. Source: Joshi et al. 2020 (Nat. Commun. 11:2473, "global drift compensation");
Le Gallo et al. 2023 (APL Mach. Learn. 1:041102); incumbent ``GlobalDriftCompensation`` and
``PerColumnDriftCompensation`` (spec §1.12). The incumbent's ``pcm_inference.rst`` still
describes an all-ones input; its code uses one-hot inputs, as here.

These are pure functions; the tile owns the reference outputs and applies α in eval mode.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["DRIFT_EPS", "reference_inputs", "global_drift_factor", "per_column_drift_factor"]

DRIFT_EPS = 1e-4


def reference_inputs(in_size: int, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Tensor:
    """One-hot read-out inputs for drift compensation: ``eye(in_size)`` (one row per input)."""
    if isinstance(in_size, bool) or not isinstance(in_size, int) or in_size < 1:
        raise ValueError(f"reference_inputs: in_size {in_size!r} is not allowed; use a positive integer")
    return torch.eye(in_size, dtype=dtype, device=device)


def _check_pair(name: str, reference_out: Tensor, drifted_out: Tensor, eps: float) -> None:
    if reference_out.shape != drifted_out.shape:
        raise ValueError(
            f"{name}: reference_out {tuple(reference_out.shape)} and drifted_out {tuple(drifted_out.shape)} "
            "must have the same shape (read them with the same inputs)"
        )
    if not eps > 0:
        raise ValueError(f"{name}: eps {eps!r} is not allowed; use a number > 0")


def global_drift_factor(reference_out: Tensor, drifted_out: Tensor, eps: float = DRIFT_EPS) -> Tensor:
    """α = max(mean|y_ref|, eps)/max(mean|y_t|, eps): one scalar for the whole tile (0-dim tensor)."""
    _check_pair("global_drift_factor", reference_out, drifted_out, eps)
    ref = reference_out.abs().mean().clamp(min=eps)
    now = drifted_out.abs().mean().clamp(min=eps)
    return ref / now


def per_column_drift_factor(reference_out: Tensor, drifted_out: Tensor, eps: float = DRIFT_EPS) -> Tensor:
    """α_j per output column j (the last dimension), averaging |y| over all other dimensions.

    Outputs have shape ``(..., out_size)`` (for one-hot reads: ``(in_size, out_size)``); returns
    a tensor of shape ``(out_size,)``.
    """
    _check_pair("per_column_drift_factor", reference_out, drifted_out, eps)
    if reference_out.dim() == 0:
        return global_drift_factor(reference_out, drifted_out, eps).reshape(1)
    dims = tuple(range(reference_out.dim() - 1))
    ref = reference_out.abs().mean(dim=dims).clamp(min=eps) if dims else reference_out.abs().clamp(min=eps)
    now = drifted_out.abs().mean(dim=dims).clamp(min=eps) if dims else drifted_out.abs().clamp(min=eps)
    return ref / now
