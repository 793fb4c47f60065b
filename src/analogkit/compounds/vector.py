"""Vector unit cell: several devices per cross-point whose weighted sum is the weight."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from analogkit.compounds.base import (
    Compound,
    CompoundState,
    apply_counts_,
    granularity_of,
    hidden_weight_of,
    register_compound,
    update_array_,
)
from analogkit.config.base import ConfigBase
from analogkit.update.config import UpdateConfig

__all__ = ["UPDATE_POLICIES", "VectorUnitCell"]

#: ``VectorUnitCell.update_policy`` values.
UPDATE_POLICIES = ("all", "single_fixed", "single_sequential", "single_random")


@register_compound
@dataclass
class VectorUnitCell(Compound):
    """n devices per cross-point; the weight is their weighted sum W = Σ_k γ_k W_k.

    Each mini-batch update (one recorded (x, d) pair) goes, as its own stochastic pulse update
    ΔW_k = −lr·d xᵀ, to:

    * ``"all"``: every device;
    * ``"single_fixed"``: device ``first_update_idx`` only;
    * ``"single_sequential"``: one device per mini-batch, cycling from ``first_update_idx``;
    * ``"single_random"``: one device per mini-batch, drawn uniformly (from the tile's generator).

    ``gamma_vec`` (default: 1/n each) weights the devices. Programming a weight w sets
    w_k = w·γ_k/Σ_j γ_j² (the smallest-norm split with Σ γ_k w_k = w; each device gets w for the
    default weights). A device with a negative weight γ_k receives the update with the opposite sign
    (so that it, too, moves W downhill). The learning rate is not rescaled for the single-device policies (as in the
    incumbent's ``VectorUnitCell``; spec §1.9): with γ = 1/n a single-device update moves W by lr/n.

    Source: multi-device unit cells of AIHWKit (Rasch et al. 2021, arXiv:2104.02184), e.g. two or
    four devices per cross-point with random selection (``ReRamSB2Preset`` …, spec §1.11).
    """

    kind: ClassVar[str] = "vector_unit_cell"

    unit_cell_devices: list[ConfigBase] = field(default_factory=list)
    update_policy: str = "all"
    first_update_idx: int = 0
    gamma_vec: list[float] = field(default_factory=list)

    _MIN_DEVICES: ClassVar[int] = 1

    def validate(self) -> None:
        self._check_devices("unit_cell_devices", self.unit_cell_devices, self._MIN_DEVICES)
        self.check_choice("update_policy", UPDATE_POLICIES)
        n = len(self.sub_devices())
        self.check_int("first_update_idx", 0, n - 1, allowed=f"use a device index in [0, {n - 1}]")
        if not isinstance(self.gamma_vec, (list, tuple)) or (self.gamma_vec and len(self.gamma_vec) != n):
            self._fail("gamma_vec", self.gamma_vec, f"use an empty list (equal weights 1/n) or {n} numbers")
        for g in self.gamma_vec:
            if isinstance(g, bool) or not isinstance(g, (int, float)) or g != g or abs(g) == float("inf"):
                self._fail("gamma_vec", self.gamma_vec, "use finite numbers")
        if self.gamma_vec and not any(g != 0 for g in self.gamma_vec):
            self._fail("gamma_vec", self.gamma_vec, "use at least one non-zero weight")

    # -- structure ------------------------------------------------------------------------------
    def sub_devices(self) -> list[Any]:
        return list(self.unit_cell_devices)

    @property
    def gammas(self) -> list[float]:
        n = len(self.sub_devices())
        return [float(g) for g in self.gamma_vec] if self.gamma_vec else [1.0 / n] * n

    def weight_index(self) -> int | None:
        gam = self.gammas
        nonzero = [k for k, g in enumerate(gam) if g != 0]
        return nonzero[0] if len(nonzero) == 1 and gam[nonzero[0]] == 1.0 else None

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        lead = shape[:-2]
        return {"update_count": torch.zeros(lead, dtype=torch.int64, device=generator.device)}

    @property
    def pulse_granularity(self) -> float:
        devs, gam = self.sub_devices(), self.gammas
        if self.update_policy == "all":
            return sum(abs(g) * granularity_of(d) for d, g in zip(devs, gam))
        k = self.first_update_idx
        return abs(gam[k]) * granularity_of(devs[k])

    # -- reading --------------------------------------------------------------------------------
    def hidden_weight(self, state: CompoundState) -> Tensor:
        out = None
        for dev, sub, g in zip(self.sub_devices(), state.devices, self.gammas):
            if g == 0:
                continue
            term = hidden_weight_of(dev, sub) * g
            out = term if out is None else out.add_(term)
        return out

    def apparent_weight(self, state: CompoundState, generator: torch.Generator | None = None) -> Tensor:
        out = None
        for dev, sub, g in zip(self.sub_devices(), state.devices, self.gammas):
            if g == 0:
                continue
            term = dev.apparent_weight(sub)
            term = term if g == 1.0 and out is None else term * g
            out = term if out is None else out + term
        return out

    # -- changing -------------------------------------------------------------------------------
    def set_weights(self, state: CompoundState, w: Tensor, generator: torch.Generator | None = None) -> None:
        """w_k = w·γ_k/Σγ² for every device (each clipped to its bounds)."""
        gam = self.gammas
        norm = sum(g * g for g in gam)
        for dev, sub, g in zip(self.sub_devices(), state.devices, gam):
            dev.set_weights(sub, w * (g / norm), generator)
        self.refresh_weight_(state)

    def _selected(self, state: CompoundState, generator: torch.Generator, advance: bool) -> list[int]:
        """Indices of the devices that receive this update (and advance the update counter)."""
        n = len(self.sub_devices())
        count = int(state.update_count)
        if advance:
            state.update_count.add_(1)
        policy = self.update_policy
        if policy == "all":
            return list(range(n))
        if policy == "single_fixed":
            return [self.first_update_idx]
        if policy == "single_sequential":
            return [(self.first_update_idx + count) % n]
        return [int(torch.randint(0, n, (1,), generator=generator, device=generator.device))]

    def pulsed_update_(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                       generator: torch.Generator) -> None:
        devs, gam = self.sub_devices(), self.gammas
        for k in self._selected(state, generator, advance=True):
            update_array_(devs[k], state.devices[k], x, d if gam[k] >= 0 else -d, lr, cfg, generator)
        self.refresh_weight_(state)

    def apply_counts_(self, state: CompoundState, counts: Tensor, generator: torch.Generator,
                      pulse_application: str = "exact") -> None:
        """Counts (in pulses of the compound) to the device(s) the policy selects now (no counter advance).

        A device with a negative weight γ_k gets the counts with the opposite sign.
        """
        devs, gam = self.sub_devices(), self.gammas
        k_sel = self._selected(state, generator, advance=False)
        for k in k_sel:
            c = counts if gam[k] >= 0 else -counts
            apply_counts_(devs[k], state.devices[k], c, generator, pulse_application)
        self.refresh_weight_(state)
