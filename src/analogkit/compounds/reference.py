"""Reference unit cell: a device read against a second, fixed reference device (W = W₀ − W₁)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from analogkit.compounds.base import CompoundState, hidden_weight_of, register_compound
from analogkit.compounds.vector import VectorUnitCell
from analogkit.config.base import ConfigBase

__all__ = ["ReferenceUnitCell"]


@register_compound
@dataclass
class ReferenceUnitCell(VectorUnitCell):
    """Two devices per cross-point, W = γ₀W₀ + γ₁W₁ = W₀ − W₁; only W₀ is ever updated.

    The second device is the reference (for example a conductance programmed to the first device's
    symmetry point, or a shared "zero"). Give one device to use the same model twice (with separately
    drawn device-to-device variation). Programming a weight w writes W₀ = (w − γ₁W₁)/γ₀ and leaves the
    reference alone; :meth:`set_reference` programs the reference.

    Source: reference-device unit cell of AIHWKit (``ReferenceUnitCell``, spec §1.9); differential
    read against a reference array as in Gokmen & Haensch 2020 (Front. Neurosci. 14:103).
    """

    kind: ClassVar[str] = "reference_unit_cell"

    unit_cell_devices: list[ConfigBase] = field(default_factory=list)
    update_policy: str = "single_fixed"
    first_update_idx: int = 0
    gamma_vec: list[float] = field(default_factory=lambda: [1.0, -1.0])

    def validate(self) -> None:
        self._check_devices("unit_cell_devices", self.unit_cell_devices, 1, 2)
        super().validate()
        if self.update_policy != "single_fixed":
            self._fail("update_policy", self.update_policy, "use 'single_fixed' (only the first device is updated)")
        if self.first_update_idx != 0:
            self._fail("first_update_idx", self.first_update_idx, "use 0 (device 1 is the reference)")
        if self.gammas[0] == 0:
            self._fail("gamma_vec", self.gamma_vec, "use a non-zero weight for the updated device (first entry)")

    def sub_devices(self) -> list[Any]:
        devs = list(self.unit_cell_devices)
        return devs * 2 if len(devs) == 1 else devs

    def set_weights(self, state: CompoundState, w: Tensor, generator: torch.Generator | None = None) -> None:
        """W₀ = (w − γ₁W₁)/γ₀ (clipped to W₀'s bounds); the reference W₁ stays."""
        devs, gam = self.sub_devices(), self.gammas
        ref = hidden_weight_of(devs[1], state.devices[1])
        devs[0].set_weights(state.devices[0], (w - gam[1] * ref) / gam[0], generator)
        self.refresh_weight_(state)

    def set_reference(self, state: CompoundState, w_ref: Tensor, generator: torch.Generator | None = None) -> None:
        """Program the reference device W₁ (clipped to its bounds)."""
        self.sub_devices()[1].set_weights(state.devices[1], w_ref, generator)
        self.refresh_weight_(state)
