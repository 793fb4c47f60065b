"""Configuration of one direction of a tile's read periphery (DAC → crossbar → ADC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from analogkit.config.base import ConfigBase

NOISE_MANAGEMENT = ("none", "abs_max", "max", "constant")
BOUND_MANAGEMENT = ("none", "iterative")
WEIGHT_NOISE = ("none", "additive_constant", "pcm_read")


def resolution_step(res: float) -> float:
    """Quantisation step as a fraction of the full range: ``res`` in (0, 1] is the step; ``res`` > 1
    is a number of steps (step 1/res); 0 switches quantisation off (returns 0)."""
    if res <= 0:
        return 0.0
    return 1.0 / res if res > 1 else res


@dataclass
class IOConfig(ConfigBase):
    """The analog matrix-vector product's periphery for one direction (forward or backward).

    Pipeline (Gokmen & Vlasov 2016; Rasch et al. 2021 "A flexible and fast PyTorch toolkit for
    simulating training and inference on analog crossbar arrays", Sec. 2.2)::

        α  = noise management of x (per input vector)          s = 1, 2, 4, … (bound management)
        x' = clip(Q_DAC(x / (α s)), ±inp_bound) + inp_noise·ξ
        y' = W x' + weight read noise
        y' = clip(Q_ADC(y' + out_noise·ξ), ±out_bound)           (repeat with s·2 while clipping)
        y  = y' · α · s · out_scale

    ``Q(u) = Δ·round(u/Δ)`` with ``Δ = 2·bound·step``; ``step`` is ``inp_res``/``out_res`` as a
    fraction of the full range (or, if > 1, the number of steps; 0 turns the converter off).
    Defaults: 7-bit DAC, 9-bit ADC, output noise 0.06, abs-max noise management and iterative
    bound management, as in the incumbent's defaults (spec §1.3).
    """

    ideal: bool = False
    inp_bound: float = 1.0
    inp_res: float = 1.0 / (2**7 - 2)
    inp_sto_round: bool = False
    inp_noise: float = 0.0
    out_bound: float = 12.0
    out_res: float = 1.0 / (2**9 - 2)
    out_sto_round: bool = False
    out_noise: float = 0.06
    w_noise: float = 0.0
    w_noise_type: str = "none"
    noise_management: str = "abs_max"
    nm_thres: float = 0.0
    bound_management: str = "iterative"
    max_bm_factor: float = 1000.0
    max_bm_res: float = 0.25
    out_scale: float = 1.0

    NOISE_MANAGEMENT: ClassVar[tuple[str, ...]] = NOISE_MANAGEMENT
    BOUND_MANAGEMENT: ClassVar[tuple[str, ...]] = BOUND_MANAGEMENT

    def validate(self) -> None:
        for name in ("ideal", "inp_sto_round", "out_sto_round"):
            self.check_bool(name)
        self.check_range("inp_bound", 0, lo_open=True, allowed="use a positive input bound (DAC range ±inp_bound)")
        self.check_range("out_bound", 0, lo_open=True, allowed="use a positive output bound (ADC range ±out_bound)")
        self.check_range("inp_res", 0, allowed="use a positive step (fraction of the range, or > 1 for a number of steps) or 0 for no DAC quantisation")
        self.check_range("out_res", 0, allowed="use a positive step (fraction of the range, or > 1 for a number of steps) or 0 for no ADC quantisation")
        for name in ("inp_noise", "out_noise", "w_noise", "nm_thres"):
            self.check_range(name, 0, allowed="use a standard deviation >= 0" if "noise" in name else "use a number >= 0 (0 = no threshold)")
        self.check_choice("w_noise_type", WEIGHT_NOISE)
        self.check_choice("noise_management", NOISE_MANAGEMENT)
        self.check_choice("bound_management", BOUND_MANAGEMENT)
        if self.noise_management == "constant" and self.nm_thres <= 0:
            self._fail("nm_thres", self.nm_thres, "use a positive value: noise_management 'constant' divides inputs by nm_thres")
        if self.w_noise > 0 and self.w_noise_type == "none":
            self._fail("w_noise_type", self.w_noise_type, "choose 'additive_constant' or 'pcm_read' when w_noise > 0")
        self.check_range("max_bm_factor", 1, allowed="use a factor >= 1 (largest input down-scaling of bound management)")
        self.check_range("max_bm_res", 0, 1, lo_open=True, allowed="use a number in (0, 1]: coarsest input step bound management may reach")
        self.check_range("out_scale", 0, lo_open=True, allowed="use a positive digital output factor")

    @property
    def inp_step(self) -> float:
        """DAC step in input units (0 = no quantisation)."""
        return 2 * self.inp_bound * resolution_step(self.inp_res)

    @property
    def out_step(self) -> float:
        """ADC step in output units (0 = no quantisation)."""
        return 2 * self.out_bound * resolution_step(self.out_res)

    @classmethod
    def perfect(cls) -> "IOConfig":
        """An ideal periphery: exact matrix-vector product."""
        return cls(ideal=True)
