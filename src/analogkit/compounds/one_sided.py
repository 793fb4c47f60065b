"""One-sided unit cell: a pair W = W⁺ − W⁻ where each device is only ever pulsed up, with refresh."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from analogkit.compounds.base import (
    Compound,
    CompoundState,
    apply_counts_,
    due,
    granularity_of,
    hidden_weight_of,
    read_columns,
    register_compound,
    update_one_hot_,
)
from analogkit.config.base import ConfigBase
from analogkit.config.io import IOConfig
from analogkit.devices.base import Device
from analogkit.update import kernels as _kernels
from analogkit.update.config import UpdateConfig
from analogkit.update.reference import CHUNK_ELEMENTS
from analogkit.update.trains import coincidence_counts, plan_trains

__all__ = ["OneSidedUnitCell"]


@register_compound
@dataclass
class OneSidedUnitCell(Compound):
    """A pair of devices with one-sided updates: W = W⁺ − W⁻, both pulsed only in their "up" direction.

    Every coincidence of the stochastic pulse update that would raise W is an up pulse on W⁺, every one
    that would lower W an up pulse on W⁻ (suits uni-directional devices such as PCM, which can only be
    SET gradually). Each device receives pulses of one direction only, so its result depends only on
    the number of pulses it gets: the batch's counts are summed per sign and applied per device.

    Refresh (``refresh_every`` > 0, counted in mini-batches if ``units_in_mbatch``, else in samples):
    both devices are read column by column through ``refresh_forward``; where the larger of the two,
    relative to its device's ``w_max``, exceeds ``refresh_upper_thres`` and the smaller exceeds
    ``refresh_lower_thres``, both are reset and the read difference is written back open-loop onto
    one of them (W⁺ if positive, W⁻ if negative) by a pulsed update with ``refresh_update`` (one
    column per sample, lr 1).

    Give one device to use the same model for both (separately drawn device-to-device variation).

    Source: AIHWKit ``OneSidedUnitCell`` (spec §1.9); PCM pairs with refresh as in Nandakumar et al.
    2020 ("Mixed-precision deep learning based on computational memory", Front. Neurosci. 14:406) and
    Boybat et al. 2018 (Nat. Commun. 9:2514). The incumbent's ``copy_inverted`` is not offered.
    """

    kind: ClassVar[str] = "one_sided_unit_cell"

    unit_cell_devices: list[ConfigBase] = field(default_factory=list)
    refresh_every: int = 0
    units_in_mbatch: bool = True
    refresh_upper_thres: float = 0.75
    refresh_lower_thres: float = 0.25
    refresh_forward: IOConfig = field(default_factory=IOConfig)
    refresh_update: UpdateConfig = field(default_factory=UpdateConfig)

    def validate(self) -> None:
        self._check_devices("unit_cell_devices", self.unit_cell_devices, 1, 2)
        self.check_int("refresh_every", 0, allowed="use 0 (no refresh) or a period >= 1")
        self.check_bool("units_in_mbatch")
        self.check_range("refresh_upper_thres", 0, 1, allowed="use a fraction of w_max in [0, 1]")
        self.check_range("refresh_lower_thres", 0, 1, allowed="use a fraction of w_max in [0, 1]")
        self.check_type("refresh_forward", IOConfig, "use an IOConfig")
        self.check_type("refresh_update", UpdateConfig, "use an UpdateConfig")
        if self.refresh_every > 0:
            for k, dev in enumerate(self.sub_devices()):
                if not isinstance(dev, Device) or getattr(dev, "w_max", 0) <= 0:
                    self._fail(f"unit_cell_devices[{k}]", dev, "use pulsed devices with w_max > 0 when refresh_every > 0")

    def sub_devices(self) -> list[Any]:
        devs = list(self.unit_cell_devices)
        return devs * 2 if len(devs) == 1 else devs

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        return {"update_count": torch.zeros(shape[:-2], dtype=torch.int64, device=generator.device)}

    @property
    def pulse_granularity(self) -> float:
        return granularity_of(self.sub_devices()[0])

    # -- reading --------------------------------------------------------------------------------
    def hidden_weight(self, state: CompoundState) -> Tensor:
        (p, m), (sp, sm) = self.sub_devices(), state.devices
        return hidden_weight_of(p, sp) - hidden_weight_of(m, sm)

    def apparent_weight(self, state: CompoundState, generator: torch.Generator | None = None) -> Tensor:
        (p, m), (sp, sm) = self.sub_devices(), state.devices
        return p.apparent_weight(sp) - m.apparent_weight(sm)

    # -- changing -------------------------------------------------------------------------------
    def set_weights(self, state: CompoundState, w: Tensor, generator: torch.Generator | None = None) -> None:
        """W⁺ = max(w, 0), W⁻ = max(−w, 0) (each clipped to its bounds)."""
        (p, m), (sp, sm) = self.sub_devices(), state.devices
        p.set_weights(sp, w.clamp(min=0), generator)
        m.set_weights(sm, (-w).clamp(min=0), generator)
        self.refresh_weight_(state)

    def _split_counts(self, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                      generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Per element, the batch's up (W rises) and down coincidence counts, summed over samples.

        On the CPU with numba the counts come from the fused kernel's trains (bit-packed, counted by
        popcount; :func:`analogkit.update.kernels.kernel_split_counts`), otherwise from the
        reference trains in chunks of samples. Same law, other draws."""
        dw = granularity_of(self.sub_devices()[0])
        if (_kernels.HAVE_NUMBA and x.device.type == "cpu" and cfg.backend != "torch"
                and os.environ.get("ANALOGKIT_KERNELS", "numba") != "torch"):
            return _kernels.kernel_split_counts(x, d, lr, cfg, generator, dw)
        plan = plan_trains(x, d, lr, cfg, dw)
        m, n_out, n_in = x.shape[0], d.shape[1], x.shape[1]
        up = torch.zeros((n_out, n_in), dtype=torch.int32, device=x.device)
        down = torch.zeros_like(up)
        chunk = max(1, CHUNK_ELEMENTS // max(1, n_out * n_in))
        active = plan.active
        for start in range(0, m, chunk):
            stop = min(m, start + chunk)
            if not bool(active[start:stop].any()):
                continue
            counts = coincidence_counts(x, d, plan, cfg, generator, start, stop)
            up += counts.clamp(min=0).sum(0, dtype=torch.int32)
            down += (-counts).clamp(min=0).sum(0, dtype=torch.int32)
        return up, down

    def pulsed_update_(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                       generator: torch.Generator) -> None:
        (p, m), (sp, sm) = self.sub_devices(), state.devices
        if lr > 0 and x.shape[0] > 0:
            if cfg.pulse_type == "none":
                xd, dd = x.to(sp.w.dtype), d.to(sp.w.dtype)
                xp, xn, dp, dn = xd.clamp(min=0), (-xd).clamp(min=0), dd.clamp(min=0), (-dd).clamp(min=0)
                rise = lr * (dp.t() @ xn + dn.t() @ xp)  # Σ_n relu(−lr·d_n x_nᵀ)
                fall = lr * (dp.t() @ xp + dn.t() @ xn)
                p.set_weights(sp, sp.w + rise, generator)
                m.set_weights(sm, sm.w + fall, generator)
            else:
                up, down = self._split_counts(x, d, lr, cfg, generator)
                apply_counts_(p, sp, up, generator, cfg.pulse_application)
                apply_counts_(m, sm, down, generator, cfg.pulse_application)
        self._advance_(state, 1 if self.units_in_mbatch else x.shape[0], generator)
        self.refresh_weight_(state)

    def apply_counts_(self, state: CompoundState, counts: Tensor, generator: torch.Generator,
                      pulse_application: str = "exact") -> None:
        """Positive counts as up pulses on W⁺, negative ones as up pulses on W⁻ (one update for refresh)."""
        (p, m), (sp, sm) = self.sub_devices(), state.devices
        apply_counts_(p, sp, counts.clamp(min=0), generator, pulse_application)
        apply_counts_(m, sm, (-counts).clamp(min=0), generator, pulse_application)
        self._advance_(state, 1, generator)
        self.refresh_weight_(state)

    # -- refresh --------------------------------------------------------------------------------
    def _advance_(self, state: CompoundState, n: int, generator: torch.Generator) -> None:
        before = int(state.update_count)
        state.update_count.add_(n)
        if self.refresh_every > 0 and due(before, before + n, self.refresh_every) > 0:
            self.refresh_(state, generator)

    @torch.no_grad()
    def refresh_(self, state: CompoundState, generator: torch.Generator) -> int:
        """Read both devices; reset and rewrite the saturated pairs. Returns how many were refreshed.

        ``state`` is one group's state (2-D arrays).
        """
        (p, m), (sp, sm) = self.sub_devices(), state.devices
        n_in = sp.w.shape[-1]
        cols = slice(0, n_in)  # all columns: a view of the weights, no copy
        rp = read_columns(p, sp, cols, self.refresh_forward, generator).t()
        rm = read_columns(m, sm, cols, self.refresh_forward, generator).t()
        np_, nm_ = rp / float(p.w_max), rm / float(m.w_max)
        hi, lo = torch.maximum(np_, nm_), torch.minimum(np_, nm_)
        mask = (hi > self.refresh_upper_thres) & (lo > self.refresh_lower_thres)
        n = int(mask.sum())
        if n == 0:
            return 0
        diff = torch.where(mask, rp - rm, torch.zeros_like(rp))
        p.reset_devices(sp, mask, generator)
        m.reset_devices(sm, mask, generator)
        touched = mask.any(dim=0).nonzero().squeeze(1)
        x = torch.zeros((touched.numel(), n_in), dtype=sp.w.dtype, device=sp.w.device)
        x[torch.arange(touched.numel()), touched] = 1.0
        sub = diff.index_select(1, touched).t()  # (k, out)
        update_one_hot_(p, sp, x, -sub.clamp(min=0), 1.0, self.refresh_update, generator)
        update_one_hot_(m, sm, x, -(-sub).clamp(min=0), 1.0, self.refresh_update, generator)
        return n
