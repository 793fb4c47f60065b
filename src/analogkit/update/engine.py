"""Entry point of the pulsed update: ``pulsed_update_`` picks a back-end and applies ΔW = −lr·d xᵀ.

The semantics (bit length, update management, coincidence counting, per-sample order) are in
:mod:`analogkit.update.trains`; the back-ends are :mod:`analogkit.update.reference` (plain
PyTorch, every device, CPU/CUDA) and two families of fused numba kernels (CPU), together the
``"numba"`` back-end: :mod:`analogkit.update.kernels` (affine-step and ideal devices) and
:mod:`analogkit.update.kernels_step` (exp-, pow- and piecewise-step devices, pulse by pulse).
``backend="auto"`` takes a kernel where one applies (unless the environment sets
``ANALOGKIT_KERNELS=torch``) and the reference otherwise.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.devices.base import Device, DeviceState
from analogkit.update import kernels as _kernels
from analogkit.update import kernels_step as _kernels_step
from analogkit.update.config import UpdateConfig
from analogkit.update.reference import reference_update_

__all__ = ["UpdateStats", "fp_update_", "pulsed_update_", "select_backend"]


@dataclass
class UpdateStats:
    """Light statistics of one ``pulsed_update_`` call (for tests and diagnostics).

    ``bl``: BL_n per sample (0 where the sample was skipped: max|x_n| or max|d_n| is 0);
    ``pulses``: Σ |count| over elements and samples; ``max_count``: the largest count of one element
    in one sample (<= BL_n); ``backend``: ``"torch"``, ``"numba"`` or ``"fp"`` (pulse_type none);
    ``kernel``: ``"serial"``/``"parallel"`` (numba; ``"none"`` if no element coincided), ``"reference"``.
    """

    backend: str
    bl: Tensor
    pulses: int
    max_count: int
    kernel: str = ""

    @property
    def samples(self) -> int:
        """Samples that produced pulse trains."""
        return int((self.bl > 0).sum())

    @property
    def skipped(self) -> int:
        return int(self.bl.numel()) - self.samples

    @property
    def mean_bl(self) -> float:
        """Mean BL over the samples that were not skipped (0.0 if none)."""
        n = self.samples
        return float(self.bl.sum()) / n if n else 0.0


def _check_inputs(device: Device, state: DeviceState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                  generator: torch.Generator, dw_min: float) -> None:
    if not isinstance(cfg, UpdateConfig):
        raise TypeError(f"pulsed_update_: cfg must be an UpdateConfig, got {type(cfg).__name__}")
    if not isinstance(device, Device):
        raise TypeError(f"pulsed_update_: device must be a Device config, got {type(device).__name__}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"pulsed_update_: generator must be a torch.Generator, got {generator!r}")
    if not isinstance(x, Tensor) or not isinstance(d, Tensor):
        raise TypeError("pulsed_update_: x and d must be tensors")
    if x.dim() != 2 or d.dim() != 2 or x.shape[0] != d.shape[0]:
        raise ValueError(f"pulsed_update_: x {tuple(x.shape)} and d {tuple(d.shape)} must be (M, in) and (M, out)")
    if tuple(state.w.shape) != (d.shape[1], x.shape[1]):
        raise ValueError(
            f"pulsed_update_: state.w has shape {tuple(state.w.shape)}, expected (out, in) = {(d.shape[1], x.shape[1])}"
        )
    if x.device != state.w.device or d.device != state.w.device:
        raise ValueError(f"pulsed_update_: x, d and the state must be on one device (got {x.device}, {d.device}, {state.w.device})")
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(f"pulsed_update_: lr {lr!r} is not allowed; use a finite number >= 0")
    if not math.isfinite(dw_min) or dw_min <= 0:
        raise ValueError(f"pulsed_update_: dw_min {dw_min!r} is not allowed; use a step > 0")


def _number(name: str, value: object) -> float:
    """A Python float from a number, a NumPy scalar or a one-element tensor (as schedulers give)."""
    if isinstance(value, bool):
        raise ValueError(f"pulsed_update_: {name} {value!r} is not allowed; use a number")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"pulsed_update_: {name} {value!r} is not allowed; use a number") from None


def select_backend(device: Device, state: DeviceState, cfg: UpdateConfig) -> str:
    """``"numba"`` or ``"torch"``: what ``pulsed_update_`` runs for this device, state and config."""
    if cfg.pulse_type == "none":
        return "fp"
    if cfg.backend == "torch":
        return "torch"
    supported = _kernels.kernel_supported(device, state) or _kernels_step.step_kernel_supported(device, state)
    if cfg.backend == "numba":
        if not supported:
            raise ValueError(
                f"UpdateConfig.backend: 'numba' is not allowed for {type(device).__name__} on "
                f"{state.w.device.type}/{state.w.dtype}; use 'auto' or 'torch' (the kernels cover affine-step, "
                "ideal, exp-, pow- and piecewise-step devices, CPU float32/float64)"
            )
        return "numba"
    if supported and os.environ.get("ANALOGKIT_KERNELS", "numba") != "torch":
        return "numba"
    return "torch"


def fp_update_(state: DeviceState, x: Tensor, d: Tensor, lr: float) -> None:
    """pulse_type ``"none"``: w ← clip(w − lr·dᵀx, w_min, w_max) in floating point (no pulses).

    The whole batch is applied at once and clipped once; the write noise is not redrawn.
    """
    w = state.w
    new = torch.addmm(w, d.to(w.dtype).t(), x.to(w.dtype), alpha=-float(lr))
    w.copy_(torch.minimum(torch.maximum(new, state.w_min), state.w_max))


@torch.no_grad()
def pulsed_update_(
    device: Device, state: DeviceState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
    generator: torch.Generator, dw_min: float | None = None,
) -> UpdateStats:
    """Apply ΔW = −lr·d xᵀ to a device array as pulses, in place; return light statistics.

    ``x``: (M, in) inputs, ``d``: (M, out) output gradients, ``state.w``: (out, in); the M samples
    are applied in order. ``dw_min``: the step the pulse trains are planned with (default
    ``device.dw_min``). Semantics: :mod:`analogkit.update.trains` (Gokmen & Vlasov 2016); the
    device's own physics (steps, noise, bounds, write noise) act on every pulse.
    """
    if not isinstance(device, Device):
        raise TypeError(f"pulsed_update_: device must be a Device config, got {type(device).__name__}")
    dw_min = _number("dw_min", device.dw_min if dw_min is None else dw_min)
    lr = _number("lr", lr)
    _check_inputs(device, state, x, d, lr, cfg, generator, dw_min)
    backend = select_backend(device, state, cfg)
    m = x.shape[0]
    if backend == "fp":
        if lr > 0 and m:
            fp_update_(state, x, d, lr)
        return UpdateStats("fp", torch.zeros(m, dtype=torch.int64), 0, 0, kernel="")
    if m == 0 or x.shape[1] == 0 or d.shape[1] == 0:
        return UpdateStats(backend, torch.zeros(m, dtype=torch.int64), 0, 0)
    if backend == "numba":
        fused = _kernels.kernel_update_ if _kernels.kernel_supported(device, state) else _kernels_step.step_kernel_update_
        bl, pulses, max_count, kernel = fused(device, state, x, d, lr, cfg, generator, dw_min)
        return UpdateStats("numba", torch.from_numpy(bl), pulses, max_count, kernel)
    bl, pulses, max_count = reference_update_(device, state, x, d, lr, cfg, generator, dw_min)
    return UpdateStats("torch", bl.cpu(), pulses, max_count, "reference")
