"""Settings of the pulsed weight update: pulse trains, bit-length and update management, back-end.

Field names and defaults follow the incumbent's ``UpdateParameters`` (spec §1.4); the pulse
scheme is the stochastic parallel update of Gokmen & Vlasov 2016 ("Acceleration of deep neural
network training with resistive cross-point devices: design considerations", Front. Neurosci.
10:333). What each field does is written out in :mod:`analogkit.update.trains`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogkit.config.base import ConfigBase

__all__ = ["BACKENDS", "MAX_KERNEL_BL", "PULSE_APPLICATIONS", "PULSE_TYPES", "UpdateConfig"]

#: ``UpdateConfig.pulse_type`` values.
PULSE_TYPES = ("stochastic_compressed", "deterministic_implicit", "mean_count", "none")
#: ``UpdateConfig.pulse_application`` values.
PULSE_APPLICATIONS = ("exact", "closed_form")
#: ``UpdateConfig.backend`` values.
BACKENDS = ("auto", "torch", "numba")
#: Longest pulse train ``desired_bl`` may ask for (one 64-bit word per train in the CPU kernel).
MAX_KERNEL_BL = 64


@dataclass
class UpdateConfig(ConfigBase):
    """How ΔW = −lr·d xᵀ is turned into device pulses (stochastic parallel update).

    Fields (defaults as the incumbent's, spec §1.4):

    * ``desired_bl`` (31): pulse-train length BL, 1..64; the largest BL under BL management.
    * ``fixed_bl`` (True): only without ``update_bl_management``: if False and lr > dw_min·BL, the
      train is lengthened to BL = ceil(lr/dw_min) so that probabilities do not clip (may exceed 64).
    * ``pulse_type``: ``"stochastic_compressed"`` (random bit trains, coincidences counted),
      ``"deterministic_implicit"`` (count = round(BL·x̂·d̂) of quantised probabilities),
      ``"mean_count"`` (expected coincidences BL·p·q, stochastically rounded), ``"none"``
      (floating-point update clipped to the device bounds, no pulses).
    * ``update_bl_management`` (True): BL_n = clamp(ceil(lr·max|x_n|·max|d_n|/dw_min), 1, desired_bl).
    * ``update_management`` (True): balance the row/column probabilities so that
      max p_x / max p_d = ``um_grad_scale``.
    * ``um_grad_scale`` (1.0): that ratio (> 0).
    * ``x_res_implicit``, ``d_res_implicit`` (0): bin width of the quantised probabilities of
      ``"deterministic_implicit"`` (in [0, 1]; 0 = 1/BL_n, i.e. BL_n levels).
    * ``pulse_application`` (``"exact"``): ``"exact"`` gives every sample's pulses the law of
      applying them one after another with the device's rule (the reference back-end does so; the
      CPU kernel draws a sample's pulses in one go where that law is reached exactly in
      distribution, or to within float32 resolution for multiplicative noise, see
      :mod:`analogkit.update.kernels`); ``"closed_form"`` always uses the device's moment-matched
      n-pulse closed form per sample (an approximation for state-dependent steps with
      cycle-to-cycle noise).
    * ``backend`` (``"auto"``): ``"numba"`` (fused CPU kernels; affine-step devices and the ideal
      device, exp-step, pow-step and piecewise-step devices), ``"torch"`` (reference, any device,
      CPU or CUDA) or ``"auto"`` (numba where it applies, torch otherwise).
    """

    kind: ClassVar[str] = "update"

    desired_bl: int = 31
    fixed_bl: bool = True
    pulse_type: str = "stochastic_compressed"
    update_bl_management: bool = True
    update_management: bool = True
    um_grad_scale: float = 1.0
    x_res_implicit: float = 0.0
    d_res_implicit: float = 0.0
    pulse_application: str = "exact"
    backend: str = "auto"

    def validate(self) -> None:
        self.check_int(
            "desired_bl", 1, MAX_KERNEL_BL, allowed=f"use an integer >= 1 and <= {MAX_KERNEL_BL} (pulse-train length)"
        )
        self.check_bool("fixed_bl")
        self.check_choice("pulse_type", PULSE_TYPES)
        self.check_bool("update_bl_management")
        self.check_bool("update_management")
        self.check_range("um_grad_scale", 0, lo_open=True, allowed="use a number > 0 (ratio of max x to max d probability)")
        for name in ("x_res_implicit", "d_res_implicit"):
            self.check_range(name, 0, 1, allowed="use a bin width in [0, 1] (0: 1/BL)")
        self.check_choice("pulse_application", PULSE_APPLICATIONS)
        self.check_choice("backend", BACKENDS)
