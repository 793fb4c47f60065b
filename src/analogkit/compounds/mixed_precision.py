"""Mixed precision: the rank-one update is accumulated in a digital matrix χ and moved to the analog
array in whole pulses."""

from __future__ import annotations

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
    is_array_device,
    register_compound,
)
from analogkit.config.base import ConfigBase
from analogkit.devices.constant_step import ConstantStepDevice
from analogkit.update.config import UpdateConfig

__all__ = ["MixedPrecisionCompound", "quantize_vectors"]


def quantize_vectors(v: Tensor, n_bins: int, stochastic: bool, generator: torch.Generator | None) -> Tensor:
    """Each row of ``v`` rounded to ``n_bins // 2`` steps of max|row|/(n_bins // 2) on each side of 0.

    q = clip(round(v/Δ + u), ±n_bins//2)·Δ, Δ = max|v_row|/(n_bins//2), u ~ U(−½, ½) if ``stochastic``
    (stochastic rounding), else 0. ``n_bins`` <= 0: no quantisation.
    """
    if n_bins <= 0:
        return v
    half = n_bins // 2
    width = v.abs().amax(dim=1, keepdim=True) / half
    width = torch.where(width > 0, width, torch.ones_like(width))
    u = v / width
    if stochastic:
        u = u + (torch.rand(u.shape, generator=generator, device=u.device, dtype=u.dtype) - 0.5)
    return torch.round(u).clamp_(-half, half) * width


@register_compound
@dataclass
class MixedPrecisionCompound(Compound):
    """Mixed-precision training: the gradient is accumulated digitally, the analog array gets whole pulses.

    Per mini-batch (x: (M, in), d: (M, out), λ the learning rate)::

        χ ← χ − λ·Q_d(d)ᵀ Q_x(x)                 (digital, full precision; Q: optional quantisation
                                                   with n_x_bins / n_d_bins levels, stochastic rounding)
        every transfer_every samples, for the next n_rows_per_transfer rows (all if −1; cyclic, or
        from a random row):
            n = trunc(χ_row/ε);  χ_row ← χ_row − n·ε          (the remainder stays in χ)
            the row's devices get n·(transfer_lr·ε/dw) pulses (stochastically rounded when not an integer)

    with ε = ``granularity`` (0: the device's pulse granularity dw_min) and dw the device's
    granularity; by default every multiple of ε in χ becomes exactly one pulse. Pulses are applied
    one after another per device (exact device physics). The device can be a pulsed device or a unit
    cell (vector, reference or one-sided, e.g. a PCM pair with refresh). Programming a weight clears χ.

    Source: Nandakumar et al. 2020, "Mixed-precision deep learning based on computational memory",
    Front. Neurosci. 14:406 (χ accumulation and integer-pulse transfer); parameter names and defaults
    as AIHWKit's ``MixedPrecisionCompound`` (spec §1.9). The incumbent writes n·ε·transfer_lr with its
    stochastic pulse update; here the integer counts are applied as pulses directly.
    """

    kind: ClassVar[str] = "mixed_precision_compound"

    device: ConfigBase = field(default_factory=ConstantStepDevice)
    transfer_every: int = 1
    n_rows_per_transfer: int = -1
    random_row: bool = False
    granularity: float = 0.0
    transfer_lr: float = 1.0
    n_x_bins: int = 0
    n_d_bins: int = 0
    stoc_round_x: bool = True
    stoc_round_d: bool = True

    def validate(self) -> None:
        if not is_array_device(self.device):
            self._fail("device", self.device, "use a device config (for example SoftBoundsDevice()) or a unit cell")
        if isinstance(self.device, Compound) and type(self.device).apply_counts_ is Compound.apply_counts_:
            self._fail("device", self.device, "use a device or a unit cell (vector, reference, one-sided) that takes pulse counts")
        self.check_int("transfer_every", 0, allowed="use an integer >= 0 (samples between transfers; 0: none)")
        self.check_int("n_rows_per_transfer", -1, allowed="use -1 (all rows) or a number of rows >= 1")
        if self.n_rows_per_transfer == 0:
            self._fail("n_rows_per_transfer", 0, "use -1 (all rows) or a number of rows >= 1")
        self.check_bool("random_row")
        self.check_range("granularity", 0, allowed="use 0 (the device's dw_min) or a step > 0")
        self.check_range("transfer_lr", 0, lo_open=True, allowed="use a number > 0")
        for name in ("n_x_bins", "n_d_bins"):
            self.check_int(name, 0, allowed="use 0 (no quantisation) or a number of bins >= 2")
            if getattr(self, name) == 1:
                self._fail(name, 1, "use 0 (no quantisation) or a number of bins >= 2")
        self.check_bool("stoc_round_x")
        self.check_bool("stoc_round_d")

    def sub_devices(self) -> list[Any]:
        return [self.device]

    def _own_tensors(self, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> dict[str, Tensor]:
        lead, dev = shape[:-2], generator.device
        return {
            "chi": torch.zeros(shape, dtype=dtype, device=dev),
            "update_count": torch.zeros(lead, dtype=torch.int64, device=dev),
            "row_ptr": torch.zeros(lead, dtype=torch.int64, device=dev),
        }

    @property
    def epsilon(self) -> float:
        """ε: the digital threshold (one transferred unit)."""
        return self.granularity if self.granularity > 0 else granularity_of(self.device)

    @property
    def pulse_granularity(self) -> float:
        return granularity_of(self.device)

    def weight_index(self) -> int | None:
        return 0

    def hidden_weight(self, state: CompoundState) -> Tensor:
        return hidden_weight_of(self.device, state.devices[0])

    def apparent_weight(self, state: CompoundState, generator: torch.Generator | None = None) -> Tensor:
        return self.device.apparent_weight(state.devices[0])

    def set_weights(self, state: CompoundState, w: Tensor, generator: torch.Generator | None = None) -> None:
        self.device.set_weights(state.devices[0], w, generator)
        state.chi.zero_()
        self.refresh_weight_(state)

    def pulsed_update_(self, state: CompoundState, x: Tensor, d: Tensor, lr: float, cfg: UpdateConfig,
                       generator: torch.Generator) -> None:
        chi = state.chi
        if lr > 0 and x.shape[0] > 0:
            qx = quantize_vectors(x.to(chi.dtype), self.n_x_bins, self.stoc_round_x, generator)
            qd = quantize_vectors(d.to(chi.dtype), self.n_d_bins, self.stoc_round_d, generator)
            chi.addmm_(qd.t(), qx, alpha=-float(lr))
        before = int(state.update_count)
        after = before + x.shape[0]
        state.update_count.fill_(after)
        n_transfers = due(before, after, self.transfer_every)
        if n_transfers > 0:
            self.transfer_(state, n_transfers, generator, cfg.pulse_application)
        self.refresh_weight_(state)

    def _rows(self, state: CompoundState, n_transfers: int, generator: torch.Generator) -> Tensor | None:
        """Rows of this transfer (None: all)."""
        out = chi_rows = state.chi.shape[-2]
        k = self.n_rows_per_transfer
        if k < 0 or k * n_transfers >= out:
            return None
        reads = k * n_transfers
        if self.random_row:
            start = int(torch.randint(0, out, (1,), generator=generator, device=generator.device))
        else:
            start = int(state.row_ptr)
            state.row_ptr.fill_((start + reads) % chi_rows)
        return (start + torch.arange(reads, device=state.chi.device)) % out

    def transfer_(self, state: CompoundState, n_transfers: int, generator: torch.Generator,
                  pulse_application: str = "exact") -> None:
        """Move the whole multiples of ε of the selected rows of χ to the device, keep the remainder."""
        chi, eps = state.chi, self.epsilon
        rows = self._rows(state, n_transfers, generator)
        part = chi if rows is None else chi.index_select(0, rows)
        n = torch.trunc(part / eps)
        if not bool((n != 0).any()):
            return
        part = part - n * eps
        if rows is None:
            chi.copy_(part)
        else:
            chi.index_copy_(0, rows, part)
        ratio = self.transfer_lr * eps / granularity_of(self.device)
        if abs(ratio - 1.0) > 1e-9:
            scaled = n * ratio
            low = torch.floor(scaled)
            u = torch.rand(scaled.shape, generator=generator, device=generator.device, dtype=scaled.dtype)
            n = low + (u < scaled - low).to(scaled.dtype)
        apply_counts_(self.device, state.devices[0], n.to(torch.int32), generator, pulse_application,
                      index=rows, columns=False)
